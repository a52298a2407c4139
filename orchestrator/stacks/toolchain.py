"""Finds the pinned Pulumi CLI that `make install` put in .tools/pulumi."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from orchestrator.base import paths
from orchestrator.base.errors import ToolchainError

# Keep in step with scripts/install-pulumi.sh and the `pulumi` pin in pyproject.toml.
PULUMI_VERSION = "3.260.0"
# The build in edgeship's own checkout (an editable install): found even when the project using
# it lives elsewhere, e.g. a test's temporary project.
CHECKOUT_PULUMI = paths.CHECKOUT_TOOLS / "pulumi"


def pulumi_root(project_root: Path) -> Path:
    """Where the Pulumi CLI lives: <root>/bin/pulumi.

    EDGESHIP_PULUMI_ROOT wins when set; then the project's own build; a `pulumi` on PATH is accepted as a fallback
    so users with the official install need not build anything.
    """
    local = project_root / ".tools" / "pulumi"
    override = os.environ.get("EDGESHIP_PULUMI_ROOT")
    candidates = [Path(override)] if override else [local, CHECKOUT_PULUMI]
    for candidate in candidates:
        if (candidate / "bin" / "pulumi").exists():
            return candidate
    on_path = shutil.which("pulumi")
    if on_path:
        return Path(on_path).resolve().parent.parent
    raise ToolchainError(
        f"the Pulumi CLI is not installed (looked in {local / 'bin'} and on PATH)",
        fix=f"run `orchestrator install-pulumi` (or `make install` in edgeship's checkout; both build "
        f"Pulumi v{PULUMI_VERSION} with Go if needed), or install Pulumi v{PULUMI_VERSION} and put it on PATH",
    )


INSTALLER = paths.TOOLS / "install-pulumi.sh"


def install(target: Path) -> None:
    """Put the pinned CLI under `target`/bin with the same script `make install` runs (a CLI on
    PATH at the pinned version is hard-linked, else copied: never a symlink, or the engine looks
    for its plugins beside the link's target; else the official release; else a Go build), and
    the dynamic-provider launcher bound to this interpreter: the one that has edgeship installed."""
    env = {**os.environ, "EDGESHIP_TOOLS_DIR": str(target), "EDGESHIP_PYTHON": sys.executable}
    # Its progress goes to stderr: stdout stays the command's result (`--json`).
    done = subprocess.run(["bash", str(INSTALLER)], env=env, stdout=sys.stderr)
    if done.returncode != 0:
        raise ToolchainError(
            f"installing Pulumi v{PULUMI_VERSION} into {target} failed (exit {done.returncode})",
            fix=f"read its output above; or install Pulumi v{PULUMI_VERSION} yourself and put it on PATH",
        )


def is_pinned_build(root: Path) -> bool:
    """True for the CLI `make install` built (exactly PULUMI_VERSION): the Automation API's
    minimum-version validation can be skipped (it still runs `pulumi version` once)."""
    return (root / "bin").resolve() == (CHECKOUT_PULUMI / "bin").resolve()


def pulumi_version(root: Path) -> str:
    """The version the CLI under `root` reports, e.g. 'v3.260.0'."""
    try:
        out = subprocess.run(
            [str(root / "bin" / "pulumi"), "version"], capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(
            f"the Pulumi CLI in {root / 'bin'} does not run: {exc}", fix="run `make install` again"
        ) from exc
    return out.stdout.strip()
