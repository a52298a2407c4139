"""A small IAM policy evaluator, after AWS's documented evaluation logic, for the tests.

AWS's rules (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements:
Condition operators"), the part the generated policies use:
- an explicit Deny in any applicable policy wins;
- otherwise a request is allowed when an identity policy's statement allows it, and, with a
  permissions boundary, the boundary allows it too (the intersection); else implicit deny;
- a statement applies when its Action (or NotAction) matches the action, case-insensitively
  with `*` and `?`, its Resource (or NotResource) matches the ARN, case-sensitively, and
  every condition holds: operators are ANDed, the keys of one operator ANDed, the values
  of one key ORed;
- a key missing from the request: a positive operator is false, a negated one
  (StringNotEquals, StringNotLike, ArnNotEquals, ArnNotLike) true, `...IfExists` true,
  `Null: "true"` true; ForAnyValue false, ForAllValues true.
Condition keys are case-insensitive, their values case-sensitive (String/Arn operators).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Decision = Literal["allow", "deny", "implicit"]
Context = Mapping[str, str | Sequence[str]]


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    # IAM wildcards: `*` any run of characters (including `/` and `:`), `?` one character.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


# Single-value comparisons: (policy value, request value) -> match.
_COMPARE = {
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": lambda p, v: _glob(p, v),
    "StringNotLike": lambda p, v: _glob(p, v),
    "ArnEquals": lambda p, v: _glob(p, v),
    "ArnLike": lambda p, v: _glob(p, v),
    "ArnNotEquals": lambda p, v: _glob(p, v),
    "ArnNotLike": lambda p, v: _glob(p, v),
    "Bool": lambda p, v: p.lower() == v.lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
OPERATORS = frozenset({*_COMPARE, "Null"})


def operator_supported(name: str) -> bool:
    """True when `name` (with its ForAnyValue:/ForAllValues: prefix and IfExists suffix)
    is one this evaluator implements."""
    base = name.split(":", 1)[1] if name.startswith(("ForAnyValue:", "ForAllValues:")) else name
    base = base.removesuffix("IfExists") if base != "Null" else base
    return base in OPERATORS


def _condition_holds(operator: str, key: str, wanted: Any, context: Context) -> bool:
    found = {k.lower(): v for k, v in context.items()}.get(key.lower())
    wanted_values = _listed(wanted)
    if operator == "Null":
        return (found is None) == (wanted_values[0].lower() == "true")
    qualifier = ""
    if operator.startswith(("ForAnyValue:", "ForAllValues:")):
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator not in _COMPARE:
        raise ValueError(f"condition operator {operator!r} is not implemented here")
    compare, negated = _COMPARE[operator], operator in _NEGATED
    if found is None:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated
    values = _listed(found)

    def one(value: str) -> bool:
        hit = any(compare(w, value) for w in wanted_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def _applies(statement: Mapping[str, Any], action: str, resource: str, context: Context) -> bool:
    if "Action" in statement:
        if not any(_glob(p, action, case=False) for p in _listed(statement["Action"])):
            return False
    elif any(_glob(p, action, case=False) for p in _listed(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(_glob(p, resource) for p in _listed(statement["Resource"])):
            return False
    elif any(_glob(p, resource) for p in _listed(statement["NotResource"])):
        return False
    return all(
        _condition_holds(operator, key, wanted, context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, wanted in keys.items()
    )


def decide(
    document: Mapping[str, Any], action: str, resource: str, context: Context | None = None
) -> Decision:
    """One policy document's answer."""
    statements = [s for s in _listed_statements(document) if _applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in statements):
        return "deny"
    return "allow" if any(s["Effect"] == "Allow" for s in statements) else "implicit"


def _listed_statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statement = document["Statement"]
    return [statement] if isinstance(statement, Mapping) else list(statement)


def allowed(
    policies: Sequence[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Context | None = None,
    *,
    boundary: Mapping[str, Any] | None = None,
) -> bool:
    """Whether a principal with these identity policies (and permissions boundary) may make
    the request."""
    decisions = [decide(p, action, resource, context) for p in policies]
    if "deny" in decisions or "allow" not in decisions:
        return False
    return boundary is None or decide(boundary, action, resource, context) == "allow"
