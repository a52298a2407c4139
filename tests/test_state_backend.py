"""What the real engine reads and writes in a state backend, against orchestrator/stacks/statekeys.py.

An emulated S3 backend (a moto server whose request log we read) shows every request a
first preview, `up`, a second preview, a second `up` and `destroy --remove` send; a file
backend shows the first preview and `bootstrap`. Patterns match keys with IAM's `*`, which,
like fnmatch's, crosses `/`. Then the roles themselves: users holding only the state
statements built from the table, on a moto server that checks IAM, preview and deploy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from orchestrator.stacks import engine as stacks
from orchestrator.stacks import statekeys
from tests.conftest import REPO, Moto
from tests.engine_program import SECRET_MARKER

PROGRAM = "tests.engine_program:program"
NOTE = "is not deployed yet: this preview shows everything the first `up` creates"


# -- pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://state/edgeship", statekeys.S3Backend("state", "edgeship")),
        ("s3://state", statekeys.S3Backend("state", "")),
        (
            "s3://b/p/q/?endpoint=127.0.0.1:9000&s3ForcePathStyle=true&disableSSL=true&region=eu-west-1",
            statekeys.S3Backend("b", "p/q", "http://127.0.0.1:9000", "eu-west-1", None, True),
        ),
        (
            "s3://b?endpoint=https://minio:9000&use_path_style=true&profile=ci",
            statekeys.S3Backend("b", "", "https://minio:9000", None, "ci", True),
        ),
        ("s3://b/p?endpoint=minio:9000", statekeys.S3Backend("b", "p", "https://minio:9000")),
        ("file:///tmp/state", None),
        ("https://api.pulumi.com", None),
    ],
)
def test_s3_backend_reads_the_url_as_the_engine_does(url: str, expected: statekeys.S3Backend | None) -> None:
    assert statekeys.s3_backend(url) == expected


def test_keys_are_the_stacks_own_and_a_preview_reads_no_lock() -> None:
    keys = statekeys.keys("My_Project", "Prod")
    assert all("My_Project" in p for p in (*keys.read, *keys.write) if p != ".pulumi/meta.yaml")
    assert not any(_matches(".pulumi/stacks/My_Project/Prod2.json", p) for p in keys.write)
    assert not any(_matches(".pulumi/stacks/edgeship/Prod.json", p) for p in keys.write)
    assert not any("locks" in p or "history" in p for p in keys.read)
    assert set(keys.absent_reads) <= set(keys.read)


def test_a_first_deploys_preview_says_so_to_a_person_and_in_the_step_summary() -> None:
    from orchestrator.base import output
    from orchestrator.cli.base import _preview_text

    result = {"operation": "preview", "stack": "dev", "changes": {"create": 9}, "duration_s": 1.0,
              "note": f"dev {NOTE}"}  # fmt: skip
    assert _preview_text(result, full=False).splitlines()[0] == f"dev {NOTE}"
    assert f"dev {NOTE}" in output.stack_summary(result).splitlines()
    assert "not deployed" not in _preview_text({**result, "note": None}, full=False)


def test_checkpoint_exists_reads_file_urls_as_the_engine_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = tmp_path / "a state"  # Path.as_uri() percent-encodes the space
    assert stacks.checkpoint_exists(backend.as_uri(), "p", "dev") is False
    saved = backend / ".pulumi" / "stacks" / "p" / "dev.json.gz"  # PULUMI_DIY_BACKEND_GZIP's
    saved.parent.mkdir(parents=True)
    saved.write_text("{}")
    assert stacks.checkpoint_exists(backend.as_uri(), "p", "dev") is True
    assert stacks.checkpoint_exists(backend.as_uri(), "p", "prod") is False
    monkeypatch.setenv("HOME", str(tmp_path))
    assert stacks.checkpoint_exists("file://~/a state", "p", "dev") is True
    assert stacks.checkpoint_exists("https://api.pulumi.com", "p", "dev") is None
    # Pulumi's older, project-less layout: the stack may exist, so it is not "not deployed"
    legacy = backend / ".pulumi" / "stacks" / "prod.json"
    legacy.write_text("{}")
    assert stacks.checkpoint_exists(backend.as_uri(), "p", "prod") is None


def _matches(key: str, pattern: str) -> bool:
    return fnmatchcase(key, pattern)


# -- the engine on an emulated S3 backend -----------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    key: str | None  # relative to the backend's prefix; None for a ListObjects
    prefix: str | None  # a ListObjects' prefix, relative to the backend's prefix
    status: int


class LoggedMoto(Moto):
    """The conftest's moto server, with its request log kept (werkzeug's, on stderr)."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log

    def start(self) -> None:
        from orchestrator.local import daemon
        from tests.conftest import wait_for

        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out)
        wait_for(lambda: daemon.healthy(self.url + "/moto-api/", timeout=0.5), timeout=30)

    def requests_since(self, offset: int, bucket: str, prefix: str) -> list[Request]:
        lines = self.log.read_bytes()[offset:].decode(errors="replace").splitlines()
        found = []
        for line in lines:
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # werkzeug colours a 404's line, even in a file
            match = re.search(r'"(GET|PUT|HEAD|DELETE|POST) (\S+) HTTP/[\d.]+"\S* (\d{3})', line)
            if not match:
                assert " HTTP/" not in line, f"a request line not understood: {line}"
                continue
            if "/moto-api" in match[2]:
                continue
            path, _, query = match[2].partition("?")
            path = urllib.parse.unquote(path)
            within = f"/{bucket}/{prefix}/"
            if path.rstrip("/") == f"/{bucket}":  # a ListObjects
                listed = urllib.parse.parse_qs(query).get("prefix", [""])[-1]
                found.append(Request(match[1], None, listed.removeprefix(f"{prefix}/"), int(match[3])))
            elif path.startswith(within):
                found.append(Request(match[1], path.removeprefix(within), None, int(match[3])))
            else:
                raise AssertionError(f"a request outside the backend's prefix: {line}")
        return found


@pytest.fixture(scope="module")
def logged_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedMoto]:
    server = LoggedMoto(tmp_path_factory.mktemp("moto") / "requests.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # the engine's dynamic provider imports tests.engine_program; the S3 backend's credentials
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-passphrase")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)


def _spec(project: str, backend_url: str, work_dir: Path, pulumi_root: Path) -> stacks.StackSpec:
    return stacks.StackSpec(
        project=project, stack="dev", backend_url=backend_url, work_dir=work_dir, pulumi_root=pulumi_root,
        # a secret in the stack's config: the first preview's throwaway stack encrypts it too
        config={"edgeship:memoryMb": ("512", False), "edgeship:apiToken": (SECRET_MARKER, True)},
    )  # fmt: skip


def test_s3_backend_every_request_within_the_roles_keys(
    logged_moto: LoggedMoto, engine_env: None, pulumi_root: Path, tmp_path: Path
) -> None:
    import boto3

    project, bucket, prefix = "Shop_Svc", "state-bucket", "edgeship/state"
    s3 = boto3.client("s3", endpoint_url=logged_moto.url)
    s3.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/{prefix}?endpoint=127.0.0.1:{logged_moto.port}&s3ForcePathStyle=true&disableSSL=true&region=us-east-1"
    spec = _spec(project, url, tmp_path / "workspace", pulumi_root)
    program = stacks.load_program(PROGRAM)
    keys = statekeys.keys(project, "dev")

    def stored() -> dict[str, str]:
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"].removeprefix(f"{prefix}/"): o["ETag"] for o in listed}

    def run(
        operation: Callable[[stacks.Stacks], Any],
    ) -> tuple[Any, list[Request], dict[str, str], dict[str, str]]:
        before = stored()
        offset = logged_moto.log.stat().st_size
        result = operation(stacks.Stacks(spec, program))
        return result, logged_moto.requests_since(offset, bucket, prefix), before, stored()

    def written(requests: list[Request]) -> list[str]:
        return [r.key for r in requests if r.method in ("PUT", "POST", "DELETE") and r.key is not None]

    def read(requests: list[Request]) -> list[str]:
        return [r.key for r in requests if r.method in ("GET", "HEAD") and r.key is not None]

    def listed(requests: list[Request]) -> list[str]:
        return [r.prefix for r in requests if r.key is None and r.prefix is not None]

    def uncovered(found: list[str], patterns: tuple[str, ...]) -> set[str]:
        return {k for k in found if not any(_matches(k, p) for p in patterns)}

    # (a) a first preview: only edgeship's own looks for the checkpoint (and, missing, for
    # one in Pulumi's older layout), nothing written
    first, requests, before, after = run(lambda s: s.preview())
    assert first.note == f"dev {NOTE}"
    assert first.changes == {"create": 2}, first.changes
    assert requests == [
        Request("GET", None, statekeys.checkpoint(project, "dev"), 200),
        Request("GET", None, statekeys.legacy_checkpoint("dev"), 200),
    ]
    assert before == after == {}

    # (b) up writes only the deploy role's keys (meta.yaml: the backend was empty), and reads
    # nothing else
    up, requests, before, after = run(lambda s: s.up())
    assert up.changes == {"create": 2}, up.changes
    assert uncovered(written(requests), keys.write) == set()
    checkpoint = statekeys.checkpoint(project, "dev")
    assert {".pulumi/meta.yaml", checkpoint, f"{checkpoint}.bak"} <= set(after)
    assert any(
        f".pulumi/locks/organization/{project}/dev/" in k for k in written(requests)
    )  # taken, released
    assert uncovered(list(after), keys.write) == set()
    assert uncovered(read(requests), (*keys.read, *keys.write)) == set()
    assert uncovered(listed(requests), keys.list_prefixes) == set()

    # (c), (d) a second preview reads only the preview role's keys, lists only its prefixes,
    # writes nothing and takes no lock; the keys it finds missing are the ones said so
    second, requests, before, after = run(lambda s: s.preview())
    assert second.note is None and second.changes == {"same": 2}, second
    assert written(requests) == [] and before == after
    assert read(requests), "no read seen: the request log was not understood"
    assert uncovered(read(requests), keys.read) == set()
    assert uncovered(listed(requests), keys.list_prefixes) == set()
    missing = {r.key for r in requests if r.status == 404}
    assert missing == set(keys.absent_reads)

    def reimport(s: stacks.Stacks) -> None:
        """What a state migration writes (orchestrator/stacks/provider_migration.py, role_migration.py:
        `Stacks._migrate_state` exports the state and imports it changed)."""
        stack = s.stack(create=False)
        stack.import_stack(stack.export_stack())

    # a second up (a new checkpoint, history, backup), an import, and destroy --remove (deletes)
    for operation in (lambda s: s.up(), reimport, lambda s: s.destroy(remove=True)):
        _, requests, before, after = run(operation)
        assert written(requests), "the operation wrote nothing"
        assert uncovered(written(requests), keys.write) == set()
        assert uncovered(read(requests), (*keys.read, *keys.write)) == set()
        assert uncovered(listed(requests), keys.list_prefixes) == set()
    assert checkpoint not in after
    assert uncovered(list(after), keys.write) == set()


# -- the roles themselves, on an S3 backend that checks them ---------------------------------


class AuthMoto(Moto):
    """A moto server that checks every request against IAM once its first `free` requests
    (made with its default credentials, to set the users up) are done."""

    def __init__(self, free: int) -> None:
        super().__init__()
        self.free = free

    def start(self) -> None:
        from orchestrator.local import daemon
        from tests.conftest import wait_for

        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(self.free)}
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: daemon.healthy(self.url + "/moto-api/", timeout=0.5), timeout=30)


def _state_policy(keys: statekeys.StateKeys, bucket: str, prefix: str, *, deploy: bool) -> dict[str, Any]:
    """The state statements as the IAM generator writes them (orchestrator/project/iam.py); moto
    checks actions and resources (its evaluator ignores StringLike conditions)."""

    def objects(patterns: tuple[str, ...]) -> list[str]:
        return [f"arn:aws:s3:::{bucket}/{prefix}/{p}" for p in patterns]

    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/{p}" for p in keys.list_prefixes]}}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": objects(keys.read)},
    ]  # fmt: skip
    if deploy:
        statements.append(
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
             "Resource": objects(keys.write)}
        )  # fmt: skip
    return {"Version": "2012-10-17", "Statement": statements}


def test_preview_role_previews_and_cannot_write_deploy_role_deploys(
    engine_env: None, pulumi_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import boto3

    from orchestrator.base.errors import EngineError

    project, bucket, prefix = "edgeship", "state-bucket", "state"
    server = AuthMoto(free=7)  # the bucket, then per role: a user, its policy, its key
    server.start()
    try:
        admin = {"endpoint_url": server.url, "region_name": "us-east-1"}
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **admin)
        keys = statekeys.keys(project, "dev")
        credentials = {}
        for role in ("deploy", "preview"):
            iam.create_user(UserName=role)
            policy = _state_policy(keys, bucket, prefix, deploy=role == "deploy")
            iam.put_user_policy(UserName=role, PolicyName="state", PolicyDocument=json.dumps(policy))
            made = iam.create_access_key(UserName=role)["AccessKey"]
            credentials[role] = (made["AccessKeyId"], made["SecretAccessKey"])

        url = f"s3://{bucket}/{prefix}?endpoint=127.0.0.1:{server.port}&s3ForcePathStyle=true&disableSSL=true&region=us-east-1"
        spec = _spec(project, url, tmp_path / "workspace", pulumi_root)
        program = stacks.load_program(PROGRAM)

        def as_role(role: str) -> stacks.Stacks:
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials[role][0])
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials[role][1])
            monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
            return stacks.Stacks(spec, program)

        first = as_role("preview").preview()  # an empty backend: it would write meta.yaml
        assert first.note == f"dev {NOTE}" and first.changes == {"create": 2}, first
        assert as_role("deploy").up().changes == {"create": 2}
        assert as_role("preview").preview().changes == {"same": 2}
        with pytest.raises(EngineError, match=r"AccessDenied|Access Denied|403"):
            as_role("preview").up()
        assert as_role("deploy").destroy(remove=True).changes == {"delete": 2}
    finally:
        server.stop()


# -- the file backend: first preview, bootstrap ----------------------------------------------


def test_file_backend_first_preview_writes_nothing_and_bootstrap_once(
    engine_env: None, pulumi_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = tmp_path / "state"
    spec = _spec("edgeship", backend.as_uri(), tmp_path / "workspace", pulumi_root)
    program = stacks.load_program(PROGRAM)
    # CI sets PULUMI_BACKEND_URL, which the engine prefers to the workspace's backend: the
    # throwaway stack must not follow it to the real one
    monkeypatch.setenv("PULUMI_BACKEND_URL", spec.backend_url)

    first = stacks.Stacks(spec, program).preview()
    assert first.note == f"dev {NOTE}" and first.changes == {"create": 2}
    assert sorted(backend.rglob("*")) == []
    assert not (tmp_path / "workspace").exists()  # nor the real stack's workspace

    assert stacks.bootstrap(spec)["created"] is True
    made = sorted(str(p.relative_to(backend)) for p in backend.rglob("*") if p.is_file())
    assert [p for p in made if not p.endswith(".attrs")] == [
        ".pulumi/meta.yaml", ".pulumi/stacks/edgeship/dev.json", ".pulumi/stacks/edgeship/dev.json.bak",
    ]  # fmt: skip
    assert stacks.bootstrap(spec)["created"] is False

    # now the real (empty) stack is previewed, read-only
    snapshot = {p: p.read_bytes() for p in backend.rglob("*") if p.is_file()}
    second = stacks.Stacks(spec, program).preview()
    assert second.note is None and second.changes == {"create": 2}
    assert {p: p.read_bytes() for p in backend.rglob("*") if p.is_file()} == snapshot
