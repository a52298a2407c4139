"""Roles renamed by an upgrade are kept for the versions that still run with them
(orchestrator/stacks/role_migration.py): `plan` as a table, then the real engine replacing a
role whose old state says retain-on-delete."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.stacks import engine as stacks
from orchestrator.stacks import role_migration
from tests.conftest import REPO

ROLE, POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
NEW = ("shop-prod-fn", "shop-prod-auth")


def _res(type_: str, urn: str, **outputs: Any) -> dict[str, Any]:
    return {"type": type_, "urn": urn, "outputs": outputs}


STATE = {
    "resources": [
        _res("pulumi:pulumi:Stack", "stack"),
        _res(ROLE, "function-role", name="function-role-1a2b3c4"),
        _res(POLICY, "function-policy", role="function-role-1a2b3c4", name="function-policy-9f"),
        _res(ROLE, "authorizer-role", name="shop-prod-auth"),  # already named: not kept
        _res(POLICY, "authorizer-policy", role="shop-prod-auth"),
        _res(
            "aws:lambda/function:Function", "function", name="shop-prod-infer", role="function-role-1a2b3c4"
        ),
    ]
}


def _flags(deployment: dict[str, Any] | None) -> dict[str, bool]:
    assert deployment is not None
    return {r["urn"]: bool(r.get("retainOnDelete")) for r in deployment["resources"]}


def test_an_auto_named_role_and_its_policy_are_kept_and_nothing_else() -> None:
    retained = role_migration.plan(STATE, NEW)
    assert retained.roles == ("function-role-1a2b3c4",)
    assert [urn for urn, kept in _flags(retained.deployment).items() if kept] == [
        "function-role",
        "function-policy",
    ]
    assert "retainOnDelete" not in STATE["resources"][1]  # the input is not changed
    assert "aws iam delete-role --role-name function-role-1a2b3c4" in retained.message()


@pytest.mark.parametrize(
    "deployment",
    [
        {"resources": [_res(ROLE, "r", name="shop-prod-fn"), _res(ROLE, "a", name="shop-prod-auth")]},
        {"resources": [{**_res(ROLE, "r", name="function-role-1"), "retainOnDelete": True}]},  # kept already
        {"resources": [{**_res(ROLE, "r", name="function-role-1"), "delete": True}]},  # pending delete
        {},  # a stack never deployed
    ],
    ids=["named", "already-kept", "pending-delete", "empty"],
)
def test_nothing_to_keep_changes_nothing(deployment: dict[str, Any]) -> None:
    assert role_migration.plan(deployment, NEW) == role_migration.Retained(None, ())


# -- the engine honours the old state's flag when it replaces ---------------------------------


@pytest.mark.parametrize("migrate", [True, False], ids=["kept", "without-migration"])
def test_the_engine_keeps_a_renamed_role_marked_by_the_plan(
    migrate: bool, pulumi_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted = tmp_path / "deleted"
    deleted.mkdir()
    monkeypatch.setenv("EDGESHIP_TEST_DELETED_DIR", str(deleted))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-passphrase")
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    # the test program's roles are dynamic resources: one type, told apart by their outputs
    monkeypatch.setattr(role_migration, "ROLE_TYPES", {"pulumi-python:dynamic:Resource": "roleName"})
    monkeypatch.setattr(role_migration, "POLICY_TYPES", {"pulumi-python:dynamic:Resource": "role"})
    program = stacks.load_program("tests.engine_roles_program:program")

    def stack(role_name: str) -> stacks.Stacks:
        spec = stacks.StackSpec(
            project="shop", stack="prod", backend_url=(tmp_path / "state").as_uri(),
            work_dir=tmp_path / "work", pulumi_root=pulumi_root,
            config={"edgeship:roleName": (role_name, False)},
        )  # fmt: skip
        return stacks.Stacks(spec, program)

    stack("function-role-1a2b3c4").up(role_names=NEW)
    assert sorted(p.name for p in deleted.iterdir()) == []
    result = stack("shop-prod-fn").up(role_names=NEW if migrate else None)
    assert result.changes == {"replace": 2, "same": 1}  # the stack itself is "same"
    gone = sorted(p.name for p in deleted.iterdir())
    if migrate:
        assert gone == []  # the old role and its policy stay in the account
    else:
        assert gone == ["deleted-function-role-1a2b3c4", "deleted-function-role-1a2b3c4-policy"]
    # a later `up` has nothing left to keep: the old role left the state with the replacement
    assert stack("shop-prod-fn").up(role_names=NEW).changes == {"same": 3}
    assert sorted(p.name for p in deleted.iterdir()) == gone
