"""Drives the Pulumi engine through the Automation API: one stack per environment.

The workspace/stack split follows `pulumi.automation`: `StackSpec` says which stack
and where its state lives (pure data, resolved from settings and the environment);
`Stacks` acts on it (create-or-select, config, preview/up/refresh/destroy, outputs,
history) and turns engine failures into edgeship errors.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.base.errors import (
    Cancelled,
    ConfigError,
    EngineError,
    NotDeployedError,
    StackLockedError,
    ToolchainError,
)
from orchestrator.base.processes import alive, sigterm_as_interrupt
from orchestrator.base.progress import NullReporter, ProgressEvent, Reporter, from_engine_event, op_name

if TYPE_CHECKING:
    from pulumi import automation as auto

    from orchestrator.config.settings import Environment, Settings
    from orchestrator.stacks import automation

Program = Callable[[], None]
LOCAL_PASSPHRASE = "edgeship-local-not-a-secret"
CONFIG_NAMESPACE = "edgeship"


@dataclass(frozen=True)
class StackSpec:
    """Everything needed to select one environment's stack; no I/O."""

    project: str
    stack: str
    backend_url: str
    work_dir: Path
    pulumi_root: Path
    secrets_provider: str = "passphrase"
    env_vars: Mapping[str, str] = field(default_factory=dict)
    # fully qualified key ("edgeship:memoryMb", "aws:region") -> (value, is_secret)
    config: Mapping[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class OperationResult:
    """What one engine operation did (the `--json` output of preview/up/refresh/destroy)."""

    operation: str
    stack: str
    changes: dict[str, int]
    outputs: dict[str, Any]
    duration_s: float
    # preview only: what would change, property by property (orchestrator/stacks/diff.py's Diff)
    diff: dict[str, Any] | None = None
    # what a person must know to read the result right (a first deploy's preview says so)
    note: str | None = None

    @property
    def changed(self) -> bool:
        """True when the operation created, updated, replaced or deleted anything."""
        return any(n for op, n in self.changes.items() if op != "same")


def explicit_backend(cli_value: str | None, configured: str | None, environ: Mapping[str, str]) -> str | None:
    """The state backend someone named: --backend, then PULUMI_BACKEND_URL, then edgeship.toml's
    `[project] backend`; None when none is. An empty or blank value names nothing: a CI
    variable that is not set reaches the job as "" (GitHub's `${{ vars.X }}`). Pure."""
    for value in (cli_value, environ.get("PULUMI_BACKEND_URL"), configured):
        if value is not None and value.strip():
            return value.strip()
    return None


def resolve_backend(
    cli_value: str | None,
    configured: str | None,
    environ: Mapping[str, str],
    root: Path,
    *,
    env_name: str,
    is_local: bool,
) -> str:
    """State backend URL of one environment: the one named (`explicit_backend`), else for the
    local environment a file backend in .edgeship/state. Any other environment without one
    is refused: a file backend inside the checkout would create the cloud resources and
    lose their state with the checkout (a CI runner's), and the next run would collide
    with them. Pure."""
    url = explicit_backend(cli_value, configured, environ)
    if url is not None:
        return url
    if is_local:
        return (root / ".edgeship" / "state").as_uri()
    empty = "PULUMI_BACKEND_URL is set but empty" if environ.get("PULUMI_BACKEND_URL") is not None else ""
    raise ConfigError(
        f"environment {env_name!r} has no state backend"
        + (f" ({empty}, which names none)" if empty else "")
        + ": its state would be a file inside this checkout, lost with it",
        fix="name one: --backend s3://STATE-BUCKET/PREFIX, or PULUMI_BACKEND_URL=s3://STATE-BUCKET/PREFIX "
        '(in CI: the repository or environment variable), or [project] backend = "s3://STATE-BUCKET/PREFIX" '
        "in edgeship.toml; docs/ci.md, section 4 (The state backend). Only the local environment "
        "defaults to .edgeship/state",
    )


def resolve_secrets(
    env_name: str, is_local: bool, provider: str | None, environ: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """Secrets provider and the variables it needs.

    Passphrase is the default. The local environment holds nothing worth hiding, so it
    gets a fixed passphrase when none is set; every other environment must bring its own.
    """
    provider = provider or "passphrase"
    if provider != "passphrase":
        if not provider.startswith(
            ("awskms://", "azurekeyvault://", "gcpkms://", "hashivault://", "default")
        ):
            raise ConfigError(
                f"unknown secrets provider {provider!r}",
                fix="use passphrase (default) or awskms://alias/NAME?region=REGION",
            )
        return provider, {}
    if environ.get("PULUMI_CONFIG_PASSPHRASE") or environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return provider, {}
    if is_local:
        return provider, {"PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE}
    raise ConfigError(
        f"environment {env_name!r} encrypts its secrets with a passphrase, but PULUMI_CONFIG_PASSPHRASE is not set",
        fix="export PULUMI_CONFIG_PASSPHRASE (in CI: from an environment secret), "
        'or set project.secrets_provider = "awskms://alias/NAME?region=REGION" in edgeship.toml',
    )


def spec_for(
    settings: Settings,
    env: Environment,
    *,
    pulumi_root: Path,
    backend: str | None = None,
    environ: Mapping[str, str] | None = None,
    extra_config: Mapping[str, str] | None = None,
) -> StackSpec:
    """The stack of one environment: backend, secrets and config resolved from settings."""
    environ = os.environ if environ is None else environ
    # the backend first: without one nothing else matters
    backend_url = resolve_backend(
        backend, settings.backend, environ, settings.root, env_name=env.name, is_local=env.is_local
    )
    provider, secret_env = resolve_secrets(env.name, env.is_local, settings.secrets_provider, environ)
    values = {**env.pulumi_config(settings.project), **(extra_config or {})}
    config = {f"{CONFIG_NAMESPACE}:{key}": (value, False) for key, value in values.items()}
    config["aws:region"] = (env.region, False)
    # The provider itself refuses any other account: a wrong profile cannot touch prod.
    config["aws:allowedAccountIds"] = (f'["{env.account_id}"]', False)
    return StackSpec(
        project=settings.project,
        stack=env.name,
        backend_url=backend_url,
        work_dir=settings.root / ".edgeship" / "workspaces" / env.name,
        pulumi_root=pulumi_root,
        secrets_provider=provider,
        env_vars=secret_env,
        config=config,
    )


class Stacks:
    """One environment's stack, driven through the Automation API."""

    def __init__(self, spec: StackSpec, program: Program, reporter: Reporter | None = None) -> None:
        self.spec = spec
        self.program = program
        self.reporter: Reporter = reporter or NullReporter()
        self._workspace: automation.Workspace | None = None
        self._stack: auto.Stack | None = None
        self._configured = False

    # -- selection -------------------------------------------------------------------

    def workspace(self) -> automation.Workspace:
        """The Automation API workspace of this stack's project (made once per instance)."""
        if self._workspace is not None:
            return self._workspace
        from pulumi import automation as auto

        spec = self.spec
        if spec.backend_url.startswith("file://"):
            Path(spec.backend_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        project = auto.ProjectSettings(
            name=spec.project, runtime="python", backend=auto.ProjectBackend(url=spec.backend_url)
        )
        from orchestrator.stacks import automation

        self._workspace = automation.Workspace(
            work_dir=str(spec.work_dir),
            pulumi_command=_pulumi_command(spec.pulumi_root),
            # Written in place (not atomically) by the workspace: only when it changed, or a
            # `status` here would make another command's engine read a half-written file.
            project_settings=None if _project_written(spec.work_dir, project) else project,
            secrets_provider=spec.secrets_provider,
            # Plugins only from beside the CLI (the launcher install-pulumi writes there), never
            # another `pulumi-resource-pulumi-python` on PATH: it would run with another Python,
            # and the engine warns on every command that it is not the one expected.
            env_vars={
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
                **spec.env_vars,
            },
            program=self.program,
        )
        return self._workspace

    def stack(self, *, create: bool = True, configure: bool | None = None) -> auto.Stack:
        """The stack, selected once per instance. `create` makes it if missing and writes its
        config (what preview and up need); reads and deletes only select it, so a missing
        stack is a NotDeployedError instead of a new empty one. `configure` (default: as
        `create`) writes the config to the workspace (a local file) without creating."""
        from pulumi import automation as auto

        spec = self.spec
        configure = create if configure is None else configure
        if self._stack is None:
            workspace = self.workspace()
            from orchestrator.stacks import automation

            try:
                self._stack = automation.Stack.open(spec.stack, workspace, create=create)
            except auto.StackNotFoundError:
                raise self._not_deployed() from None
            except auto.CommandError as exc:
                raise self._translate("select", exc) from None
        stack = self._stack
        assert stack is not None
        if configure and spec.config and not self._configured:
            if not self._config_written():
                config = {
                    key: auto.ConfigValue(value=value, secret=secret)
                    for key, (value, secret) in spec.config.items()
                }
                self._engine("config", lambda: stack.set_all_config(config))
            self._configured = True
        return stack

    def _config_written(self) -> bool:
        """True when the workspace's stack settings already hold exactly this config, so a
        `pulumi config set-all` (a CLI run on every up and preview) can be skipped."""
        import yaml

        if any(secret for _, secret in self.spec.config.values()):
            return False  # a secret is stored encrypted: nothing to compare
        try:
            settings = (
                yaml.safe_load((self.spec.work_dir / f"Pulumi.{self.spec.stack}.yaml").read_text()) or {}
            )
        except (OSError, yaml.YAMLError):
            return False
        written = settings.get("config") or {}
        return all(written.get(key) == value for key, (value, _) in self.spec.config.items())

    def _not_deployed(self) -> NotDeployedError:
        stack = self.spec.stack
        return NotDeployedError(
            f"environment {stack!r} has no stack yet (nothing deployed)",
            fix=f"run `orchestrator up --env {stack}` (or `orchestrator promote --env {stack}`, "
            "which deploys a first version)",
        )

    # -- operations --------------------------------------------------------------------

    def deployed(self) -> bool | None:
        """Whether the stack exists in its backend, learnt without writing anything (a file's
        existence, or one S3 ListObjects); None for a backend edgeship cannot look into."""
        return checkpoint_exists(self.spec.backend_url, self.spec.project, self.spec.stack)

    def preview(self, *, refresh: bool = False) -> OperationResult:
        """What `up` would change, without changing anything (`refresh`: read the real
        resources first, when the state may describe some that are gone).

        Writes nothing to the backend: opening a stack that does not exist would create it
        (and, in an empty backend, its meta.yaml), which a preview role may not do. So a
        stack not deployed yet is previewed in a throwaway backend: everything is created.
        One exception, once per stack: a refreshing preview of a state written before the
        provider modules' rename renames them first (`_migrate_state`), as the refresh loads
        the state's own providers; that needs the deploy role, as `preview --refresh` does."""
        deployed = self.deployed()
        if deployed is False:
            return self._first_preview()
        # Known to exist: select only. Unknown (Pulumi Cloud): create-or-select as always.
        stack = self.stack(create=deployed is None, configure=True)
        if refresh:
            self._migrate_state(stack)
        return self._preview(stack, refresh=refresh)

    def _first_preview(self) -> OperationResult:
        """The preview of a stack not deployed yet: the same program and config against an
        empty stack in a temporary file backend, whose secrets a throwaway passphrase
        encrypts (the real provider may be a KMS key the preview role cannot use)."""
        import secrets
        import tempfile
        from dataclasses import replace

        with tempfile.TemporaryDirectory(prefix="edgeship-first-preview-") as scratch:
            backend = (Path(scratch) / "state").as_uri()
            spec = replace(
                self.spec,
                backend_url=backend,
                work_dir=Path(scratch) / "workspace",
                secrets_provider="passphrase",
                # PULUMI_BACKEND_URL (set in CI) would win over the workspace's backend.
                env_vars={
                    **self.spec.env_vars,
                    "PULUMI_BACKEND_URL": backend,
                    "PULUMI_CONFIG_PASSPHRASE": secrets.token_hex(16),
                },
            )
            throwaway = Stacks(spec, self.program, self.reporter)
            result = throwaway._preview(throwaway.stack(create=True), refresh=False)
        return replace(
            result,
            note=f"{self.spec.stack} is not deployed yet: this preview shows everything the first `up` creates",
        )

    def _preview(self, stack: auto.Stack, *, refresh: bool) -> OperationResult:
        from orchestrator.stacks import diff

        started = time.monotonic()
        steps: list[diff.Step] = []

        def on_event(raw: Any) -> None:
            step = _step_of(raw)
            if step is not None:
                steps.append(step)
            self._on_event(raw)

        result = self._cancellable(
            "preview", lambda: stack.preview(on_event=on_event, color="never", refresh=refresh or None)
        )
        changes = {op_name(k): v for k, v in (result.change_summary or {}).items()}
        return OperationResult(
            "preview", self.spec.stack, changes, {}, time.monotonic() - started,
            diff=diff.summarise(steps).to_dict(),
        )  # fmt: skip

    def bootstrap(self) -> bool | None:
        """Create the stack in its backend (with a deploy role, once), so that previews find
        a real, empty stack; True when created, False when it was there already, None when
        the backend cannot be looked into (then it is created if missing)."""
        deployed = self.deployed()
        if deployed:
            return False
        self.stack(create=True)
        return None if deployed is None else True

    def up(
        self, *, refresh: bool = False, only: str | None = None, role_names: Iterable[str] | None = None
    ) -> OperationResult:
        """Create or update the stack's resources (`refresh` first, as for preview; `only`:
        the resource of this URN and what depends on it, nothing else; `role_names`: the
        names the program gives its roles now, so roles it renames are kept for the
        versions that still run with them, orchestrator/stacks/role_migration.py)."""
        stack = self.stack()
        self._migrate_state(stack, role_names=role_names if only is None else None)
        _start_operation(stack)
        started = time.monotonic()
        result = self._cancellable(
            "up",
            lambda: stack.up(
                on_event=self._on_event, color="never", refresh=refresh or None,
                target=[only] if only else None, target_dependents=True if only else None,
            ),
        )  # fmt: skip
        return OperationResult(
            "up",
            self.spec.stack,
            _changes(result.summary),
            _plain(result.outputs, show_secrets=False),
            time.monotonic() - started,
        )

    def _migrate_state(self, stack: auto.Stack, *, role_names: Iterable[str] | None = None) -> None:
        """Bring the stack's state up to this edgeship before an operation that loads the
        state's own dynamic providers (the engine unpickles the stored outputs' `__provider`
        for Read and Delete: `up`, `refresh`, `destroy`, a refreshing preview): providers
        pickled under the modules' names before the rename get the new ones
        (orchestrator/stacks/provider_migration.py); with `role_names` (an AWS `up`), roles the
        program renames are kept (orchestrator/stacks/role_migration.py). One export and at most one
        import for both. One-way: an edgeship from before the rename cannot load the new
        names (docs/ci.md, section 5).

        Without `role_names` the export (a CLI run that decrypts the state's secrets: most of
        a second) is skipped when a file backend's checkpoint, read here, names no old module:
        every local command after the first that migrates (the local stack is always on a
        file backend, and this release stores its providers in plain text)."""
        from orchestrator.stacks import provider_migration, role_migration

        if role_names is None and not self._may_name_old_providers():
            return
        exported = self._engine("export", stack.export_stack)
        deployment = exported.deployment or {}
        renamed = provider_migration.plan(deployment)
        retained = (
            role_migration.Retained(None, ())
            if role_names is None
            else role_migration.plan(renamed or deployment, role_names)
        )
        updated = retained.deployment or renamed
        if updated is None:
            return
        exported.deployment = updated
        self._engine("import", lambda: stack.import_stack(exported))
        if renamed is not None:
            self.reporter.event(
                ProgressEvent(
                    "diagnostic",
                    f"renamed the modules of the dynamic providers stored in stack {self.spec.stack!r} "
                    f"to this edgeship's ({', '.join(sorted(set(provider_migration.RENAMED.values())))}): "
                    "from now on an edgeship released before that rename cannot refresh or destroy "
                    "this stack; upgrade every machine that deploys it (docs/ci.md, section 5)",
                    data={"renamed_provider_modules": dict(provider_migration.RENAMED)},
                )
            )
        if retained.deployment is not None:
            self.reporter.event(
                ProgressEvent("diagnostic", retained.message(), data={"kept_roles": list(retained.roles)})
            )

    def _may_name_old_providers(self) -> bool:
        """False when the stack's checkpoint, read straight from its file backend, holds no
        provider pickled under a renamed module (pure Python, a few milliseconds: no CLI
        run); True when it does or may (a provider stored as an encrypted secret, as every
        release before the rename stored them), or when it cannot be read here (an S3 or
        Pulumi Cloud backend, a zstd-compressed or project-less checkpoint, a write in
        progress): then the exported state decides."""
        from orchestrator.stacks import provider_migration

        deployment = file_checkpoint(self.spec.backend_url, self.spec.project, self.spec.stack)
        return deployment is None or provider_migration.may_rename(deployment)

    def refresh(self) -> OperationResult:
        """Read the real resources back into the state."""
        stack = self.stack(create=False)
        self._migrate_state(stack)
        _start_operation(stack)
        started = time.monotonic()
        result = self._cancellable("refresh", lambda: stack.refresh(on_event=self._on_event, color="never"))
        return OperationResult(
            "refresh", self.spec.stack, _changes(result.summary), {}, time.monotonic() - started
        )

    def destroy(self, *, remove: bool = False) -> OperationResult:
        """Delete every resource; with `remove`, also delete the stack and its history."""
        stack = self.stack(create=False)
        self._migrate_state(stack)
        _start_operation(stack)
        started = time.monotonic()
        result = self._cancellable("destroy", lambda: stack.destroy(on_event=self._on_event, color="never"))
        if remove:
            self._engine("remove", lambda: stack.workspace.remove_stack(self.spec.stack))
            self._stack = None
        return OperationResult(
            "destroy", self.spec.stack, _changes(result.summary), {}, time.monotonic() - started
        )

    def outputs(self, *, show_secrets: bool = False) -> dict[str, Any]:
        """The stack's outputs; secret values are masked unless asked for.

        Masked outputs are one CLI run (`stack output --json`), with no select first: every
        command of a release reads them, so they are kept cheap. A missing stack is a
        NotDeployedError."""
        from pulumi import automation as auto

        if show_secrets:
            self.stack(create=False)  # a missing stack is a NotDeployedError
            decrypted = auto.LocalWorkspace.stack_outputs(self.workspace(), self.spec.stack)
            return _plain(decrypted, show_secrets=True)

        # Seen once under load: "failed to load checkpoint: EOF" while a promotion's `up`
        # wrote the stack. Another command's `status` or `abort` waits that out, not fails.
        for attempt in range(5):
            try:
                masked = self.workspace().stack_outputs(self.spec.stack)  # one CLI run, no select
                return _plain(masked, show_secrets=False)
            except auto.StackNotFoundError:
                raise self._not_deployed() from None
            except auto.CommandError as exc:
                if "checkpoint" not in str(exc) or attempt == 4:
                    raise self._translate("outputs", exc) from None
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def history(self, limit: int = 10) -> list[dict[str, Any]]:
        """The most recent updates, newest first."""
        stack = self.stack(create=False)
        entries = self._engine("history", lambda: stack.history(page_size=limit, page=1))
        return [
            {
                "version": e.version or None,  # the file backend numbers none (0)
                "kind": e.kind,
                "result": e.result,
                "started": e.start_time.isoformat() if e.start_time else None,
                "ended": e.end_time.isoformat() if e.end_time else None,
                "changes": dict(e.resource_changes or {}),
            }
            for e in entries
        ]

    # -- plumbing ----------------------------------------------------------------------

    def _on_event(self, raw: Any) -> None:
        from orchestrator.stacks import automation

        changes = automation.changes_of(raw)
        if changes is not None and isinstance(self._stack, automation.Stack):
            self._stack.summarise(changes)  # what UpResult's summary will say
        event = from_engine_event(raw)
        if event is not None:
            self.reporter.event(event)

    def _engine(self, what: str, call: Callable[[], Any]) -> Any:
        from pulumi import automation as auto

        try:
            return call()
        except auto.CommandError as exc:
            raise self._translate(what, exc) from None

    def _cancellable(self, what: str, call: Callable[[], Any]) -> Any:
        """Run a long engine operation so that Ctrl-C (or SIGTERM) cancels it cleanly.

        The CLI runs in a child process. On interrupt we pass SIGINT on to it, which makes
        the engine finish in-flight steps, write the state and release the lock, and wait
        for it, so the next run finds a usable stack rather than a locked one.
        """
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["value"] = self._engine(what, call)
            except BaseException as exc:  # handed to the main thread below
                outcome["error"] = exc

        worker = threading.Thread(target=work, name=f"pulumi-{what}", daemon=True)
        interrupted = False
        with sigterm_as_interrupt():
            worker.start()
            while worker.is_alive():
                try:
                    worker.join(0.2)
                except KeyboardInterrupt:
                    if not interrupted:
                        self.reporter.event(
                            ProgressEvent(
                                "info", f"interrupted: cancelling {what}, waiting for the engine to stop..."
                            )
                        )
                    interrupted = True
                    _signal_children(signal.SIGINT)
        if interrupted:
            raise Cancelled(
                f"{what} of stack {self.spec.stack!r} was cancelled; the engine stopped cleanly",
                fix="run the same command again to finish",
            )
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    def _translate(self, what: str, exc: Exception) -> Exception:
        text = str(exc)  # CommandError keeps the CLI's stdout and stderr only in its message
        if "currently locked" in text or type(exc).__name__ == "ConcurrentUpdateError":
            holder = "; ".join(
                _describe(info)
                for _, info in lock_files(self.spec.backend_url, self.spec.project, self.spec.stack)
            )
            return StackLockedError(
                f"stack {self.spec.stack!r} is locked by another update{': ' + holder if holder else ''}",
                fix=f"wait for that run to finish; if it crashed, run `orchestrator unlock --env {self.spec.stack}`",
            )
        if "Could not automatically download and install resource plugin" in text:
            plugin = next((ln.strip() for ln in text.splitlines() if "pulumi plugin install" in ln), "")
            command = plugin.split("`")[1] if plugin.count("`") >= 2 else "pulumi plugin install resource aws"
            return ToolchainError(
                f"a Pulumi provider plugin is missing and cannot be downloaded here: {plugin[:300]}",
                fix=f"on a machine with internet access run `{command}` (PULUMI_HOME shared with this one), "
                "or rehearse without AWS: --env local",
            )
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.lower().startswith("error:") and "Traceback" not in ln] or lines[
            -3:
        ]
        # A provider's Python traceback: its last exception line is what went wrong.
        raised = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception): ", ln)]
        # "error: 2 errors occurred:" says what went wrong in the numbered lines after it
        # (a state backend's refusal: "1) operation error S3: PutObject, ... AccessDenied").
        numbered = [ln[:300] for ln in lines if re.match(r"^\d+\) ", ln)]
        errors = errors + numbered + raised[-1:]
        detail = " | ".join(dict.fromkeys(errors)) or str(exc)
        return EngineError(
            f"pulumi {what} failed for stack {self.spec.stack!r}: {detail}",
            fix="read the error above; `orchestrator preview` shows what the engine plans to do",
        )


def _file_root(backend_url: str) -> Path:
    """A file:// backend's folder as the engine reads it: percent-decoded (Path.as_uri()
    encodes), no query, file://~ is home."""
    from urllib.parse import unquote

    return Path(unquote(backend_url.removeprefix("file://").split("?", 1)[0])).expanduser()


def checkpoint_exists(backend_url: str, project: str, stack: str) -> bool | None:
    """Whether the stack's checkpoint is in the backend, read-only: the file for a file://
    backend; for s3:// one ListObjects of the checkpoint's key as prefix, the engine's own
    call, with the same credentials (a HEAD would need s3:ListBucket to tell "missing" from
    "denied" anyway). None for other backends, and when only a checkpoint in Pulumi's older,
    project-less layout is there (the stack may exist: the caller opens it as before)."""
    from orchestrator.stacks import statekeys

    relative = statekeys.checkpoint(project, stack)
    legacy = statekeys.legacy_checkpoint(stack)
    if backend_url.startswith("file://"):
        root = _file_root(backend_url)
        if any((root / f"{relative}{suffix}").is_file() for suffix in statekeys.COMPRESSED):
            return True
        return None if any((root / f"{legacy}{sfx}").is_file() for sfx in statekeys.COMPRESSED) else False
    location = statekeys.s3_backend(backend_url)
    if location is None:
        return None
    import boto3
    import botocore.config
    import botocore.exceptions

    key = location.key(relative)
    try:
        client = boto3.Session(profile_name=location.profile, region_name=location.region).client(
            "s3", endpoint_url=location.endpoint,
            config=botocore.config.Config(s3={"addressing_style": "path" if location.path_style else "auto"}),
        )  # fmt: skip
        listed = client.list_objects_v2(Bucket=location.bucket, Prefix=key, MaxKeys=10)
        present = {item.get("Key") for item in listed.get("Contents", [])}
        if any(f"{key}{suffix}" in present for suffix in statekeys.COMPRESSED):
            return True
        old_key = location.key(legacy)
        older = client.list_objects_v2(Bucket=location.bucket, Prefix=old_key, MaxKeys=10)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise ConfigError(
            f"cannot look for stack {stack!r} in the state backend s3://{location.bucket}/{location.prefix}: {exc}",
            fix=f"the role needs s3:ListBucket on {location.bucket} for the prefix {key} "
            "(`orchestrator iam-policy` prints it); check the credentials with `orchestrator doctor`",
        ) from None
    present = {item.get("Key") for item in older.get("Contents", [])}
    return None if any(f"{old_key}{suffix}" in present for suffix in statekeys.COMPRESSED) else False


def file_checkpoint(backend_url: str, project: str, stack: str) -> dict[str, Any] | None:
    """The stack's latest deployment as its file backend's checkpoint holds it (what
    `pulumi stack export` prints as `deployment`; {} for a stack with nothing deployed), read
    without the engine. None when it cannot be read here: not a file:// backend, no
    checkpoint in the project-scoped layout, a zstd one (no reader in the standard library),
    or one that does not parse (being written: the caller asks the engine instead)."""
    if not backend_url.startswith("file://"):
        return None
    import gzip
    import json

    from orchestrator.stacks import statekeys

    path = _file_root(backend_url) / statekeys.checkpoint(project, stack)
    try:
        if path.is_file():
            text = path.read_bytes()
        elif path.with_name(path.name + ".gz").is_file():
            text = gzip.decompress(path.with_name(path.name + ".gz").read_bytes())
        else:
            return None
        checkpoint = json.loads(text).get("checkpoint")
    except (OSError, EOFError, ValueError, AttributeError):  # gzip.BadGzipFile is an OSError
        return None
    if not isinstance(checkpoint, dict):
        return None
    latest = checkpoint.get("latest") or {}
    return latest if isinstance(latest, dict) else None


def bootstrap(spec: StackSpec) -> dict[str, Any]:
    """`orchestrator bootstrap`: the stack created in its backend, no program run."""
    created = Stacks(spec, lambda: None).bootstrap()
    return {"stack": spec.stack, "backend": spec.backend_url, "created": created}


def unlock(backend_url: str, project: str, stack: str, *, force: bool = False) -> list[Path]:
    """Remove a file backend's stale lock files; refuses locks whose process still runs here.

    Pulumi's diy backend leaves its lock behind when the CLI is killed (kill -9, power
    loss). Only file:// backends are handled; others have `pulumi cancel`.
    """
    import socket

    if not backend_url.startswith("file://"):
        raise ConfigError(
            f"unlock handles file:// backends only, not {backend_url}",
            fix=f"run `pulumi cancel --stack {stack}` against that backend",
        )
    removed = []
    for lock, info in lock_files(backend_url, project, stack):
        pid, host = info.get("pid"), info.get("hostname")
        if not force and host == socket.gethostname() and isinstance(pid, int) and alive(pid):
            raise StackLockedError(
                f"stack {stack!r} is locked by pid {pid} on this host, which is still running",
                fix="wait for it to finish, or stop it; pass --force only if you are sure it is stuck",
            )
        lock.unlink()
        removed.append(lock)
    return removed


def lock_files(backend_url: str, project: str, stack: str) -> list[tuple[Path, dict[str, Any]]]:
    """A file backend's lock files for one stack, with what each says about its holder."""
    import json

    if not backend_url.startswith("file://"):
        return []
    locks = Path(backend_url.removeprefix("file://")) / ".pulumi" / "locks"
    found = []
    for lock in sorted(locks.glob(f"*/{project}/{stack}/*.json")):
        try:
            info = json.loads(lock.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        found.append((lock, info if isinstance(info, dict) else {}))
    return found


def _describe(info: dict[str, Any]) -> str:
    return (
        f"{info.get('username', '?')}@{info.get('hostname', '?')} "
        f"(pid {info.get('pid', '?')}) since {info.get('timestamp', '?')}"
    )


@functools.cache
def _pulumi_command(root: Path) -> auto.PulumiCommand:
    """One per process. Making one runs `pulumi version` (0.4 s: the CLI is a 116 MB binary)
    to validate it, except for our own build, whose version `make install` checked."""
    from pulumi import automation as auto

    from orchestrator.stacks import toolchain

    if toolchain.is_pinned_build(root):
        from orchestrator.stacks import automation

        return automation.KnownPulumi(root, toolchain.PULUMI_VERSION)
    return auto.PulumiCommand(root=str(root))


def _start_operation(stack: auto.Stack) -> None:
    from orchestrator.stacks import automation

    if isinstance(stack, automation.Stack):
        stack.start_operation()


def _project_written(work_dir: Path, project: auto.ProjectSettings) -> bool:
    """True when work_dir's Pulumi.yaml already says what `project` says."""
    import yaml

    try:
        written = yaml.safe_load((work_dir / "Pulumi.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return bool(written == project.to_dict())


def _signal_children(sig: int) -> None:
    import psutil

    for child in psutil.Process().children(recursive=False):
        try:
            if "pulumi" in child.name():
                child.send_signal(sig)
        except psutil.Error:
            continue


def _step_of(raw: Any) -> Any:
    """A resource step of the engine's event stream as orchestrator.stacks.diff reads it (its old
    and new inputs), or None for any other event."""
    from orchestrator.stacks import diff

    if raw.resource_pre_event is None:
        return None
    meta = raw.resource_pre_event.metadata
    old = meta.old.inputs if meta.old is not None else None
    new = meta.new.inputs if meta.new is not None else None
    return diff.Step(op_name(meta.op), meta.urn, old, new)


def _changes(summary: Any) -> dict[str, int]:
    return {op_name(k): v for k, v in ((summary.resource_changes if summary else None) or {}).items()}


def _plain(outputs: Mapping[str, Any], *, show_secrets: bool) -> dict[str, Any]:
    return {
        key: ("[secret]" if out.secret and not show_secrets else out.value) for key, out in outputs.items()
    }


DEFAULT_PROGRAM = "orchestrator.programs.serving:program"


def load_program(ref: str | None) -> Program:
    """Import an inline program given as 'module:function' (default: the serving stack)."""
    import importlib

    module_name, _, attr = (ref or DEFAULT_PROGRAM).partition(":")
    try:
        program = getattr(importlib.import_module(module_name), attr or "program")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load the Pulumi program {ref!r}: {exc}", fix="pass --program module:function"
        ) from None
    if not callable(program):
        raise ConfigError(f"{ref!r} is not callable", fix="point --program at a function taking no arguments")
    return program
