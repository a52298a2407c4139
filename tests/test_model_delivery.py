"""The model travels with the version (programs/modelship.py), on the local environment:
a promotion of a new model serves it from the version's package, a rollback's cold sandboxes
serve blue's model again with every model gone from S3 (no S3 read at init can succeed), and
a padded model over the package limit still deploys, through S3, verified by sha256.

One local project for the module (each `up` or promotion costs seconds of a shared CI)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.programs import modelship
from tests.conftest import SAMPLE_MODEL, LocalProject, infer

# Blue's idle sandboxes are closed a second after a promotion (the edge's default is 30 s),
# so the rollback below starts blue cold.
FAST_RETIRE = {"EDGESHIP_EDGE_RETIRE_S": "1"}
with tarfile.open(SAMPLE_MODEL, "r:gz") as _tar:
    SAMPLE_MODEL_VERSION = str(json.load(_tar.extractfile("metadata.json"))["version"])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProject]:
    local = LocalProject(tmp_path_factory.mktemp("delivery"))
    yield local
    local.stop()


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return dict(json.loads(response.read()))


def _deliveries(project: LocalProject) -> dict[str, str | None]:
    code, status = project.json("status", "--env", "local")
    assert code == 0, status
    return {version: info["delivery"] for version, info in status["models"].items()}


def _s3(project: LocalProject) -> Any:
    from orchestrator.local import daemon, emulator

    running = daemon.read(project.state / "emulator.json")
    assert running is not None
    return emulator.client("s3", running.url, project.state / "tls" / "cert.pem")


def _padded(out: Path, version: str, pad_bytes: int) -> Path:
    """The sample model under another version, with `pad_bytes` of incompressible padding."""
    with tarfile.open(SAMPLE_MODEL, "r:gz") as tar:
        metadata = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
        onnx = tar.extractfile("model.onnx").read()  # type: ignore[union-attr]
    metadata["version"] = version
    with tarfile.open(out, "w:gz") as tar:
        for name, data in (
            ("metadata.json", json.dumps(metadata).encode()),  # first: status streams it
            ("model.onnx", onnx),
            ("padding.bin", os.urandom(pad_bytes)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def test_promotion_and_rollback_serve_the_model_from_the_package(project: LocalProject) -> None:
    code, first = project.json("up", "--yes", "--env", "local", **FAST_RETIRE)
    assert code == 0, first
    assert first["outputs"]["modelDelivery"] == "package"
    edge = first["outputs"]["edgeUrl"]

    code, report = project.json(
        "promote", "--env", "local", "--model", str(project.model("2")), **FAST_RETIRE
    )
    assert code == 0 and report["outcome"] == "promoted", report
    assert infer(edge, [5.1, 3.5, 1.4, 0.2])["model"]["version"] == "2"
    assert _deliveries(project) == {"2": "package"}

    # Every model gone from S3: a sandbox that read its model from there could not start.
    s3, bucket = _s3(project), first["outputs"]["bucket"]
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="models/"):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    assert s3.list_objects_v2(Bucket=bucket, Prefix="models/").get("KeyCount") == 0
    # blue (version 1) no longer has a sandbox: the rollback's requests start it cold
    _wait(lambda: "1" not in _get(edge + "/_edgeship/status")["warm"])

    code, rolled = project.json("rollback", "--env", "local", **FAST_RETIRE)
    assert code == 0, rolled
    _wait(lambda: _get(edge + "/_edgeship/status")["live"] == "1")
    answer = infer(edge, [5.1, 3.5, 1.4, 0.2])
    assert answer["model"]["version"] == SAMPLE_MODEL_VERSION
    assert "1" in _get(edge + "/_edgeship/status")["warm"]  # a fresh sandbox served it
    # put the models back: the next promotion compares green's contract with live's, read there
    s3.put_object(Bucket=bucket, Key=first["outputs"]["modelKey"], Body=SAMPLE_MODEL.read_bytes())


def test_a_model_over_the_package_limit_deploys_through_s3(project: LocalProject, tmp_path: Path) -> None:
    # The limit, lowered so that the sample model fits with the package but a model padded
    # by 1 MB does not (Lambda's own 250 MB would take a 200 MB model to reach).
    stored = [
        z for z in (project.state / "code").glob("*.zip") if modelship.MEMBER in zipfile.ZipFile(z).namelist()
    ]
    assert stored, "the first test's versions carried their model"
    with zipfile.ZipFile(stored[0]) as carried:
        package_bytes = modelship.unzipped_size(stored[0]) - carried.getinfo(modelship.MEMBER).file_size
    limit = {modelship.LIMIT_VARIABLE: str(package_bytes + SAMPLE_MODEL.stat().st_size + 256 * 1024)}
    padded = _padded(tmp_path / "padded.tar.gz", "9", 1024 * 1024)

    # preview says which way the model would go: the sample, one byte over a tighter limit
    tight = {modelship.LIMIT_VARIABLE: str(package_bytes + SAMPLE_MODEL.stat().st_size - 1)}
    code, preview = project.json("preview", "--env", "local", **tight, **FAST_RETIRE)
    assert code == 0, preview
    assert preview["diff"]["delivery"] == {"old": "package", "new": "s3"}, preview["diff"]

    code, report = project.json("promote", "--env", "local", "--model", str(padded), **limit, **FAST_RETIRE)
    assert code == 0 and report["outcome"] == "promoted", report
    outputs = _outputs(project)
    assert outputs["modelDelivery"] == "s3"
    answer = infer(outputs["edgeUrl"], [5.1, 3.5, 1.4, 0.2])
    assert answer["model"]["version"] == "9"
    assert list(_deliveries(project).values()) == ["s3"]


def _outputs(project: LocalProject) -> dict[str, Any]:
    code, outputs = project.json("outputs", "--env", "local")
    assert code == 0, outputs
    return dict(outputs)
