"""`orchestrator model pack`: the declaration checked against the graph (table tests, no
I/O), the command on real ONNX files, and packed models of other shapes promoted end to
end on the local environment (a regressor, a classifier with more features and classes)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.base.errors import ExitCode
from orchestrator.build.modelpack import Graph, ModelPackError, PackRequest, check, metadata
from tests.conftest import LocalProject, Project, classifier_onnx, infer, regressor_onnx

CLASSIFIER = Graph("X", 4, (("label", "int64", (1,)), ("probabilities", "float32", (1, 3))))
REGRESSOR = Graph("input", 5, (("variable", "float32", (1, 1)),))
ZIPMAP = Graph("X", 4, (("label", "int64", (1,)), ("probabilities", "list", ())))


def _request(features: int, labels: int = 0, example: int = 0) -> PackRequest:
    return PackRequest(
        Path("m.onnx"),
        tuple(f"f{i}" for i in range(features)),
        tuple(f"c{i}" for i in range(labels)),
        "m",
        "1",
        tuple(1.0 for _ in range(example)),
    )


@pytest.mark.parametrize(
    ("request_", "graph", "problem", "fix"),
    [
        (
            _request(3, 3),
            CLASSIFIER,
            "takes 4 features per row; --features names 3",
            "exactly 4 feature names",
        ),
        (_request(4), CLASSIFIER, "is a classifier (2 outputs, 3 classes) and no --labels", "pass --labels"),
        (_request(4, 2), CLASSIFIER, "predicts 3 classes; --labels names 2", "exactly 3 labels"),
        (_request(4, 3), ZIPMAP, "a classifier needs two outputs", "without a ZipMap"),
        (_request(5, example=4), REGRESSOR, "--example has 4 values for 5 features", "one example value"),
        (
            _request(5),
            Graph("input", 5, (("variable", "float32", (1, 2)),)),
            "one number per row",
            "single [N] or [N, 1]",
        ),
    ],
)
def test_a_declaration_that_does_not_match_the_graph_is_refused_with_the_fix(
    request_: PackRequest, graph: Graph, problem: str, fix: str
) -> None:
    with pytest.raises(ModelPackError) as info:
        check(request_, graph)
    assert problem in info.value.message and info.value.fix and fix in info.value.fix
    assert info.value.exit_code == ExitCode.USAGE


def test_metadata_names_the_outputs_the_function_reads() -> None:
    check(_request(4, 3), CLASSIFIER)
    classifier = metadata(_request(4, 3), CLASSIFIER)
    assert classifier["task"] == "classification"
    assert classifier["output"] == {
        "labels": ["c0", "c1", "c2"],
        "label": "label",
        "probabilities": "probabilities",
    }
    assert classifier["input"] == {
        "name": "X",
        "dtype": "float32",
        "features": ["f0", "f1", "f2", "f3"],
        "example": [0.0] * 4,
    }
    check(_request(5), REGRESSOR)
    regressor = metadata(_request(5, example=5), REGRESSOR)
    assert (regressor["task"], regressor["output"], regressor["input"]["example"]) == (
        "regression",
        {"value": "variable"},
        [1.0] * 5,
    )


def _pack(project: Project, *args: str) -> tuple[int, Any]:
    done = project.cli("model", "pack", *args, "--json")
    return done.returncode, json.loads(done.stdout)


def test_pack_writes_the_archive_and_prints_its_sha256(project: Project, tmp_path: Path) -> None:
    onnx_file = regressor_onnx(tmp_path / "price.onnx", 5)
    out = tmp_path / "price.tar.gz"
    declared = (str(onnx_file), "--features", "a,b,c,d,e", "--name", "price", "--version", "3")
    code, result = _pack(project, *declared, "-o", str(out))
    assert code == 0, result
    assert result["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and result["task"] == "regression"
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["metadata.json", "model.onnx"]
        assert json.load(tar.extractfile("metadata.json"))["input"]["features"] == ["a", "b", "c", "d", "e"]  # type: ignore[arg-type]
    again = tmp_path / "again.tar.gz"
    _pack(project, *declared, "-o", str(again))
    assert again.read_bytes() == out.read_bytes()  # reproducible: the sha256 is the model's identity


def test_pack_refuses_a_file_that_is_not_onnx(project: Project, tmp_path: Path) -> None:
    bogus = tmp_path / "model.pkl"
    bogus.write_bytes(b"\x80\x04not an onnx graph")
    code, result = _pack(
        project,
        str(bogus),
        "--features",
        "a,b",
        "--name",
        "m",
        "--version",
        "1",
        "-o",
        str(tmp_path / "o.tgz"),
    )
    assert code == ExitCode.USAGE, result
    assert "is not an ONNX model" in result["message"] and "skl2onnx" in result["fix"]
    assert not (tmp_path / "o.tgz").exists()


def test_pack_refuses_a_feature_count_the_model_does_not_take(project: Project, tmp_path: Path) -> None:
    onnx_file = classifier_onnx(tmp_path / "c.onnx", 6, 5)
    code, result = _pack(
        project,
        str(onnx_file),
        "--features",
        "a,b,c",
        "--labels",
        "v,w,x,y,z",
        "--name",
        "c",
        "--version",
        "1",
    )
    assert code == ExitCode.USAGE, result
    assert "takes 6 features per row; --features names 3" in result["message"]
    assert "exactly 6 feature names" in result["fix"]


def test_packed_models_of_other_shapes_promote(local_project: LocalProject, tmp_path: Path) -> None:
    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    edge = first["outputs"]["edgeUrl"]
    # a regressor with five features, then a classifier with six features and five classes
    regressor = tmp_path / "regressor.tar.gz"
    code, packed = _pack(
        local_project, str(regressor_onnx(tmp_path / "r.onnx", 5)), "--features", "a,b,c,d,e",
        "--example", "1,2,3,4,5", "--name", "price", "--version", "2", "-o", str(regressor),
    )  # fmt: skip
    assert code == 0, packed
    code, report = local_project.json(
        "promote", "--env", "local", "--model", str(regressor), "--allow-breaking-change"
    )
    assert code == 0 and report["outcome"] == "promoted", report
    answer = infer(edge, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert answer["model"] == {"name": "price", "version": "2"}
    assert len(answer["predictions"]) == 1 and isinstance(answer["predictions"][0]["value"], float)

    classifier = tmp_path / "classifier.tar.gz"
    labels = "v,w,x,y,z"
    code, packed = _pack(
        local_project, str(classifier_onnx(tmp_path / "c.onnx", 6, 5)), "--features", "a,b,c,d,e,f",
        "--labels", labels, "--name", "kind", "--version", "3", "-o", str(classifier),
    )  # fmt: skip
    assert code == 0, packed
    code, report = local_project.json(
        "promote", "--env", "local", "--model", str(classifier), "--allow-breaking-change"
    )
    assert code == 0 and report["outcome"] == "promoted", report
    answer = infer(edge, [0.1] * 6)
    prediction = answer["predictions"][0]
    assert prediction["label"] in labels.split(",") and len(prediction["probabilities"]) == 5
