"""`doctor`: is this machine ready to drive an environment? Each check ok or failed, with the fix.

    pulumi       the Pulumi CLI runs and is the pinned version
    interpreter  (local) the runtime's own Python and its Lambda runtime packages (awslambdaric)
    emulator     (local) the AWS API emulator answers
    credentials  AWS: sts:GetCallerIdentity with the default chain; local: the emulator's
    backend      the state backend is reachable; the secrets' passphrase is set where needed

`judge` decides from what the probes found (pure: table-tested); `probe` looks (thin: it
runs the CLI, the interpreter, and the AWS calls) and turns every failure into text.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.base.errors import EdgeshipError


@dataclass(frozen=True)
class Found:
    """What one probe saw: a value, or why there is none."""

    value: str | None = None
    error: str | None = None
    fix: str = ""  # the fix the failing call itself named (an EdgeshipError's), if any


@dataclass(frozen=True)
class Probes:
    """Everything `judge` needs; None where a check does not apply to the environment."""

    env: str
    local: bool
    pinned: str  # the Pulumi version edgeship is built for, e.g. 3.260.0
    pulumi: Found  # the version the CLI reports, e.g. v3.260.0
    interpreter: Found | None  # local: "<python> + <runtime dir>"
    emulator: Found | None  # local: its URL
    credentials: Found  # the caller's identity (ARN)
    backend: Found  # the backend URL, reachable
    passphrase: Found  # the secrets provider, usable


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(p: Probes) -> list[Check]:
    """The checks, in the order a user would fix them."""
    checks = [_pulumi(p)]
    if p.interpreter is not None:
        checks.append(
            _plain(
                "interpreter",
                p.interpreter,
                "install python3.12 (on PATH or with pyenv), then `make install`",
            )
        )
    if p.emulator is not None:
        checks.append(_plain("emulator", p.emulator, f"run `orchestrator up --env {p.env}`, which starts it"))
    creds_fix = (
        f"run `orchestrator up --env {p.env}` (the emulator's credentials are fixed: it must answer)"
        if p.local
        else "configure AWS credentials (aws configure, AWS_PROFILE, or OIDC in CI) for the environment's account"
    )
    checks.append(_plain("credentials", p.credentials, creds_fix))
    checks.append(_plain("backend", p.backend, "check --backend / PULUMI_BACKEND_URL / project.backend"))
    checks.append(_plain("passphrase", p.passphrase, "export PULUMI_CONFIG_PASSPHRASE"))
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def _pulumi(p: Probes) -> Check:
    install = f"run `orchestrator install-pulumi` (or `make install` in edgeship's checkout) for v{p.pinned}"
    if p.pulumi.error is not None:
        return Check("pulumi", False, p.pulumi.error, p.pulumi.fix or install)
    if (p.pulumi.value or "").lstrip("v") != p.pinned:
        return Check("pulumi", False, f"{p.pulumi.value} found, edgeship is pinned to v{p.pinned}", install)
    return Check("pulumi", True, f"{p.pulumi.value}")


def _plain(name: str, found: Found, fix: str) -> Check:
    if found.error is not None:
        return Check(name, False, found.error, found.fix or fix)
    return Check(name, True, found.value or "")


# -- the probes (thin) ---------------------------------------------------------------------


def look(call: Callable[[], str]) -> Found:
    """Run one probe; its failure becomes the Found's error (a doctor reports, never raises)."""
    try:
        return Found(call())
    except EdgeshipError as exc:
        return Found(error=exc.message, fix=exc.fix or "")
    except Exception as exc:  # any failure of the thing probed is the answer, not a crash
        return Found(error=f"{type(exc).__name__}: {exc}")


def probe(settings: Any, env: Any) -> Probes:
    """Look at this machine for `env`."""
    from orchestrator.stacks import toolchain

    local = bool(env.is_local)
    state_dir = settings.root / ".edgeship" / "local"
    emulator = look(lambda: _emulator(state_dir)) if local else None
    return Probes(
        env=env.name,
        local=local,
        pinned=toolchain.PULUMI_VERSION,
        pulumi=look(lambda: toolchain.pulumi_version(toolchain.pulumi_root(settings.root))),
        interpreter=look(lambda: _interpreter(env.function.runtime)) if local else None,
        emulator=emulator,
        credentials=look(lambda: _identity(env, state_dir, emulator)),
        backend=look(lambda: _backend(settings, env)),
        passphrase=look(lambda: _secrets(settings, env)),
    )


def _interpreter(runtime_name: str) -> str:
    """The runtime's interpreter imports awslambdaric from the runtime's packages, as a sandbox does."""
    from orchestrator.local import runtime

    python = runtime.interpreter(runtime_name)
    packages = runtime.runtime_dir(runtime_name, install_missing=False)
    done = subprocess.run(
        [python, "-S", "-c", "import awslambdaric"], env={"PYTHONPATH": str(packages)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        raise EdgeshipError(
            f"{python} cannot import awslambdaric from {packages}: {done.stderr.strip()[-300:]}",
            fix="run `make install` again (it installs the runtime's packages)",
        )
    return f"{python} + awslambdaric ({packages})"


def _emulator(state_dir: Path) -> str:
    from orchestrator.local import emulator

    running = emulator.running(state_dir)
    if running is None:
        raise EdgeshipError(f"the AWS API emulator of {state_dir} is not running")
    return running.url


def _identity(env: Any, state_dir: Path, emulator: Found | None) -> str:
    if emulator is not None:
        if emulator.value is None:
            raise EdgeshipError("the emulator is not running: its credentials cannot be checked")
        from orchestrator.local import emulator as moto

        sts = moto.client("sts", emulator.value, state_dir / "tls" / "cert.pem")
    else:
        import boto3

        from orchestrator.stacks.clouds import bounded

        sts = boto3.client("sts", region_name=env.region, config=bounded())
    arn = str(sts.get_caller_identity()["Arn"])
    return arn


def _backend(settings: Any, env: Any) -> str:
    """The backend answers: a file backend's directory is writable, an S3 bucket exists and is
    ours to read, Pulumi Cloud answers and a token is set (an environment other than local
    without one fails here, as every command refuses it)."""
    from orchestrator.stacks import engine as stacks

    url = stacks.resolve_backend(
        None, settings.backend, os.environ, settings.root, env_name=env.name, is_local=env.is_local
    )
    if url.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        directory = Path(unquote(urlsplit(url).path))
        existing = next((d for d in (directory, *directory.parents) if d.exists()), Path("/"))
        if not os.access(existing, os.W_OK):
            raise EdgeshipError(f"{url}: {existing} is not writable")
        return url
    if url.startswith("s3://"):
        import boto3

        from orchestrator.stacks.clouds import bounded

        bucket = url.removeprefix("s3://").split("/", 1)[0].split("?", 1)[0]
        boto3.client("s3", config=bounded()).head_bucket(Bucket=bucket)
        return url
    if not os.environ.get("PULUMI_ACCESS_TOKEN"):
        raise EdgeshipError(f"{url}: PULUMI_ACCESS_TOKEN is not set", fix="export PULUMI_ACCESS_TOKEN")
    import urllib.request

    urllib.request.urlopen(url, timeout=10).close()
    return url


def _secrets(settings: Any, env: Any) -> str:
    from orchestrator.stacks import engine as stacks

    provider, variables = stacks.resolve_secrets(
        env.name, env.is_local, settings.secrets_provider, os.environ
    )
    if provider == "passphrase" and variables:
        return "passphrase (edgeship's fixed one for the local environment)"
    return provider if provider != "passphrase" else "passphrase (set)"
