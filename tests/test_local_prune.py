"""An environment that stays clean, end to end on the local environment: six promotions with
function.keep_versions = 3 leave only the versions pruning allows, and `up` warns of a
reserved concurrency the account cannot give (the emulator answers GetAccountSettings)."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.programs import lifecycle
from orchestrator.release import prune
from orchestrator.release.record import RecordStore
from tests.conftest import SAMPLE_MODEL, LocalProject

# The fastest promotion the local environment runs: one step, no bake, a 1 s gate per step
# with thresholds only a broken green fails (this test judges pruning, not latency).
FAST_TOML = """
[project]
name = "prune"
model = "{model}"

[environments.local]
region = "us-east-1"
account_id = "123456789012"
[environments.local.function]
keep_versions = 3
# 50 left of the emulator's 1000 (AWS's default limit): `up` must warn
reserved_concurrency = 950
[environments.local.traffic]
schedule = "all-at-once"
bake_s = 0
lease_s = 8
[environments.local.load]
users = 2
spawn_rate = 2
duration_s = 1
min_green_requests = 0  # 1 s gates, sized by seconds alone: the test is about pruning
[environments.local.slo]
p95_ms = 5000
p99_ms = 10000
max_error_ratio = 0.5
min_rps = 0
min_samples = 1
relative_p95_factor = 0
"""


def _events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_six_promotions_keep_three_versions(tmp_path: Any) -> None:
    project = LocalProject(tmp_path)
    project.config.write_text(FAST_TOML.format(model=SAMPLE_MODEL))
    try:
        done = project.cli("up", "--yes", "--env", "local", "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        warnings = [e["message"] for e in _events(done.stderr) if e["kind"] == "diagnostic"]
        assert any(
            "reserved_concurrency = 950" in w and "would leave 50 of the account's 1000" in w
            and "lower function.reserved_concurrency to at most 900" in w
            for w in warnings
        ), warnings  # fmt: skip

        deleted: list[str] = []
        for version in range(2, 8):
            done = project.cli(
                "promote", "--env", "local", "--model", str(project.model(str(version))), "--json"
            )
            assert done.returncode == 0, done.stderr[-3000:]
            report = json.loads(done.stdout)
            assert (report["outcome"], report["green"]) == ("promoted", str(version))
            pruned = report["pruned"]
            assert pruned["problems"] == [] and pruned["kept"][-1] == str(version)
            # the newest three stay: green, blue and the one before
            assert pruned["kept"] == [str(v) for v in range(max(1, version - 2), version + 1)]
            deleted += pruned["deleted_versions"]
            said = [
                e for e in _events(done.stderr) if e["kind"] == "step" and e["message"].startswith("pruned")
            ]
            assert [e["data"] for e in said] == [pruned]
        assert deleted == ["1", "2", "3", "4"]

        # what the emulator holds now is what the plan keeps, and nothing more
        target = project.target()
        lam = target.lambda_client()
        function = target.function_name
        versions = prune.read_versions(lam, function)
        record, _ = RecordStore(target.s3_client(), target.bucket, "local").read()
        planned = prune.plan(versions, prune.read_aliases(lam, function), record, keep=3)
        assert (
            sorted((v for v in versions if v != prune.LATEST), key=int)
            == list(planned.keep)
            == ["5", "6", "7"]
        )
        assert planned.delete == ()
        # and the bucket expires what pruning and lease renewals leave as noncurrent versions
        rules = target.s3_client().get_bucket_lifecycle_configuration(Bucket=target.bucket)["Rules"]
        assert rules == lifecycle.s3_rules(lifecycle.DEFAULT_NONCURRENT_DAYS)
    finally:
        project.stop()
