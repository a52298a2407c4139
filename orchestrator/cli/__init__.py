"""The `orchestrator` command: parse, call, print. No release logic lives here.

One module per family of commands, all registered on one click group, `main`:
  base.py     the `main` group, Ctx, printing and exit codes, the option decorators, the helpers
              more than one family calls (_target, _release, _confirm, _preview_text, ...)
  stack.py    envs, preview, up, refresh, outputs, rotate-origin-secret, destroy, package, unlock,
              bootstrap
  release.py  promote, rollback, abort, resume-promotion, status, report
  project.py  model (model pack), init, install-pulumi, schema, iam-policy, doctor
  inspect.py  history, invoke, logs
The family modules import from orchestrator.cli.base, never from orchestrator.cli (no cycle).
Every heavy import (pulumi, boto3, the release machinery) stays inside the function that needs
it, as before the split: `orchestrator --help` must stay cheap (bench/cli_startup.py).
"""

from orchestrator.cli.base import main

# isort: split
# Imported for their side effect, after `main` exists: each module's @main.command()s register
# its commands on `main` (the entry point orchestrator.cli:main); without these it has none.
from orchestrator.cli import inspect, project, release, stack  # noqa: F401

__all__ = ["main"]
