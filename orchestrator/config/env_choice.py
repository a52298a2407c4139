"""Which environment a command acts on when `--env` is not given (pure, table-tested).

As Pulumi's `PULUMI_STACK` / selected stack: the command line wins, then the variable a
shell or CI job sets once (EDGESHIP_ENV), then the project's own default
(the top-level `default_env` of edgeship.toml). With none of them the command is refused with
the environments it could act on, never run against a guessed one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from orchestrator.base.errors import ConfigError, UsageError

ENV_VAR = "EDGESHIP_ENV"


def choose(from_var: str | None, default_env: str | None, known: Iterable[str], path: Path) -> str:
    """The environment when --env was not given (before or after the command).

    `from_var`: EDGESHIP_ENV's value (an empty one counts as unset); `default_env`:
    edgeship.toml's default_env (settings.py checked that it names an environment)."""
    names = sorted(known)
    listed = ", ".join(names) or "none"
    if from_var:
        if from_var not in names:
            close = difflib.get_close_matches(from_var, names, n=1)
            raise ConfigError(
                f"{ENV_VAR}={from_var!r} names no environment of {path} (known: {listed})",
                fix=(f"did you mean {close[0]}? " if close else "")
                + f"set {ENV_VAR} to one of {listed}, or pass --env NAME",
            )
        return from_var
    if default_env:
        return default_env
    example = "local" if "local" in names else (names[0] if names else "NAME")
    raise UsageError(
        f"no environment given: pass --env NAME (known: {listed})",
        fix=f"add --env {example}, or export {ENV_VAR}={example}, or set "
        f'default_env = "{example}" at the top of {path.name}',
    )
