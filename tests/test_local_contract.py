"""The model contract on the local environment (real moto server, local edge, Pulumi engine):
what `promote --model` refuses happens before anything is published, `--dry-run` included.
No gate runs here (latency-blind); the allowed breaking change is promoted in test_modelpack.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.base.errors import ExitCode
from tests.conftest import LocalProject, onnx_classifier


def _published(project: LocalProject) -> tuple[list[str], str, str]:
    """(the function's published versions, live's version, candidate's version), from Lambda."""
    target = project.target()
    lam, function = target.lambda_client(), target.function_name
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=function)["Versions"]]
    alias = {
        a: lam.get_alias(FunctionName=function, Name=a)["FunctionVersion"] for a in ("live", "candidate")
    }
    return versions, alias["live"], alias["candidate"]


def _refused(project: LocalProject, *args: str) -> dict[str, Any]:
    code, result = project.json("promote", "--env", "local", *args)
    assert code == ExitCode.USAGE, result
    return dict(result)


def test_what_breaks_the_contract_or_is_no_model_pack_is_refused_before_publishing_and_status_shows_it(
    local_project: LocalProject, tmp_path: Path
) -> None:
    code, first = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, first
    before = _published(local_project)
    assert before[1:] == ("1", "1")

    fewer = onnx_classifier(tmp_path / "three.tar.gz", 3, 3, version="2")
    for dry in ([], ["--dry-run"]):
        refused = _refused(local_project, "--model", str(fewer), *dry)
        assert (
            "live takes 4 features [sepal_length,sepal_width,petal_length,petal_width]; green takes 3 "
            "[f0,f1,f2]: every current client would get bad_shape"
        ) in refused["message"], refused
        assert "iris-classifier 1" in refused["message"] and "classifier-3x3 2" in refused["message"]
        assert "--allow-breaking-change" in refused["fix"]

    raw = tmp_path / "model.onnx"
    raw.write_bytes(b"\x08\x08\x12\x07skl2onnx")  # an ONNX file's first bytes
    for dry in ([], ["--dry-run"]):
        refused = _refused(local_project, "--model", str(raw), *dry)
        assert refused["message"] == "model.onnx is an ONNX file, not a model pack archive", refused
        assert "orchestrator model pack model.onnx" in refused["fix"]
        refused = _refused(local_project, "--model", str(tmp_path / "gone.tar.gz"), *dry)
        assert refused["message"] == f"model archive {tmp_path / 'gone.tar.gz'} not found", refused

    assert _published(local_project) == before  # no new version; live and candidate unchanged

    # the dry run of an allowed breaking change: all at once, both models named
    code, plan = local_project.json(
        "promote", "--env", "local", "--model", str(fewer), "--dry-run", "--allow-breaking-change"
    )
    assert code == 0, plan
    assert plan["schedule"] == "all-at-once" and plan["steps"] == [100]
    contract = plan["contract"]
    assert contract["breaking"] and contract["live"]["name"] == "iris-classifier"
    assert (contract["green"]["name"], contract["green"]["version"]) == ("classifier-3x3", "2")
    assert len(contract["live"]["sha256"]) == len(contract["green"]["sha256"]) == 64
    assert _published(local_project) == before

    # `up` publishes the other model behind candidate (live stays): status names both and the change
    config = local_project.config.read_text()
    local_project.config.write_text(config.replace('model = "', f'model = "{fewer}"\n# was: model = "', 1))
    code, second = local_project.json("up", "--yes", "--env", "local")
    assert code == 0, second
    code, status = local_project.json("status", "--env", "local")
    assert code == 0, status
    assert (status["live"]["version"], status["candidate"]) == ("1", "2")
    assert status["contract"]["breaking"] and status["contract"]["reasons"][0].startswith(
        "live takes 4 features [sepal_length,sepal_width,petal_length,petal_width]; green takes 3 [f0,f1,f2]"
    )
    text = local_project.cli("status", "--env", "local").stdout
    assert "contract v1 (live) -> v2 (candidate): breaking: live takes 4 features" in text, text
    assert "classifier-3x3 2 (sha256" in text and "iris-classifier 1 (sha256" in text, text


def test_up_refuses_a_project_model_that_is_no_model_pack(
    local_project: LocalProject, tmp_path: Path
) -> None:
    raw = tmp_path / "raw.onnx"
    raw.write_bytes(b"\x08\x08")
    config = local_project.config.read_text()
    local_project.config.write_text(config.replace('model = "', f'model = "{raw}"\n# was: model = "', 1))
    code, refused = local_project.json("up", "--yes", "--env", "local")
    assert code == ExitCode.USAGE, refused
    assert refused["message"] == "raw.onnx is an ONNX file, not a model pack archive"
    assert not local_project.state.exists() or not (local_project.state / "edge.json").exists()
