"""How the model reaches a sandbox (programs/modelship.py): the choice as a table, the
package that carries the model built from real zips, the handler's source rule as a table,
and a sandbox started from such a package under the real awslambdaric with no way to S3."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orchestrator.programs import modelship
from tests.test_handler import HANDLER, MODEL, load_handler

MB = 1024 * 1024
LIMIT = modelship.LAMBDA_UNZIPPED_LIMIT


@pytest.mark.parametrize(
    ("model", "package", "limit", "expected"),
    [
        (1 * MB, 90 * MB, LIMIT, "package"),  # the sample model beside the shipped package
        (LIMIT - 90 * MB - 1, 90 * MB, LIMIT, "package"),  # one byte under the limit
        (LIMIT - 90 * MB, 90 * MB, LIMIT, "s3"),  # exactly at it: Lambda refuses that size
        (300 * MB, 0, LIMIT, "s3"),  # larger than the limit alone
        (5 * MB, 1 * MB, 4 * MB, "s3"),  # a lowered limit (the padded-model test)
    ],
)
def test_choose(model: int, package: int, limit: int, expected: str) -> None:
    choice = modelship.choose(model, package, limit)
    assert choice.delivery == expected
    assert ("does not fit" in choice.reason) is (expected == "s3")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, LIMIT),
        ({modelship.LIMIT_VARIABLE: ""}, LIMIT),
        ({modelship.LIMIT_VARIABLE: "1000"}, 1000),
        ({modelship.LIMIT_VARIABLE: str(LIMIT * 2)}, LIMIT),  # never above Lambda's own
    ],
)
def test_limit_from(environ: dict[str, str], expected: int) -> None:
    assert modelship.limit_from(environ) == expected


def test_limit_from_refuses_what_is_not_a_number() -> None:
    with pytest.raises(ValueError, match="not a whole number of bytes"):
        modelship.limit_from({modelship.LIMIT_VARIABLE: "2MB"})


def _package(directory: Path) -> Path:
    package = directory / "function.zip"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", "x = 1\n" * 1000)
    return package


def test_with_model_adds_the_model_once_and_byte_for_byte_the_same(tmp_path: Path) -> None:
    package = _package(tmp_path)
    sha = hashlib.sha256(package.read_bytes()).hexdigest()
    model_sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    built = modelship.with_model(package, MODEL, sha, model_sha)
    with zipfile.ZipFile(built) as archive:
        assert archive.namelist() == ["handler.py", modelship.MEMBER]
        info = archive.getinfo(modelship.MEMBER)
        assert archive.read(info) == MODEL.read_bytes()
        assert info.compress_type == zipfile.ZIP_STORED and info.date_time == (1980, 1, 1, 0, 0, 0)
    assert modelship.unzipped_size(built) == 6000 + MODEL.stat().st_size
    first = built.read_bytes()
    built.unlink()  # built again from scratch: the same bytes (a repeated `up` publishes nothing)
    assert modelship.with_model(package, MODEL, sha, model_sha).read_bytes() == first
    assert package.read_bytes() != first and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [package.name, built.name]
    )  # no staging file left behind


def test_decide_reads_the_sizes_of_the_files(tmp_path: Path) -> None:
    package = _package(tmp_path)
    assert modelship.decide(MODEL, package, {}).delivery == "package"
    tight = str(6000 + MODEL.stat().st_size - 1)
    assert modelship.decide(MODEL, package, {modelship.LIMIT_VARIABLE: tight}).delivery == "s3"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"MODEL_DELIVERY": "package", "MODEL_URI": "s3://b/models/x.tar.gz"},
            "file:///var/task/model/model.tar.gz",
        ),
        ({"MODEL_DELIVERY": "s3", "MODEL_URI": "s3://b/models/x.tar.gz"}, "s3://b/models/x.tar.gz"),
        ({"MODEL_URI": "s3://b/models/x.tar.gz"}, "s3://b/models/x.tar.gz"),  # published before the choice
        ({}, None),
    ],
)
def test_the_handler_reads_the_model_where_the_version_says(
    environ: dict[str, str], expected: str | None
) -> None:
    h = load_handler(
        {"MODEL_URI": MODEL.as_uri(), "MODEL_SHA256": hashlib.sha256(MODEL.read_bytes()).hexdigest()}
    )
    assert h.model_source(environ, "/var/task") == expected
    assert h.PACKAGED_MODEL == modelship.MEMBER  # the two sides agree on where it sits
    with pytest.raises(h.ModelError, match="expected 'package' or 's3'"):
        h.model_source({"MODEL_DELIVERY": "layer"}, "/var/task")


# Run in the sandbox's place after the handler's init: what a SnapStart snapshot would hold.
_INIT_PROBE = """
import json, os, sys, random
import handler
def link(fd):
    try:
        return os.readlink('/proc/self/fd/' + fd)
    except FileNotFoundError:  # the directory listing's own descriptor, closed already
        return ''
sockets = [fd for fd in os.listdir('/proc/self/fd') if link(fd).startswith('socket:')]
generators = sorted(name for name, value in vars(handler).items() if isinstance(value, random.Random)
                    or type(value).__module__.startswith('numpy.random'))
print(json.dumps({"sha256": handler.MODEL.sha256, "sdk": sorted(m for m in ('boto3', 'botocore') if m in sys.modules),
                  "sockets": len(sockets), "generators": generators}))
"""


def _init_in_sandbox(task: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-B", "-c", _INIT_PROBE],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_packaged_model_loads_beside_the_handler_and_the_init_captures_nothing_per_sandbox(
    tmp_path: Path,
) -> None:
    """The handler in a task root of its own, the model in the package, MODEL_URI naming a
    bucket nobody can reach: it loads, verified, with no AWS SDK imported. And the init
    leaves what SnapStart may snapshot safely (docs/performance.md, "SnapStart"): no open
    connection, no random generator of its own to re-seed after a restore (so no runtime
    hook is needed), no secret (its environment holds none: tests/test_serving_program.py)."""
    task = tmp_path / "task"
    (task / "model").mkdir(parents=True)
    shutil.copy(HANDLER, task / "handler.py")
    shutil.copy(MODEL, task / modelship.MEMBER)
    sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    env = {
        "MODEL_DELIVERY": "package",
        "MODEL_URI": "s3://nowhere-bucket/models/x.tar.gz",
        "MODEL_SHA256": sha,
        "PATH": "/usr/bin:/bin",
    }
    done = _init_in_sandbox(task, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"sha256": sha, "sdk": [], "sockets": 0, "generators": []}
    # the same package with a model that is not the one the version names: the init fails
    done = _init_in_sandbox(task, {**env, "MODEL_SHA256": "0" * 64})
    assert done.returncode != 0 and "sha256 mismatch" in done.stderr


FUNCTION_URN = "urn:pulumi:local::e2e::pulumi-python:dynamic/edgeship:Function::function"


@pytest.mark.parametrize(
    ("old", "new", "part"),
    [
        (None, "package", "model from the package"),  # published before the choice: no "was"
        ("s3", "package", "model from the package (was s3)"),
        ("package", "s3", "model from S3 (was package)"),
        ("package", "package", "model from the package"),
    ],
)
def test_preview_says_where_the_new_version_reads_its_model(old: str | None, new: str, part: str) -> None:
    from orchestrator.stacks import diff

    def inputs(delivery: str | None) -> dict[str, object]:
        environment = {"MODEL_SHA256": "a" * 64, **({"MODEL_DELIVERY": delivery} if delivery else {})}
        return {"codeSha256": "c" * 64, "memoryMb": 512, "environment": environment}

    summary = diff.summarise(
        [diff.Step("update", FUNCTION_URN, inputs(old), inputs(new) | {"memoryMb": 1024})]
    )
    assert summary.delivery == diff.Digest(old, new)
    assert diff.headline(summary) == [
        f"publishes a new version: model aaaaaaaaaaaa (unchanged); code cccccccccccc (unchanged); {part}"
    ]
