"""What Lambda's Python runtime provides beside the function's zip, for local sandboxes.

On Lambda a python3.12 sandbox runs `/var/lang/bin/python3.12` with the runtime interface
client (awslambdaric) and the AWS SDK on its path (/var/runtime, the runtime's
site-packages); the zip (/var/task) comes first and carries everything else. Here the same
parts live in a runtime directory of their own, installed from hash-pinned wheels
(orchestrator/tools/lambda-runtime-<runtime>.txt) for the runtime's own interpreter: never
the host venv, whose packages would hide what the zip lacks.

Where it is: EDGESHIP_LAMBDA_RUNTIME_DIR when set (a directory holding <runtime>/); else
the checkout's .tools/lambda-runtime/<runtime>, which `make install` fills; else (edgeship
installed from its wheel) a per-user cache, filled when the local stack is deployed
(EmulatorCloud.package), never by the edge on a request's path. An install is complete
when its stamp holds the lock file's sha256, so a changed pin installs anew.

Regenerate a lock after changing its .in file:
    .tools/uv/bin/uv pip compile --generate-hashes --universal --python-version 3.12 --no-header \
        orchestrator/tools/lambda-runtime-python3.12.in -o orchestrator/tools/lambda-runtime-python3.12.txt
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestrator.base import paths
from orchestrator.base.errors import EdgeshipError

LOCKS = paths.TOOLS
CHECKOUT_TOOLS = paths.CHECKOUT_TOOLS / "lambda-runtime"
STAMP = ".edgeship-lock-sha256"
# The platform tags pip may pick for the runtime's wheels (Amazon Linux 2023: glibc 2.34).
GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014")
# pip fetches about 15 MB of wheels: far more than enough, short of hanging a deploy for good.
PIP_TIMEOUT_S = 300.0


class RuntimeMissing(EdgeshipError):
    """The local sandboxes' runtime (interpreter or runtime packages) is not available."""


def lock_file(runtime: str) -> Path:
    """The hash-pinned requirements of a runtime ('python3.12')."""
    lock = LOCKS / f"lambda-runtime-{runtime}.txt"
    if not lock.exists():
        supported = sorted(p.stem.removeprefix("lambda-runtime-") for p in LOCKS.glob("lambda-runtime-*.txt"))
        raise RuntimeMissing(
            f"the local environment has no Lambda runtime for {runtime} (it has {', '.join(supported)})",
            fix=f"set the local environment's function runtime to one of {', '.join(supported)} in edgeship.toml",
        )
    return lock


def user_cache() -> Path:
    """edgeship's per-user cache (EDGESHIP_CACHE_DIR, else $XDG_CACHE_HOME/edgeship or ~/.cache/edgeship)."""
    if os.environ.get("EDGESHIP_CACHE_DIR"):
        return Path(os.environ["EDGESHIP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeship"


def _lock_sha(runtime: str) -> str:
    return hashlib.sha256(lock_file(runtime).read_bytes()).hexdigest()


def installed(target: Path, runtime: str) -> bool:
    """True when `target` holds a complete install of the runtime's current lock."""
    try:
        return (target / STAMP).read_text().strip() == _lock_sha(runtime)
    except OSError:
        return False


def runtime_dir(runtime: str, *, install_missing: bool = True) -> Path:
    """The directory of the runtime's packages (awslambdaric, boto3), installing it in the
    per-user cache when neither an override nor the checkout's install has it. The edge
    passes install_missing=False: a request must never wait on pip (the local stack's
    deploy installs it, EmulatorCloud.package), so there a missing runtime is an error."""
    override = os.environ.get("EDGESHIP_LAMBDA_RUNTIME_DIR")
    if override:
        target = Path(override) / runtime
        if not installed(target, runtime):
            raise RuntimeMissing(
                f"EDGESHIP_LAMBDA_RUNTIME_DIR={override} holds no current {runtime} runtime",
                fix=f"run `python -m orchestrator.local.runtime install --dir {override}`, or unset it",
            )
        return target
    checkout = CHECKOUT_TOOLS / runtime
    if installed(checkout, runtime):
        return checkout
    cached = user_cache() / "lambda-runtime" / f"{runtime}-{_lock_sha(runtime)[:16]}"
    if not installed(cached, runtime):
        if not install_missing:
            raise RuntimeMissing(
                f"the {runtime} Lambda runtime packages of the local sandboxes are not installed "
                f"(looked in {checkout} and {cached})",
                fix="run `make install` in the checkout, or `orchestrator up --env <local env>`, which installs them",
            )
        install(runtime, cached)
    return cached


@functools.cache
def interpreter(runtime: str) -> str:
    """The runtime's own interpreter (python3.12 on PATH, or installed by pyenv). Looked
    up once per process: each candidate is run to ask its version (~0.3 s in all)."""
    from orchestrator.build.packaging import runtime_interpreter

    python = runtime_interpreter(runtime)
    if python is None:
        raise RuntimeMissing(
            f"no working {runtime} interpreter here: local sandboxes run the function with the "
            "runtime's own Python, as Lambda does",
            fix=f"install {runtime} (on PATH, or with pyenv), then run `make install`",
        )
    return python


def install(runtime: str, target: Path) -> Path:
    """Install the runtime's pinned wheels into `target` (whole or not at all), with bytecode
    compiled by the runtime's interpreter, as Lambda's runtime image ships its own."""
    python = interpreter(runtime)
    arch = {"aarch64": "aarch64", "arm64": "aarch64"}.get(platform.machine(), "x86_64")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as work:
        staged = Path(work) / "runtime"
        cmd = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--require-hashes", "--only-binary=:all:", "--no-compile",
            "--implementation", "cp", "--python-version", runtime.removeprefix("python"),
            "--target", str(staged), "-r", str(lock_file(runtime)),
        ]  # fmt: skip
        for tag in GLIBC_TAGS:
            cmd += ["--platform", f"{tag}_{arch}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeMissing(
                f"installing the {runtime} Lambda runtime packages took over {PIP_TIMEOUT_S:g} s (pip did not finish)",
                fix="check that PyPI is reachable, then run `make install` (or "
                "`python -m orchestrator.local.runtime install`)",
            ) from None
        if done.returncode != 0:
            raise RuntimeMissing(
                f"could not install the {runtime} Lambda runtime packages: {done.stderr.strip()[-600:]}",
                fix="check that PyPI is reachable; the pins are in " + str(lock_file(runtime)),
            )
        try:
            compiled = subprocess.run(
                [python, "-m", "compileall", "-q", "-j", "0", str(staged)],
                capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise RuntimeMissing(
                f"compiling the {runtime} runtime packages took over {PIP_TIMEOUT_S:g} s",
                fix=f"check the {runtime} interpreter at {python}, then run `make install`",
            ) from None
        if compiled.returncode != 0:
            raise RuntimeMissing(
                f"could not compile the {runtime} runtime packages: {compiled.stdout.strip()[-600:]}",
                fix=f"check the {runtime} interpreter at {python}",
            )
        (staged / STAMP).write_text(_lock_sha(runtime) + "\n")
        if installed(target, runtime):
            return target  # another process installed it meanwhile (and may be using it)
        if target.exists():
            shutil.rmtree(target)  # an install of other pins, or an interrupted one
        try:
            staged.rename(target)
        except OSError:  # another process installed it meanwhile: theirs is as good
            if not installed(target, runtime):
                raise
    return target


def main(argv: list[str] | None = None) -> None:
    """`python -m orchestrator.local.runtime install [--runtime python3.12] [--dir D]`."""
    parser = argparse.ArgumentParser(description="install the local sandboxes' Lambda runtime packages")
    parser.add_argument("command", choices=["install"])
    parser.add_argument("--runtime", action="append", help="default: python3.12")
    parser.add_argument("--dir", type=Path, default=CHECKOUT_TOOLS, help=f"default: {CHECKOUT_TOOLS}")
    args = parser.parse_args(argv)
    for runtime in args.runtime or ["python3.12"]:
        target = args.dir / runtime
        try:
            if installed(target, runtime):
                print(f"lambda runtime {runtime}: cached in {target}")
                continue
            install(runtime, target)
        except EdgeshipError as exc:
            print(f"error: {exc}\nfix: {exc.fix}", file=sys.stderr)
            raise SystemExit(3) from None
        print(f"lambda runtime {runtime}: installed in {target}")


if __name__ == "__main__":
    main()
