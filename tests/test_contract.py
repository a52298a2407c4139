"""The model contract: green's metadata against live's (table tests, no I/O), the decision a
promotion takes on it, and a model archive checked before anything is published (files only)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.base.errors import ExitCode
from orchestrator.build.contract import ContractChange, ContractError, compare, contract_of, decide, problems
from orchestrator.build.modelpack import ModelPackError, read_archive


def meta(features: str = "a,b,c,d", labels: str | None = "x,y,z", name: str = "m", version: str = "1",
         task: str | None = None) -> dict[str, Any]:  # fmt: skip
    names = features.split(",")
    output: dict[str, Any] = (
        {"labels": labels.split(","), "label": "label", "probabilities": "probabilities"}
        if labels
        else {"value": "variable"}
    )
    data = {"name": name, "version": version, "framework": "onnxruntime",
            "input": {"name": "X", "dtype": "float32", "features": names, "example": [0.0] * len(names)},
            "output": output}  # fmt: skip
    if task:
        data["task"] = task
    return data


FEWER = "live takes 4 features [a,b,c,d]; green takes 3 [a,b,c]: every current client would get bad_shape"


@pytest.mark.parametrize(
    ("live", "green", "expected"),
    [
        (meta(), meta(), ContractChange(False, [], [])),
        (meta(), meta(name="n", version="2"), ContractChange(False, [], ["name m -> n", "version 1 -> 2"])),
        (meta(), meta("a,b,c"), ContractChange(True, [FEWER], [])),
        (
            meta(),
            meta("b,a,c,d"),
            ContractChange(
                True,
                [
                    "live takes 4 features [a,b,c,d]; green takes 4 [b,a,c,d]: the same features in "
                    "another order: rows sent by position would give their values to other features "
                    "(named ones are still read right)"
                ],
                [],
            ),
        ),
        (
            meta(),
            meta("a,b,c,e"),
            ContractChange(
                True,
                [
                    "live takes 4 features [a,b,c,d]; green takes 4 [a,b,c,e]: other feature names: "
                    "rows sent by position are read as before, right only if each position still means "
                    "what it did; named ones would be refused (bad_features)"
                ],
                [],
            ),
        ),
        (
            meta(),
            meta(labels=None),
            ContractChange(
                True,
                [
                    "live is a classifier of 3 labels [x,y,z]; green is a regressor: clients "
                    "reading `label` and `probabilities` would break"
                ],
                [],
            ),
        ),
        (
            meta(labels=None),
            meta(task="classification"),
            ContractChange(
                True,
                [
                    "live is a regressor; green is a classifier of 3 labels [x,y,z]: clients "
                    "reading `value` would break"
                ],
                [],
            ),
        ),
        (
            meta(),
            meta(labels="x,y,z,w"),
            ContractChange(
                True,
                [
                    "live's labels are [x,y,z]; green's [x,y,z,w]: clients expecting live's "
                    "labels would get others"
                ],
                [],
            ),
        ),
        (
            meta(),
            meta(labels="y,x,z"),
            ContractChange(
                True,
                [
                    "live's labels are [x,y,z]; green's [y,x,z]: the same labels in another "
                    "order: probabilities would be read against the wrong labels"
                ],
                [],
            ),
        ),
        # an archive from before `model pack` (no task) against a packed one: the same contract
        (meta(), meta(task="classification", version="2"), ContractChange(False, [], ["version 1 -> 2"])),
        (meta(labels=None), meta(labels=None, task="regression"), ContractChange(False, [], [])),
    ],
)
def test_compare(live: dict[str, Any], green: dict[str, Any], expected: ContractChange) -> None:
    assert compare(live, green) == expected


def test_fewer_features_and_another_kind_are_both_named() -> None:
    change = compare(meta(), meta("a,b,c", labels=None))
    assert change.breaking and change.reasons[0] == FEWER and "green is a regressor" in change.reasons[1]


@pytest.mark.parametrize(
    ("metadata", "found"),
    [
        (meta(), []),
        ({k: v for k, v in meta().items() if k != "name"}, ["no 'name'"]),
        ({**meta(), "input": {"features": []}}, ["no input.features (a non-empty list of column names)"]),
        ({**meta(), "input": {"features": ["a", "a"]}}, ["input.features names a feature twice"]),
        (
            {**meta(), "input": {"features": ["a", "b"], "example": [1.0]}},
            ["input.example is not one number per feature (2)"],
        ),
        ({k: v for k, v in meta().items() if k != "output"}, ["no output"]),
        (meta(task="forecast"), ["task 'forecast' is neither classification nor regression"]),
        (
            meta(labels=None, task="classification"),
            ["a classifier's output.labels must be a non-empty list of names"],
        ),
        (meta(task="regression"), ["a regressor's output declares labels"]),
    ],
)
def test_problems(metadata: dict[str, Any], found: list[str]) -> None:
    assert problems(metadata) == found


def test_the_sample_model_is_a_contract() -> None:
    sample = read_archive(Path(__file__).parents[1] / "programs" / "function" / "sample" / "model.tar.gz")
    assert contract_of(sample).describe() == (
        "iris-classifier 1: 4 features [sepal_length,sepal_width,petal_length,petal_width] "
        "-> a classifier of 3 labels [setosa,versicolor,virginica]"
    )


def test_a_breaking_change_is_refused_naming_both_shapes_and_the_flag() -> None:
    with pytest.raises(ContractError) as refused:
        decide(compare(meta(), meta("a,b,c")), allowed=False, schedule=None, live="v1: m 1", green="m 2")
    assert refused.value.exit_code == ExitCode.USAGE
    assert refused.value.message == f"green (m 2) breaks the contract live (v1: m 1) serves: {FEWER}"
    assert "--allow-breaking-change" in (refused.value.fix or "")


@pytest.mark.parametrize(
    ("breaking", "allowed", "schedule", "expected"),
    [
        (False, False, None, (None, None)),
        (False, False, "linear", (None, None)),
        (False, True, None, (None, "--allow-breaking-change given, but green keeps live's contract: promoting as planned")),
        (True, True, None, ("all-at-once", "breaking change allowed")),
        (True, True, "all-at-once", ("all-at-once", "breaking change allowed")),
    ],
)  # fmt: skip
def test_decide(breaking: bool, allowed: bool, schedule: str | None, expected: tuple[Any, Any]) -> None:
    change = compare(meta(), meta("a,b,c") if breaking else meta(version="2"))
    decision = decide(change, allowed=allowed, schedule=schedule, live="l", green="g")
    assert decision.schedule == expected[0]
    assert (decision.say or "")[: len(expected[1] or "")] == (expected[1] or "")
    if breaking:
        assert "gated alone on the candidate route" in (decision.say or "")


def test_an_allowed_breaking_change_refuses_a_canary_schedule() -> None:
    with pytest.raises(ContractError, match="--schedule canary with a breaking change"):
        decide(compare(meta(), meta("a,b,c")), allowed=True, schedule="canary", live="l", green="g")


# -- the archive, checked before anything is published ------------------------------------------------


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


def test_a_packed_archive_reads_back(tmp_path: Path) -> None:
    good = _archive(
        tmp_path / "m.tar.gz", {"metadata.json": json.dumps(meta()).encode(), "model.onnx": b"\x08\x08"}
    )
    assert read_archive(good) == meta()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.onnx", b"\x08\x08\x12\x07skl2onnx", "x.onnx is an ONNX file, not a model pack archive"),
        ("x.bin", b"\x08\x08\x12\x07skl2onnx", "x.bin is an ONNX file, not a model pack archive"),
        ("x.txt", b"hello", "x.txt is not a model pack archive (a tar.gz of model.onnx and metadata.json)"),
        ("x.tar.gz", gzip.compress(b"not a tar"), "x.tar.gz is not a readable tar.gz"),
        ("x.tar.gz", None, "x.tar.gz lacks model.onnx: not a model pack archive"),
        ("y.tar.gz", "bad-json", "y.tar.gz: metadata.json is not JSON"),
        ("z.tar.gz", "no-features", "z.tar.gz: metadata.json is not valid: no input.features"),
    ],
)
def test_what_is_not_a_model_pack_is_refused_with_the_fix(
    tmp_path: Path, name: str, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / name
    if content is None:
        _archive(path, {"metadata.json": json.dumps(meta()).encode()})
    elif content == "bad-json":
        _archive(path, {"metadata.json": b"{", "model.onnx": b""})
    elif content == "no-features":
        _archive(path, {"metadata.json": json.dumps({**meta(), "input": {}}).encode(), "model.onnx": b""})
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with pytest.raises(ModelPackError) as refused:
        read_archive(path)
    assert refused.value.exit_code == ExitCode.USAGE
    assert refused.value.message.startswith(message), refused.value.message
    assert "orchestrator model pack" in (refused.value.fix or "")


def test_a_raw_onnx_gets_the_pack_command_for_it(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x08\x08")
    with pytest.raises(ModelPackError) as refused:
        read_archive(path)
    assert "`orchestrator model pack x.onnx --features F1,F2,... --name NAME --version V -o x.tar.gz`" in (
        refused.value.fix or ""
    )


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelPackError, match=f"model archive {tmp_path / 'gone.tar.gz'} not found"):
        read_archive(tmp_path / "gone.tar.gz")
    with pytest.raises(ModelPackError, match="is not a file"):
        read_archive(tmp_path)
