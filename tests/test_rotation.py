"""Origin-secret rotation decisions, without I/O: the stages, the values at each, and the
driver's order of stages and waits against a recording target."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from orchestrator.base.errors import NotDeployedError
from orchestrator.base.progress import NullReporter, Reporter
from orchestrator.programs.rotation import ACCEPTING, SENDING, SETTLED, Rotation, Secrets, advance, rotate


@pytest.mark.parametrize(
    ("at", "remaining"),
    [
        ("0:settled", ["1:accepting", "1:sending", "1:settled"]),
        ("4:settled", ["5:accepting", "5:sending", "5:settled"]),
        ("5:accepting", ["5:sending", "5:settled"]),  # an interrupted rotation is finished
        ("5:sending", ["5:settled"]),
    ],
)
def test_remaining_stages(at: str, remaining: list[str]) -> None:
    assert [str(r) for r in Rotation.parse(at).remaining()] == remaining


@pytest.mark.parametrize("bad", ["", "settled", "x:settled", "1:done", "-1:settled", "1"])
def test_a_malformed_stage_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="originSecretRotation"):
        Rotation.parse(bad)


def test_values_through_a_rotation() -> None:
    fresh = iter(["new"]).__next__
    start = Secrets("old", ("old",))
    accepting = advance(start, ACCEPTING, fresh)
    assert accepting == Secrets("old", ("old", "new"))
    sending = advance(accepting, SENDING, fresh)
    assert sending == Secrets("new", ("new", "old"))
    assert advance(sending, SETTLED, fresh) == Secrets("new", ("new",))


def test_sending_a_value_the_api_does_not_accept_yet_is_refused() -> None:
    with pytest.raises(ValueError, match="accepting"):
        advance(Secrets("old", ("old",)), SENDING, lambda: "new")


def test_no_stage_change_refuses_a_request_whichever_side_applies_it_first() -> None:
    """The edge (what is sent) and the API (what is accepted) take each stage at different
    moments: every mix of before/after must still accept what is sent."""
    counter = itertools.count()
    now = Secrets("s0", ("s0",))
    for _ in range(2):  # two rotations back to back
        for stage in (ACCEPTING, SENDING, SETTLED):
            after = advance(now, stage, lambda: f"s{next(counter) + 1}")
            for sent, accepted in itertools.product((now.sent, after.sent), (now.accepted, after.accepted)):
                if (sent, accepted) == (after.sent, now.accepted) and stage == SENDING:
                    continue  # the order rotate() forbids: the edge sends only after `up` applied it
                assert sent in accepted, (stage, sent, accepted)
            now = after


class _Recording:
    """A target that records the stages it is asked to apply."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self._outputs, self.applied = outputs, []  # type: ignore[var-annotated]

    def outputs(self) -> dict[str, Any]:
        return self._outputs

    def rotate_origin_secret(self, to: Rotation, urn: str, reporter: Reporter) -> None:
        self.applied.append((str(to), urn))


def test_rotate_applies_each_stage_and_waits_between_them() -> None:
    target = _Recording({"originSecretRotation": "2:settled", "originSecretUrn": "urn:secret"})
    slept: list[float] = []
    result = rotate(target, NullReporter(), settle_s={"accepting": 40, "sending": 35}, sleep=slept.append)
    assert target.applied == [
        ("3:accepting", "urn:secret"),
        ("3:sending", "urn:secret"),
        ("3:settled", "urn:secret"),
    ]
    assert slept == [40, 35]  # nothing after the last stage
    assert result == {
        "from": "2:settled",
        "to": "3:settled",
        "stages": ["3:accepting", "3:sending", "3:settled"],
    }


def test_rotate_finishes_an_interrupted_rotation() -> None:
    target = _Recording({"originSecretRotation": "3:accepting", "originSecretUrn": "urn:secret"})
    rotate(target, NullReporter(), settle_s={}, sleep=lambda s: None)
    assert [stage for stage, _ in target.applied] == ["3:sending", "3:settled"]


def test_a_stack_without_a_rotatable_secret_says_to_run_up() -> None:
    with pytest.raises(NotDeployedError, match="older edgeship") as raised:
        rotate(_Recording({"functionName": "f"}), NullReporter(), settle_s={})
    assert "orchestrator up" in (raised.value.fix or "")
