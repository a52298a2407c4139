"""Records and leases of other edgeship versions, through the CLI on the local environment
(the emulator's S3): a newer format is exit 2 with the version to run in every command that
reads them, never a traceback; a shipped older record is read and finished; this version's
writes carry their format. The pure side is tests/test_formats.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import __version__
from orchestrator.base.errors import ExitCode
from tests.conftest import LocalProject

DATA = Path(__file__).parent / "data" / "records"
NEWER = 99  # a format no edgeship reads yet


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalProject, Any]]:
    """One local environment, deployed once (v1 live), and its S3 client and bucket."""
    project = LocalProject(tmp_path_factory.mktemp("formats"))
    try:
        done = project.cli("up", "--env", "local", "--yes", "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        target = project.target()
        yield project, (target.s3_client(), target.bucket)
    finally:
        project.stop()


def _put(s3_bucket: Any, name: str, body: dict[str, Any]) -> None:
    s3, bucket = s3_bucket
    s3.put_object(Bucket=bucket, Key=f"promotions/local/{name}", Body=json.dumps(body).encode())


def _clear(s3_bucket: Any) -> None:
    s3, bucket = s3_bucket
    for name in ("current.json", "lock.json", "abort.json"):
        s3.delete_object(Bucket=bucket, Key=f"promotions/local/{name}")


def _fixture(name: str, **changes: Any) -> dict[str, Any]:
    return {**json.loads((DATA / f"{name}.json").read_text()), **changes}


def _refusal(what: str, history: str = "") -> str:
    return (
        f"the promotion {what} of 'local'{history} was written by edgeship 9.4.0 (format {NEWER}); "
        f"this is edgeship {__version__} (reads up to format 2): run that version or newer"
    )


RECORD_READERS = [
    ["status"],
    ["abort"],
    ["promote", "--resume"],
    ["promote", "--rollback"],
    ["rollback"],
    ["resume-promotion"],
    ["up", "--yes"],
    ["history"],
]


def test_a_newer_record_is_exit_2_naming_the_version_in_every_command(deployed: Any) -> None:
    project, s3_bucket = deployed
    _clear(s3_bucket)
    newer = _fixture("format2-record-baking", env="local", format=NEWER, edgeship="9.4.0", labels={"a": 1})
    _put(s3_bucket, "current.json", newer)
    s3, bucket = s3_bucket
    s3.put_object(
        Bucket=bucket, Key=f"promotions/local/history/{newer['id']}.json", Body=json.dumps(newer).encode()
    )
    for command in RECORD_READERS:
        done = project.cli(*command, "--env", "local")
        assert done.returncode == ExitCode.USAGE, (command, done.stdout, done.stderr)
        said = _refusal("record", f" (history {newer['id']}.json)" if command == ["history"] else "")
        assert said in " ".join(done.stderr.split()), (command, done.stderr)
        assert "Traceback" not in done.stderr, (command, done.stderr)
    code, error = project.json("status", "--env", "local")
    assert (code, error["error"], error["message"]) == (2, "FormatError", _refusal("record"))
    s3.delete_object(Bucket=bucket, Key=f"promotions/local/history/{newer['id']}.json")


def test_a_newer_lease_is_exit_2_naming_the_version(deployed: Any) -> None:
    project, s3_bucket = deployed
    _clear(s3_bucket)
    _put(s3_bucket, "lock.json", _fixture("format2-lease", format=NEWER, edgeship="9.4.0"))
    for command in (["status"], ["abort"], ["promote", "--resume"], ["up", "--yes"]):
        done = project.cli(*command, "--env", "local")
        assert done.returncode == ExitCode.USAGE, (command, done.stdout, done.stderr)
        assert _refusal("lease") in " ".join(done.stderr.split()), (command, done.stderr)
        assert "Traceback" not in done.stderr, (command, done.stderr)
    _clear(s3_bucket)


def test_a_shipped_older_promotion_is_finished_and_rewritten_in_this_format(deployed: Any) -> None:
    """A promotion interrupted while baking under the edgeship of before the pause (its lease
    expired, and it came from before `boot`), with a field of an unknown writer: `status`
    explains it, `abort` rolls it back, and the record is then this version's."""
    project, s3_bucket = deployed
    _clear(s3_bucket)
    record = _fixture("format1-before-paused-record-baking", env="local", labels={"team": "ml"})
    _put(s3_bucket, "current.json", record)
    _put(s3_bucket, "lock.json", _fixture("format1-before-boot-lease", expires_at=1.0))
    code, status = project.json("status", "--env", "local")
    assert code == 0, status
    promotion = status["promotion"]
    assert (promotion["id"], promotion["phase"], promotion["step"]) == (record["id"], "baking", 1), promotion
    code, aborted = project.json("abort", "--env", "local")
    assert code == 0, aborted
    s3, bucket = s3_bucket
    body = json.loads(s3.get_object(Bucket=bucket, Key="promotions/local/current.json")["Body"].read())
    assert (body["id"], body["phase"], body["format"], body["edgeship"]) == (
        record["id"],
        "aborted",
        2,
        __version__,
    )
    assert "labels" not in body  # a reader keeps only what it knows
    code, status = project.json("status", "--env", "local")
    assert code == 0 and status["live"] == {"version": "1", "weights": {}}, status
    _clear(s3_bucket)
