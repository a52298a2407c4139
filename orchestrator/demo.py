"""`make demo`: the whole release flow on the local environment, in a few minutes.

1. start the local environment (AWS API emulator + local edge) and deploy model v1
2. promote model v2 through a canary schedule, gated by Locust at every step
3. try a deliberately slow v3 and watch the gates roll it back
4. leave the environment running, with how to call it and how to stop it
"""

from __future__ import annotations

import contextlib
import json
import sys
import tarfile
import tempfile
from pathlib import Path

from orchestrator.base import paths
from orchestrator.build.artifacts import build_model_archive

FUNCTION_DIR = paths.FUNCTION_DIR


def model_version(source: Path, version: str, out: Path) -> Path:
    """A copy of a model archive with another version in its metadata."""
    with tarfile.open(source, "r:gz") as tar:
        metadata = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
        onnx = tar.extractfile("model.onnx").read()  # type: ignore[union-attr]
    metadata["version"] = version
    onnx_path = out.parent / f"{out.stem}.onnx"
    onnx_path.write_bytes(onnx)
    build_model_archive(onnx_path, metadata, out)
    onnx_path.unlink()
    return out


def faulty_function(
    out_dir: Path,
    *,
    delay_s: float = 0.0,
    error_every: int = 0,
    crash_every: int = 0,
    live_only: bool = False,
    crash_on_batch: bool = False,
    error_ratio: float = 0.0,
    seed: int = 0,
) -> Path:
    """The real handler plus a fault: a fixed delay; a 500 every Nth request, or on a share
    `error_ratio` of requests drawn from a `random.Random(seed)` per sandbox (a seeded
    regression: reproducible, and not in lockstep with the load's own rhythm); an unhandled
    exception (a function error: API Gateway answers without the function's headers) every
    Nth request, only behind `live` with live_only (a broken live-path dependency), or on
    every batch request (which real users send and the load test does not).

    A build for the demo, the tests and bench/promotion_outcomes.py, deployed only when one
    passes its directory to `promote --function-dir`: the shipped handler has no fault in it."""
    if not 0.0 <= error_ratio <= 1.0:
        raise ValueError(f"error_ratio must be within 0..1, got {error_ratio}")
    out_dir.mkdir(parents=True, exist_ok=True)
    source = (FUNCTION_DIR / "handler.py").read_text()
    fault = f"""

# --- deliberately faulty build (edgeship demo/tests) ---
import random as _random

_real_handler = handler
_calls = 0
_rng = _random.Random({seed!r})


def handler(event, context):
    global _calls
    time.sleep({delay_s!r})
    if {crash_on_batch!r} and '"instances"' in (event.get("body") or ""):
        raise RuntimeError("injected fault: batches crash this build")
    if {live_only!r} and event.get("rawPath", "").startswith("/candidate"):
        return _real_handler(event, context)
    _calls += 1
    if {error_every!r} and _calls % {error_every!r} == 0:
        return _raw_response(500, '{{"error":"internal_error","detail":"injected fault"}}')
    if {error_ratio!r} and _rng.random() < {error_ratio!r}:
        return _raw_response(500, '{{"error":"internal_error","detail":"injected fault (seeded)"}}')
    if {crash_every!r} and _calls % {crash_every!r} == 0:
        raise RuntimeError("injected fault: unhandled exception")
    return _real_handler(event, context)
"""
    (out_dir / "handler.py").write_text(source + fault)
    # The same pins: it is packaged as the real function is (the local environment runs the zip that ships).
    (out_dir / "requirements.txt").write_bytes((FUNCTION_DIR / "requirements.txt").read_bytes())
    return out_dir


def main() -> int:
    """Run the demo; exit 0 when v2 was promoted and v3 rolled back."""

    from orchestrator.base.errors import GateFailedError, NotDeployedError
    from orchestrator.base.progress import ConsoleReporter, ProgressEvent, counts
    from orchestrator.config import settings as settings_mod
    from orchestrator.release.operations import PromoteOptions, Release
    from orchestrator.stacks.targets import open_environment

    settings = settings_mod.load()
    env = settings.environment("local")
    say = ConsoleReporter()
    target = open_environment(settings, env, reporter=say)
    release = Release(target, env, say, settings.root / "reports")
    work = Path(tempfile.mkdtemp(prefix="edgeship-demo-"))

    def banner(text: str) -> None:
        say.event(ProgressEvent("info", f"\n=== {text} ==="))

    banner("1/4 a fresh local stack, model v1: `orchestrator up --env local --yes` (Pulumi engine)")
    with contextlib.suppress(NotDeployedError):  # nothing left from an earlier run
        target.destroy()
    first = target.up(model=settings.model)
    changes = counts(first.changes, with_same=False)
    say.event(ProgressEvent("step", f"stack {first.stack}: {changes} in {first.duration_s:.1f}s"))
    say.event(
        ProgressEvent(
            "step", f"v{first.outputs['publishedVersion']} deployed; live serves it at {target.edge().url}"
        )
    )

    banner("2/4 promote model v2 (canary, gated)")
    v2 = model_version(settings.model, "2", work / "model-v2.tar.gz")
    report = release.promote(PromoteOptions(model=v2))
    print(Path(report.directory, "report.md").read_text())

    banner("3/4 a deliberately slow v3 (+300 ms per request)")
    slow = faulty_function(work / "slow-v3", delay_s=0.3)
    rolled_back = False
    try:
        release.promote(
            PromoteOptions(
                model=model_version(settings.model, "3", work / "model-v3.tar.gz"), function_dir=slow
            )
        )
    except GateFailedError as exc:
        rolled_back = True
        say.event(ProgressEvent("step", f"rolled back as it should be: {exc.message}"))
    status = release.status()
    say.event(
        ProgressEvent(
            "step",
            f"live is on v{status['live']['version']} with weights {status['live']['weights'] or 'none'}",
        )
    )

    banner("4/4 the stack's history, and the environment keeps running")
    from orchestrator.release import timeline  # Pulumi's zone-less UTC times, made explicit

    for update in target.history(10):
        changes = counts(update["changes"], with_same=False)
        print(f"  {timeline.iso(update['started'])}  {update['kind']:<8} {update['result']:<10} {changes}")
    edge = target.edge().url
    print(f"call it:  curl -s -X POST {edge}/infer -d '{{\"inputs\": [5.1, 3.5, 1.4, 0.2]}}'")
    print("status:   .venv/bin/orchestrator status --env local")
    print("history:  .venv/bin/orchestrator history --env local")
    print("stop it:  .venv/bin/orchestrator destroy --env local --yes")
    ok = report.outcome == "promoted" and rolled_back and status["live"]["version"] == report.green
    return 0 if ok else 1


def run() -> int:
    """main(), with edgeship's errors printed as the CLI prints them (message, fix)."""
    from orchestrator.base.errors import EdgeshipError

    try:
        return main()
    except EdgeshipError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        return int(exc.exit_code)


if __name__ == "__main__":
    sys.exit(run())
