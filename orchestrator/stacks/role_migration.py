"""Upgrading a deployed stack to named function roles without breaking what `live` runs.

Before issue 24 the function roles were auto-named (`function-role-1a2b3c4`); now they are
`<base>-fn` / `<base>-auth` under `/edgeship/<base>/`. IAM names cannot change in place, so
the first `up` after the upgrade replaces each role: Pulumi creates the new one, points the
function at it (publishing one more version) and deletes the old role and its inline
policy. But a published Lambda version keeps the role it was published with: `live`, still
on an older version until the next promotion, and every rollback target would lose their
role, and their next cold start would fail.

So before that `up`, the old roles and their inline policies are marked retain-on-delete in
the stack's state: the engine honours the *old* state's flag when it replaces a resource
(it skips the provider's delete), and the roles stay in the account, untouched, for the
versions that run with them. The user deletes them once no kept version uses them.

`plan` decides (pure); `Stacks.up` applies it through export/import of the stack's state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Resource type -> the output naming the role it is (a Role) or belongs to (a RolePolicy).
ROLE_TYPES: Mapping[str, str] = {"aws:iam/role:Role": "name"}
POLICY_TYPES: Mapping[str, str] = {"aws:iam/rolePolicy:RolePolicy": "role"}


@dataclass(frozen=True)
class Retained:
    """The state to import (None: nothing to change) and the roles it keeps."""

    deployment: dict[str, Any] | None
    roles: tuple[str, ...]

    def message(self) -> str:
        roles = ", ".join(self.roles)
        deletes = "; ".join(
            f"aws iam list-role-policies --role-name {r} (delete each with delete-role-policy), "
            f"aws iam delete-role --role-name {r}"
            for r in self.roles
        )
        return (
            f"kept the function roles this `up` replaces ({roles}): Lambda versions published "
            "before it still run with them (live and rollback targets). Delete them once "
            f"`orchestrator status` shows no such version in use: {deletes}"
        )


def plan(
    deployment: Mapping[str, Any],
    current: Iterable[str],
    *,
    role_types: Mapping[str, str] | None = None,
    policy_types: Mapping[str, str] | None = None,
) -> Retained:
    """Mark retain-on-delete every role whose name is not one of `current` (the names the
    program gives its roles now), and the inline policies of those roles."""
    current = set(current)
    role_types = ROLE_TYPES if role_types is None else role_types
    policy_types = POLICY_TYPES if policy_types is None else policy_types
    resources = [r for r in deployment.get("resources") or [] if not r.get("delete")]

    def name_of(resource: Mapping[str, Any], types: Mapping[str, str]) -> str | None:
        key = types.get(resource.get("type", ""))
        value = (resource.get("outputs") or {}).get(key) if key else None
        return value if isinstance(value, str) else None

    outgoing = {
        name
        for r in resources
        if (name := name_of(r, role_types)) is not None
        and name not in current
        and not r.get("retainOnDelete")
    }
    if not outgoing:
        return Retained(None, ())
    updated = copy.deepcopy(dict(deployment))
    for resource in updated.get("resources") or []:
        if resource.get("delete"):
            continue
        if name_of(resource, role_types) in outgoing or name_of(resource, policy_types) in outgoing:
            resource["retainOnDelete"] = True
    return Retained(updated, tuple(sorted(outgoing)))
