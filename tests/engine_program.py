"""A cloud-free inline program for the engine tests: config in, outputs out, one
secret, one dynamic resource. Same shape as the serving program, no provider needed."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

SECRET_MARKER = "edgeship-test-secret-4f1c9a"


class _Provider(ResourceProvider):
    """Records a value; optionally slow, and signals through a file when work starts."""

    def _work(self, props: dict[str, Any]) -> dict[str, Any]:
        if props.get("started_file"):
            Path(props["started_file"]).write_text("started")
        # With a hold file, `delay` is at most how long to wait for the test to create it: the
        # test decides when the work ends, not a race against a busy machine's clock.
        hold, until = props.get("hold_file"), time.monotonic() + float(props.get("delay", 0))
        while time.monotonic() < until and not (hold and Path(hold).exists()):
            time.sleep(0.05 if hold else max(0.0, until - time.monotonic()))
        return {**props, "stamp": f"{props['value']}@{time.time():.0f}"}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs=self._work(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("value",) if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._work(news))


class Recorder(Resource):
    stamp: pulumi.Output[str]

    def __init__(self, name: str, value: str, delay: float, started_file: str, hold_file: str = "") -> None:
        props = {
            "value": value,
            "delay": delay,
            "started_file": started_file,
            "hold_file": hold_file,
            "stamp": None,
        }
        super().__init__(_Provider(), name, props)


def program() -> None:
    config = pulumi.Config("edgeship")
    memory = config.get("memoryMb") or "0"
    # Test knobs come from the environment so CLI subprocess tests can set them.
    delay = float(os.environ.get("EDGESHIP_TEST_DELAY_S", "0"))
    started_file = os.environ.get("EDGESHIP_TEST_STARTED_FILE", "")
    hold_file = os.environ.get("EDGESHIP_TEST_HOLD_FILE", "")
    recorder = Recorder("recorder", f"memory={memory}", delay, started_file, hold_file)
    pulumi.export("memoryMb", memory)
    pulumi.export("stamp", recorder.stamp)
    pulumi.export("token", pulumi.Output.secret(SECRET_MARKER))
