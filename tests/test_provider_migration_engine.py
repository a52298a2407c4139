"""A local stack deployed before the provider modules' rename (`programs.*`, now
`orchestrator.programs.*`) keeps working with the real engine: its state is renamed before
each operation that loads the state's own providers (orchestrator/stacks/engine.py `_migrate_state`).

The stack is deployed by this edgeship, then its state is put back to what an older release
wrote before each of `refresh`, `up`, a refreshing `preview` and `destroy`: export,
`provider_migration.plan` with the reverse mapping, each provider made a secret again (as
Pulumi stored them by default), import; the checkpoint then holds them encrypted. The provider process cannot load the old
names (programs/__init__.py refuses `programs`; the wheel has no such package), so each
operation passing proves the migration ran before the engine needed the providers."""

from __future__ import annotations

import base64
import json
from typing import Any

from orchestrator.local import daemon
from orchestrator.stacks import provider_migration
from orchestrator.stacks.engine import StackSpec
from tests.conftest import LocalProject
from tests.test_local_stack import _changed

OLD = {new: old for old, new in provider_migration.RENAMED.items()}
NEW_MODULES = set(provider_migration.RENAMED.values())
ENCRYPTED = "(encrypted)"
DIAGNOSTIC = "renamed the modules of the dynamic providers"


def _spec(project: LocalProject) -> StackSpec:
    from orchestrator.config import settings
    from orchestrator.stacks import engine as stacks
    from orchestrator.stacks import toolchain

    loaded = settings.load(project.config)
    return stacks.spec_for(
        loaded, loaded.environment("local"), pulumi_root=toolchain.pulumi_root(loaded.root)
    )


def _stack(project: LocalProject) -> Any:
    """The local environment's stack in this process, for export and import only (no program)."""
    from orchestrator.stacks import engine as stacks

    return stacks.Stacks(_spec(project), lambda: None).stack(create=False)


def _modules(project: LocalProject) -> set[str]:
    """The modules the checkpoint's provider pickles name (read from the file, never unpickled);
    ENCRYPTED for a provider stored as a secret."""
    from orchestrator.stacks import engine as stacks

    spec = _spec(project)
    deployment = stacks.file_checkpoint(spec.backend_url, spec.project, spec.stack)
    assert deployment is not None
    found = set()
    for resource in deployment.get("resources", []):
        for section in provider_migration.SECTIONS:
            value = (resource.get(section) or {}).get(provider_migration.PROVIDER_KEY)
            if provider_migration.is_secret(value):
                found.add(ENCRYPTED)
            elif isinstance(value, str):
                reference = provider_migration.read_reference(base64.b64decode(value))
                assert reference is not None, resource["urn"]
                found.add(reference.module)
    return found


def _as_an_older_release_left_it(project: LocalProject) -> None:
    stack = _stack(project)
    exported = stack.export_stack()
    old = provider_migration.plan(exported.deployment, renamed=OLD)
    assert old is not None
    for resource in old["resources"]:
        for section in provider_migration.SECTIONS:
            props = resource.get(section) or {}
            if isinstance(value := props.get(provider_migration.PROVIDER_KEY), str):
                # a secret, as `stack export --show-secrets` shows one: import encrypts it
                props[provider_migration.PROVIDER_KEY] = {
                    provider_migration.SECRET_KEY: provider_migration.SECRET_SIG,
                    "plaintext": json.dumps(value),
                }
    exported.deployment = old
    stack.import_stack(exported)
    assert _modules(project) == {ENCRYPTED}


def _run(project: LocalProject, *args: str) -> tuple[dict[str, Any], str]:
    """A command's JSON result and its progress (stderr), which must have succeeded."""
    done = project.cli(*args, "--env", "local", "--json")
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout), done.stderr


def test_a_state_from_before_the_rename_is_migrated_before_refresh_up_preview_and_destroy(
    local_project: LocalProject,
) -> None:
    project = local_project
    first, progress = _run(project, "up", "--yes")
    assert _changed(first) == {"create": 10}
    assert _modules(project) == NEW_MODULES and DIAGNOSTIC not in progress  # nothing to rename

    _as_an_older_release_left_it(project)
    _, progress = _run(project, "refresh")
    assert _modules(project) == NEW_MODULES and DIAGNOSTIC in progress

    _as_an_older_release_left_it(project)
    up, progress = _run(project, "up", "--yes")
    assert _changed(up) == {} and _modules(project) == NEW_MODULES and DIAGNOSTIC in progress
    _, progress = _run(project, "up", "--yes")
    assert DIAGNOSTIC not in progress  # once only: the state holds the new names now

    # A dead edge makes `preview` refresh first (the one preview that reads the providers).
    _as_an_older_release_left_it(project)
    assert daemon.stop(project.state / "edge.json")
    preview, progress = _run(project, "preview")
    assert _changed(preview) == {"create": 1}  # the edge, started again by the next `up`
    assert _modules(project) == NEW_MODULES and DIAGNOSTIC in progress

    _as_an_older_release_left_it(project)
    gone, progress = _run(project, "destroy", "--yes")
    assert _changed(gone) == {"delete": 10} and DIAGNOSTIC in progress
