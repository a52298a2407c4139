"""The model is a contract: what a model pack's metadata promises its clients, and whether a
new model keeps that promise.

Clients of an environment send rows of the live model's features (POST `inputs`, or GET
`?feature=..` by name) and read its outputs (a classifier's `label` among its labels and
`probabilities` in label order, or a regressor's `value`). A green model that takes other
features, or answers in another kind or with other labels, breaks every current client
the moment it serves them; a new name or version breaks nobody.

    metadata.json (live's) ─┐
                            ├─ compare -> ContractChange(breaking, reasons, notes)
    metadata.json (green's) ┘

Pure: no I/O. modelpack.read_archive reads a local archive, deployed.py live's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.base.errors import UsageError

CLASSIFIER, REGRESSOR = "classifier", "regressor"


@dataclass(frozen=True)
class Contract:
    """The interface a model offers: its input columns (in order) and its output."""

    name: str | None
    version: str | None
    features: tuple[str, ...]
    kind: str  # CLASSIFIER | REGRESSOR
    labels: tuple[str, ...] = ()  # a classifier's, in the probabilities' order

    def input_text(self) -> str:
        """`4 features [a,b,c,d]`."""
        return f"{len(self.features)} feature{'s' if len(self.features) != 1 else ''} [{','.join(self.features)}]"

    def output_text(self) -> str:
        """`a classifier of 3 labels [x,y,z]` or `a regressor`."""
        if self.kind == CLASSIFIER:
            return f"a classifier of {len(self.labels)} labels [{','.join(self.labels)}]"
        return "a regressor"

    def describe(self) -> str:
        """One line: `iris 1.0: 4 features [a,b,c,d] -> a classifier of 3 labels [x,y,z]`."""
        return f"{self.name} {self.version}: {self.input_text()} -> {self.output_text()}"


@dataclass(frozen=True)
class ContractChange:
    """Green's contract against live's. `reasons`: what breaks current clients (empty when
    nothing does); `notes`: what changed without breaking anyone (name, version)."""

    breaking: bool
    reasons: list[str]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.breaking:
            return "breaking: " + "; ".join(self.reasons)
        return "compatible" + (f" ({'; '.join(self.notes)})" if self.notes else ": same contract")

    def to_dict(self) -> dict[str, Any]:
        return {"breaking": self.breaking, "reasons": list(self.reasons), "notes": list(self.notes)}


def problems(metadata: Mapping[str, Any]) -> list[str]:
    """What makes a metadata.json unusable as a contract (empty: it is one). Archives written
    before `model pack` carry no `task`: the output's labels say which kind they are."""
    found: list[str] = []
    for key in ("name", "version"):
        if not isinstance(metadata.get(key), str | int | float) or str(metadata.get(key)) == "":
            found.append(f"no {key!r}")
    declared = metadata.get("input")
    features = declared.get("features") if isinstance(declared, Mapping) else None
    if not isinstance(features, list) or not features or not all(isinstance(f, str) and f for f in features):
        found.append("no input.features (a non-empty list of column names)")
    else:
        if len(set(features)) != len(features):
            found.append("input.features names a feature twice")
        example = declared.get("example") if isinstance(declared, Mapping) else None
        if example is not None and (
            not isinstance(example, list)
            or len(example) != len(features)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in example)
        ):
            found.append(f"input.example is not one number per feature ({len(features)})")
    output = metadata.get("output")
    if not isinstance(output, Mapping):
        found.append("no output")
        return found
    task = metadata.get("task")
    labels = output.get("labels")
    if task not in (None, "classification", "regression"):
        found.append(f"task {task!r} is neither classification nor regression")
    elif task == "classification" or (task is None and labels):
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            found.append("a classifier's output.labels must be a non-empty list of names")
    elif labels:
        found.append("a regressor's output declares labels")
    return found


def contract_of(metadata: Mapping[str, Any]) -> Contract:
    """The contract a metadata.json declares; ValueError naming what is missing."""
    wrong = problems(metadata)
    if wrong:
        raise ValueError("; ".join(wrong))
    output = metadata["output"]
    labels = tuple(output.get("labels") or ())
    kind = CLASSIFIER if metadata.get("task") == "classification" or labels else REGRESSOR
    return Contract(
        str(metadata["name"]), str(metadata["version"]), tuple(metadata["input"]["features"]), kind, labels
    )


def compare(live: Mapping[str, Any], green: Mapping[str, Any]) -> ContractChange:
    """Does green keep live's contract? Both are model-pack metadata dicts (valid: see
    `problems`). Order matters for features (rows are positional) and for labels (the
    probabilities are in label order)."""
    old, new = contract_of(live), contract_of(green)
    reasons: list[str] = []
    if old.features != new.features:
        if len(old.features) != len(new.features):
            consequence = "every current client would get bad_shape"
        elif set(old.features) == set(new.features):
            # The handler reads a row by position and named features by name (handler.py).
            consequence = (
                "the same features in another order: rows sent by position would give their values "
                "to other features (named ones are still read right)"
            )
        else:
            # A row is read by position as before: only the names say the meaning may have moved.
            consequence = (
                "other feature names: rows sent by position are read as before, right only if each "
                "position still means what it did; named ones would be refused (bad_features)"
            )
        reasons.append(
            f"live takes {old.input_text()}; green takes {len(new.features)} [{','.join(new.features)}]: {consequence}"
        )
    if old.kind != new.kind:
        reads = "`label` and `probabilities`" if old.kind == CLASSIFIER else "`value`"
        reasons.append(
            f"live is {old.output_text()}; green is {new.output_text()}: clients reading {reads} would break"
        )
    elif old.labels != new.labels:
        consequence = (
            "the same labels in another order: probabilities would be read against the wrong labels"
            if set(old.labels) == set(new.labels)
            else "clients expecting live's labels would get others"
        )
        reasons.append(
            f"live's labels are [{','.join(old.labels)}]; green's [{','.join(new.labels)}]: {consequence}"
        )
    notes = [
        f"{what} {a} -> {b}"
        for what, a, b in (("name", old.name, new.name), ("version", old.version, new.version))
        if a != b
    ]
    return ContractChange(bool(reasons), reasons, notes)


ALL_AT_ONCE = "all-at-once"


@dataclass(frozen=True)
class Decision:
    """What a promotion does about green's contract: `schedule` is the schedule it must run
    (None: the one asked for or configured); `say` what the user is told, when anything."""

    change: ContractChange
    schedule: str | None = None
    say: str | None = None


def decide(change: ContractChange, *, allowed: bool, schedule: str | None, live: str, green: str) -> Decision:
    """Refuse a breaking change (ContractError), or, when the user allowed it, run it all at
    once: while blue and green are both routed, every request of one of the two contracts
    fails on the other, so no canary step can serve (or be gated) honestly; green is gated
    alone on the candidate route (the pre-traffic gate), then takes all of live.
    `live`/`green` name the two models in messages."""
    if not change.breaking:
        note = "--allow-breaking-change given, but green keeps live's contract: promoting as planned"
        return Decision(change, None, note if allowed else None)
    reasons = "; ".join(change.reasons)
    if not allowed:
        raise ContractError(
            f"green ({green}) breaks the contract live ({live}) serves: {reasons}",
            fix="pack green with live's features and labels (`orchestrator model pack --features ...`), "
            "or, if every client changes with it, promote with --allow-breaking-change "
            "(green is then gated alone on the candidate route and takes all traffic at once)",
        )
    if schedule not in (None, ALL_AT_ONCE):
        raise ContractError(
            f"--schedule {schedule} with a breaking change: no canary can serve both contracts ({reasons})",
            fix=f"drop --schedule (an allowed breaking change moves {ALL_AT_ONCE})",
        )
    return Decision(
        change,
        ALL_AT_ONCE,
        f"breaking change allowed ({reasons}): no canary can serve both contracts, so green is gated "
        f"alone on the candidate route (pre-traffic gate) and then takes all of live at once",
    )


class ContractError(UsageError):
    """Green's contract breaks live's and the user did not allow it (exit 2: nothing was published)."""
