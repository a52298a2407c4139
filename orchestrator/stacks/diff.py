"""What a preview would change, property by property, condensed to what a user decides on.

`pulumi preview --diff` prints every input of every step. edgeship's users ask three
things before an `up`: does it publish a new version, with which model and which code,
and which settings move. The engine's step events carry each resource's old and new
inputs (its `diffs` field stays empty for these programs' resources), so the changes are
computed here from those inputs (pure: table-tested on plain dicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# The engine's placeholder for a value only known once `up` runs (a new version's number).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
COMPUTED = "(known after up)"
# Inputs that say where, not what: the dynamic provider's serialised code, the local state dir.
IGNORED = frozenset({"__provider", "stateDir"})
# Stack config covered by the model and code digests (paths differ per machine and per build).
CONFIG_BY_DIGEST = frozenset({"modelPath", "packagePath"})
FUNCTION = "function"  # the serving function's logical name, in both programs
PUBLISHING = frozenset({"create", "update", "replace"})
# A replacement is reported as three steps; "replace" alone tells it.
SKIPPED_OPS = frozenset({"same", "create-replacement", "delete-replaced", "read", "refresh"})
NOT_THE_STEP = frozenset({"create-replacement", "delete-replaced", "read", "refresh"})
OP_MARK = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}


@dataclass(frozen=True)
class Step:
    """One resource step of a preview, as the engine's resource_pre_event describes it."""

    op: str
    urn: str
    old: Mapping[str, Any] | None = None  # inputs before (None: the resource is created)
    new: Mapping[str, Any] | None = None  # inputs after (None: the resource is deleted)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def type(self) -> str:
        parts = self.urn.split("::")
        return parts[-2].removeprefix("pulumi-python:dynamic/") if len(parts) >= 4 else ""


@dataclass(frozen=True)
class PropertyChange:
    key: str  # dotted path into the inputs: environment.variables.MODEL_SHA256
    old: Any
    new: Any


@dataclass(frozen=True)
class ResourceChange:
    op: str
    resource: str  # "type name"
    properties: list[PropertyChange] = field(default_factory=list)


@dataclass(frozen=True)
class Digest:
    """A model's or the code's sha256 before and after (None: not deployed before)."""

    old: str | None
    new: str | None

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class Diff:
    publishes: bool  # the function changes: `up` publishes a new version
    model: Digest | None
    code: Digest | None
    config: list[PropertyChange]  # edgeship:* stack config that differs (without paths)
    resources: list[ResourceChange]
    # How the new version's sandboxes get the model: "package" or "s3" (MODEL_DELIVERY).
    delivery: Digest | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flatten(inputs: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested inputs as dotted keys ({"environment": {"A": 1}} -> {"environment.A": 1})."""
    flat: dict[str, Any] = {}
    for key, value in (inputs or {}).items():
        if not prefix and key in IGNORED:
            continue
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = COMPUTED if value == UNKNOWN else value
    return flat


def property_changes(step: Step) -> list[PropertyChange]:
    """The inputs that differ between before and after (none for a create or a delete:
    the whole resource is the change)."""
    if step.old is None or step.new is None:
        return []
    old, new = flatten(step.old), flatten(step.new)
    return [
        PropertyChange(key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _digest(step: Step, key_end: str) -> Digest | None:
    old = next((v for k, v in flatten(step.old).items() if k.endswith(key_end)), None)
    new = next((v for k, v in flatten(step.new).items() if k.endswith(key_end)), None)
    return None if old is None and new is None else Digest(old, new)


def summarise(steps: list[Step]) -> Diff:
    """The preview's steps -> what it would publish and which properties move."""
    # the function's own step: a refresh first reads it back (refresh), a replacement is
    # three steps of which "replace" tells
    function = next(
        (
            s
            for s in reversed(steps)
            if s.name == FUNCTION and not s.type.startswith("pulumi:") and s.op not in NOT_THE_STEP
        ),
        None,
    )
    model = code = delivery = None
    if function is not None:
        model = _digest(function, "MODEL_SHA256")
        delivery = _digest(function, "MODEL_DELIVERY")
        # the local program's digest (hex), or the AWS provider's sourceCodeHash (base64)
        code = _digest(function, "codeSha256") or _digest(function, "sourceCodeHash")
    config: list[PropertyChange] = []
    resources: list[ResourceChange] = []
    for step in steps:
        if step.type.startswith("pulumi:providers:"):
            # the provider's inputs carry the stack's config: the edgeship:* part is ours
            config += [
                PropertyChange(c.key.removeprefix("edgeship:"), c.old, c.new)
                for c in property_changes(step)
                if c.key.startswith("edgeship:") and c.key.removeprefix("edgeship:") not in CONFIG_BY_DIGEST
            ]
            continue
        if step.op in SKIPPED_OPS:
            continue
        resources.append(ResourceChange(step.op, f"{step.type} {step.name}".strip(), property_changes(step)))
    publishes = function is not None and function.op in PUBLISHING
    return Diff(publishes, model, code, config, resources, delivery)


def short(value: Any) -> str:
    """A value as a line shows it: digests to 12 characters, long text cut."""
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else repr(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:12]
    return text if len(text) <= 60 else text[:57] + "..."


def headline(diff: Diff) -> list[str]:
    """The lines every preview prints: what `up` would publish, and the config that moves."""
    lines = []
    if diff.publishes:
        parts = []
        for what, digest in (("model", diff.model), ("code", diff.code)):
            if digest is None:
                continue
            if digest.old is None:
                parts.append(f"{what} {short(digest.new)}")
            elif digest.changed:
                parts.append(f"{what} {short(digest.new)} (was {short(digest.old)})")
            else:
                parts.append(f"{what} {short(digest.new)} (unchanged)")
        if diff.delivery is not None and diff.delivery.new is not None:
            # where the new version's sandboxes read the model from (programs/modelship.py)
            was = f" (was {diff.delivery.old})" if diff.delivery.changed and diff.delivery.old else ""
            parts.append(f"model from {'the package' if diff.delivery.new == 'package' else 'S3'}{was}")
        lines.append("publishes a new version: " + ("; ".join(parts) or "function settings changed"))
    else:
        lines.append("publishes no new version")
    if diff.config:
        lines.append("config: " + ", ".join(f"{c.key} {short(c.old)} -> {short(c.new)}" for c in diff.config))
    return lines


def detail(diff: Diff) -> list[str]:
    """`preview --diff`: every resource that changes, with its properties."""
    lines = []
    for r in diff.resources:
        lines.append(f"{OP_MARK.get(r.op, r.op)} {r.resource}")
        lines += [f"    {p.key}: {short(p.old)} => {short(p.new)}" for p in r.properties]
    return lines
