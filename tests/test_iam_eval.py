"""tests/iam_eval.py follows AWS's evaluation rules (the cases the IAM User Guide spells out)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam_eval import allowed, decide, operator_supported

ARN = "arn:aws:s3:::bucket/key"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str = "s3:GetObject", resource: str = ARN, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(
    ("statement", "action", "resource", "decision"),
    [
        (allow(), "s3:GetObject", ARN, "allow"),
        (allow("s3:get*"), "S3:GetObject", ARN, "allow"),  # actions: case-insensitive
        (allow(resource="arn:aws:s3:::bucket/KEY"), "s3:GetObject", ARN, "implicit"),  # ARNs: case-sensitive
        (allow(resource="arn:aws:s3:::b?cket/*"), "s3:GetObject", ARN, "allow"),
        (allow(resource="arn:aws:s3:::bucket"), "s3:GetObject", ARN, "implicit"),
        ({"Effect": "Allow", "NotAction": "s3:Put*", "Resource": "*"}, "s3:GetObject", ARN, "allow"),
        ({"Effect": "Allow", "NotAction": "s3:Get*", "Resource": "*"}, "s3:GetObject", ARN, "implicit"),
        ({"Effect": "Allow", "Action": "*", "NotResource": ARN}, "s3:GetObject", ARN, "implicit"),
    ],
)
def test_action_and_resource_matching(
    statement: dict[str, Any], action: str, resource: str, decision: str
) -> None:
    assert decide(doc(statement), action, resource) == decision


def test_an_explicit_deny_wins_and_a_boundary_intersects() -> None:
    everything = doc(allow("*", "*"))
    assert (
        decide(doc(allow(), {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}), "s3:GetObject", ARN)
        == "deny"
    )
    assert not allowed(
        [everything, doc({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})], "s3:GetObject", ARN
    )
    assert allowed([everything], "s3:PutObject", ARN)
    assert not allowed([everything], "s3:PutObject", ARN, boundary=doc(allow()))
    assert allowed([everything], "s3:GetObject", ARN, boundary=doc(allow()))
    # a boundary grants nothing by itself
    assert not allowed([doc(allow("s3:PutObject"))], "s3:GetObject", ARN, boundary=doc(allow()))


KEY = "aws:ResourceTag/team"


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"StringEquals": {KEY: "a"}}, {KEY: "a"}, True),
        ({"StringEquals": {KEY: "a"}}, {KEY: "A"}, False),  # values: case-sensitive
        ({"StringEquals": {"AWS:resourcetag/TEAM": "a"}}, {KEY: "a"}, True),  # keys: case-insensitive
        ({"StringEquals": {KEY: ["a", "b"]}}, {KEY: "b"}, True),  # values ORed
        ({"StringEquals": {KEY: "a"}}, {}, False),  # missing key: positive operator false
        ({"StringNotEquals": {KEY: "a"}}, {}, True),  # ... negated operator true
        ({"StringNotEquals": {KEY: "a"}}, {KEY: "a"}, False),
        ({"StringNotEquals": {KEY: "a"}}, {KEY: "b"}, True),
        ({"StringEqualsIfExists": {KEY: "a"}}, {}, True),
        ({"StringEqualsIfExists": {KEY: "a"}}, {KEY: "b"}, False),
        ({"StringLike": {KEY: "a*"}}, {KEY: "abc"}, True),
        ({"StringLike": {KEY: "a?"}}, {KEY: "abc"}, False),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::b*"}}, {"aws:SourceArn": "arn:aws:s3:::bucket"}, True),
        ({"Null": {KEY: "true"}}, {}, True),
        ({"Null": {KEY: "false"}}, {}, False),
        ({"Null": {KEY: "false"}}, {KEY: "a"}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "False"}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ["b", "a"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ["b", "a"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {}, True),
        # operators ANDed, keys of one operator ANDed
        ({"StringEquals": {KEY: "a"}, "Null": {KEY: "true"}}, {KEY: "a"}, False),
        ({"StringEquals": {KEY: "a", "aws:RequestTag/team": "a"}}, {KEY: "a"}, False),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, Any], holds: bool) -> None:
    decision = decide(doc(allow(Condition=condition)), "s3:GetObject", ARN, context)
    assert decision == ("allow" if holds else "implicit")


def test_an_operator_it_does_not_know_is_refused_not_ignored() -> None:
    # moto's evaluator lets unknown operators pass; this one must not
    assert not operator_supported("NumericLessThan")
    assert operator_supported("ForAnyValue:StringLikeIfExists") and operator_supported("Null")
    with pytest.raises(ValueError, match="not implemented"):
        decide(
            doc(allow(Condition={"NumericLessThan": {"s3:max-keys": "10"}})),
            "s3:GetObject",
            ARN,
            {"s3:max-keys": "5"},
        )
