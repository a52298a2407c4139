"""The contract between the two programs: the serving program (AWS) and the local program
read the same `edgeship:*` config keys and export the same output keys, so one release
path reads both.

Both run under Pulumi's mocks here (about a second); tests/test_local_stack.py checks that
the local stack's real outputs, from the engine, are these keys too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

from orchestrator.programs import local, serving
from tests.test_serving_program import _stand_in_package

# A small zip: the programs hash it, add the model beside it when it fits (modelship.py)
# and upload the result.
PACKAGE = _stand_in_package()
# Captured once: each surface() wraps this original, never an earlier call's wrapper (which
# would also count what this program reads as read by the previous one).
_FULL_KEY = pulumi.Config.full_key
# Read by the local program only: the local edge publishes the function's metrics as late
# as Lambda's reach CloudWatch on AWS, where there is nothing to delay.
LOCAL_ONLY_CONFIG = {"edgeship:metricDelayS"}


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = {"version": "1", "arn": "arn:mock", "url": "http://127.0.0.1:1", "value": "s",
                   "bucket": "b", "key": "k", "name": args.inputs.get("name", args.name),
                   "functionName": "fn", "apiEndpoint": "https://x", "domainName": "d", "executionArn": "e",
                   "sent": "s", "accepted": ["s"], "rotation": "0:settled", "invokeArn": "i"}  # fmt: skip
        return f"{args.name}-id", {**outputs, **args.inputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


def surface(
    program: Any, monkeypatch: pytest.MonkeyPatch, package: str = str(PACKAGE)
) -> tuple[set[str], set[str]]:
    """(config keys read in namespace edgeship, output keys exported) by one program."""
    exported: set[str] = set()
    read: set[str] = set()

    def full_key(self: pulumi.Config, key: str) -> str:
        name = _FULL_KEY(self, key)
        if name.startswith("edgeship:"):
            read.add(name)
        return name

    monkeypatch.setattr(pulumi.Config, "full_key", full_key)
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.add(name))
    pulumi.runtime.set_mocks(_Mocks(), project="edgeship", stack="local", preview=False)
    # a package, as `orchestrator up` always passes one (the serving program requires it)
    pulumi.runtime.set_all_config({"aws:region": "eu-west-1", "edgeship:packagePath": package})
    pulumi.runtime.test(program)()
    return read, exported


def test_local_and_serving_programs_share_config_and_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving_config, serving_outputs = surface(serving.program, monkeypatch)
    local_config, local_outputs = surface(local.program_for(tmp_path), monkeypatch)
    assert serving_outputs == local_outputs
    assert serving_config == local_config - LOCAL_ONLY_CONFIG
    # issue 24's keys, which both programs read through ServingConfig.from_stack
    assert {"edgeship:boundaryArn", "edgeship:noncurrentDays"} <= serving_config
    assert {"functionName", "bucket", "edgeUrl", "apiUrl", "publishedVersion", "region",
            "originSecretRotation", "originSecretUrn"} <= local_outputs  # fmt: skip


@pytest.mark.parametrize("which", ["serving", "local"])
def test_neither_program_deploys_without_the_package(
    which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never a handler-only archive: it cannot import the function's dependencies.
    program = serving.program if which == "serving" else local.program_for(tmp_path)
    with pytest.raises(Exception, match="packagePath is not set"):
        surface(program, monkeypatch, package="")
    assert not (tmp_path / "code").exists()  # nothing stored for the edge to run
