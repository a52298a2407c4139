"""The Automation API's workspace and stack, minus two reads every operation paid for.

Measured on a publishing `up` of the local stack (6.4 s in all): after the engine is done,
`Stack.up` reads the outputs twice (masked, then decrypted to learn which are secret) and
the newest history entry (decrypted too), only to fill `UpResult`: 2 s of CLI runs, most
of it deriving the passphrase's key. edgeship never needs secret output values there, and
the engine's own summary event already says what changed. So:

- `Workspace.stack_outputs` reads the masked outputs once; a secret is its `[secret]`
  mask (the CLI's sentinel), which is all `Stacks` ever shows without --show-secrets;
- `Stack.info` answers from the summary event of the operation just run (`summarise`),
  and falls back to the history only when none came.

Imported lazily (by engine.py): `pulumi.automation` is heavy and `--help` must stay instant.
"""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from pulumi.automation.events import OpMap
from semver import VersionInfo

SECRET = "[secret]"


class KnownPulumi(auto.PulumiCommand):
    """A CLI whose version is already known: auto.PulumiCommand's constructor runs
    `pulumi version` on every command edgeship runs, the check included or not."""

    def __init__(self, root: Path, version: str) -> None:  # no super(): that is the run we skip
        self.command = str(root / "bin" / "pulumi")
        self.version = VersionInfo.parse(version)


class Workspace(auto.LocalWorkspace):
    def stack_outputs(self, stack_name: str) -> auto.OutputMap:
        env = {**({"PULUMI_HOME": self.pulumi_home} if self.pulumi_home else {}), **self.env_vars}
        result = self.pulumi_command.run(
            ["stack", "output", "--json", "--stack", stack_name], self.work_dir, env
        )
        masked = json.loads(result.stdout or "{}")
        return {key: auto.OutputValue(value=value, secret=value == SECRET) for key, value in masked.items()}


class Stack(auto.Stack):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_operation()

    @staticmethod
    def open(name: str, workspace: Workspace, *, create: bool) -> Stack:
        """Select the stack (`create`: make it first if missing). auto.Stack's own
        classmethods build the base class, so they cannot be used here."""
        from pulumi.automation._stack import StackInitMode

        return Stack(name, workspace, StackInitMode.CREATE_OR_SELECT if create else StackInitMode.SELECT)

    def start_operation(self) -> None:
        """Forget the last operation's changes (call before up/refresh/destroy)."""
        self.changes: OpMap | None = None
        self.summarised = threading.Event()

    def summarise(self, changes: OpMap) -> None:
        """The engine's summary event of the running operation (from its event stream)."""
        self.changes = changes
        self.summarised.set()

    def info(self, show_secrets: bool = True) -> auto.UpdateSummary | None:
        # The event stream is tailed by another thread: the summary, the engine's last
        # event, can land just after the CLI exits. Wait for it briefly, else read history.
        if not self.summarised.wait(timeout=3) or self.changes is None:
            return super().info(show_secrets)
        now = datetime.datetime.now(datetime.UTC)
        return auto.UpdateSummary(
            kind="update", start_time=now, end_time=now, message="", environment={}, config={},
            result="succeeded", resource_changes=dict(self.changes),
        )  # fmt: skip


def changes_of(event: Any) -> OpMap | None:
    """The resource changes a summary event reports (None for any other event)."""
    summary = getattr(event, "summary_event", None)
    return None if summary is None else dict(summary.resource_changes or {})
