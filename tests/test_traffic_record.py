"""Traffic moves and the promotion record/lock against a real moto server over HTTPS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import PromotionLockedError
from orchestrator.local import emulator, provision
from orchestrator.record import RUNNING, Holder, PromotionRecord, RecordStore
from orchestrator.targets import FUNCTION_DIR
from orchestrator.traffic import Traffic, TrafficError

SAMPLE = Path(__file__).resolve().parents[1] / "programs" / "function" / "sample" / "model.tar.gz"


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Any:
    state = tmp_path_factory.mktemp("emulator")
    server = emulator.ensure(state)
    ca = state / "tls" / "cert.pem"
    clients = {name: emulator.client(name, server.url, ca) for name in ("lambda", "s3", "iam")}
    stack = provision.LocalStack("traffic-test-infer", "traffic-test-models")
    from orchestrator.demo import model_version

    for version in ("1", "2", "3"):
        model = model_version(SAMPLE, version, state / f"m{version}.tar.gz")
        provision.deploy(clients["lambda"], clients["s3"], clients["iam"], stack, state_dir=state,
                         function_dir=FUNCTION_DIR, model_path=model, memory_mb=512, timeout_s=10)  # fmt: skip
    yield clients, stack
    emulator.stop(state)


def test_deploy_publishes_versions_and_is_idempotent(aws: Any, tmp_path: Path) -> None:
    clients, stack = aws
    traffic = Traffic(clients["lambda"], stack.function_name)
    assert traffic.versions() == ["1", "2", "3"]
    assert traffic.state("candidate").version == "3" and traffic.state("live").version == "1"
    env = clients["lambda"].get_function_configuration(FunctionName=stack.function_name, Qualifier="2")[
        "Environment"
    ]
    assert env["Variables"]["MODEL_URI"].startswith(f"s3://{stack.bucket}/models/")
    block = clients["s3"].get_public_access_block(Bucket=stack.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_shift_finish_and_rollback(aws: Any) -> None:
    clients, stack = aws
    traffic = Traffic(clients["lambda"], stack.function_name)
    traffic.rollback("1")
    assert traffic.shift("1", "3", 10) == traffic.state()
    assert traffic.state().weights == {"3": 0.1} and traffic.state().version == "1"
    traffic.shift("1", "3", 60)
    assert traffic.state().share_of("3") == pytest.approx(0.6)
    traffic.shift("1", "3", 100)
    assert traffic.state().version == "3" and traffic.state().weights == {}
    traffic.rollback("1")
    assert traffic.state().version == "1" and traffic.state().weights == {}
    with pytest.raises(TrafficError):
        traffic.shift("1", "99", 10)  # no such version: the API refuses, we say so


def test_record_and_lock(aws: Any) -> None:
    clients, stack = aws
    store = RecordStore(clients["s3"], stack.bucket, "locktest")
    assert store.current() is None and store.lock_holder() is None
    me = Holder.me()
    store.acquire(me)
    with pytest.raises(PromotionLockedError) as info:
        store.acquire(Holder("other", "host", 1))
    assert me.describe() in info.value.message
    record = PromotionRecord.new("locktest", "1", "2", "canary", [10, 100])
    store.save(record.advance(0, 10))
    back = store.current()
    assert back is not None and back.state == RUNNING and back.weight == 10 and back.holder == me
    store.release()
    assert store.lock_holder() is None
    store.acquire(Holder("next", "host", 2))
    store.release()


def test_dead_holder_is_detected() -> None:
    from orchestrator.processes import alive
    from orchestrator.record import holder_is_gone

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    me = Holder.me()
    assert holder_is_gone(Holder(me.user, me.host, proc.pid), host=me.host, pid_alive=alive(proc.pid))
    assert not holder_is_gone(me, host=me.host, pid_alive=alive(me.pid))
