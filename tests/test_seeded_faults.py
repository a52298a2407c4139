"""The seeded regressions bench/promotion_outcomes.py promotes (orchestrator.demo.faulty_function):
the built handler, imported as a sandbox imports it, with the real sample model."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import types
from pathlib import Path
from types import ModuleType

import pytest

from orchestrator.build.artifacts import sha256_file
from orchestrator.demo import faulty_function

MODEL = Path(__file__).resolve().parents[1] / "programs" / "function" / "sample" / "model.tar.gz"
BODY = json.dumps({"inputs": [5.1, 3.5, 1.4, 0.2]})


def _load(directory: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The built handler.py as a fresh sandbox imports it (its model from MODEL_URI)."""
    monkeypatch.setenv("MODEL_URI", MODEL.as_uri())
    monkeypatch.setenv("MODEL_SHA256", sha256_file(MODEL))
    spec = importlib.util.spec_from_file_location(name, directory / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _event() -> dict[str, object]:
    return {"version": "2.0", "rawPath": "/infer", "body": BODY,
            "requestContext": {"http": {"method": "POST", "path": "/infer"}}}  # fmt: skip


def _statuses(module: ModuleType, n: int) -> list[int]:
    return [int(module.handler(_event(), None)["statusCode"]) for _ in range(n)]


def test_error_ratio_is_seeded_and_near_its_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = faulty_function(tmp_path / "errors", error_ratio=0.03, seed=25)
    first = _statuses(_load(built, "faulty_a", monkeypatch), 2000)
    again = _statuses(_load(built, "faulty_b", monkeypatch), 2000)  # a second sandbox: the same draws
    assert set(first) == {200, 500} and first == again
    failed = first.count(500)
    # 3 % of 2000 = 60, binomial sd 7.6: within 4.5 sd (the seed makes it exact; the bound says why)
    assert abs(failed - 60) < 35, failed


def test_delay_is_added_to_every_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load(faulty_function(tmp_path / "slow", delay_s=0.012), "faulty_slow", monkeypatch)
    slept: list[float] = []
    module.time = types.SimpleNamespace(sleep=slept.append, time=time.time)  # type: ignore[attr-defined]  # no wall clock judged
    assert _statuses(module, 50) == [200] * 50
    assert slept == [0.012] * 50


def test_no_fault_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load(faulty_function(tmp_path / "plain"), "faulty_plain", monkeypatch)
    assert _statuses(module, 500) == [200] * 500
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        faulty_function(tmp_path / "bad", error_ratio=3)
