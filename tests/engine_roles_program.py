"""A cloud-free program with a role and its inline policy, as dynamic resources whose
delete leaves a trace: for tests/test_role_migration.py (a role renamed by an upgrade)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider


class _Provider(ResourceProvider):
    """Creates nothing; a name change replaces; a delete writes `deleted-<id>` into
    EDGESHIP_TEST_DELETED_DIR (read by the provider process, hence the environment)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props.get("roleName") or f"{props['role']}-policy", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("roleName", "role") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        Path(os.environ["EDGESHIP_TEST_DELETED_DIR"], f"deleted-{id_}").write_text("deleted")


class Role(Resource):
    roleName: pulumi.Output[str]  # the provider's property name

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(_Provider(), name, props, opts)


def program() -> None:
    role_name = pulumi.Config("edgeship").require("roleName")
    role = Role("function-role", {"roleName": role_name})
    Role("function-policy", {"role": role.roleName})
