"""Rotating the origin secret (the header CloudFront sends and the API checks) with no
refused request. The stages, and what each sends and accepts:

    stage       the edge sends   the API accepts      reached by
    settled     current          current              create; the end of a rotation
    accepting   current          current, next        a new value is made
    sending     next             next, current        the edge switches to it
    settled     next             next                 the old value is dropped

The API learns the new value before the edge sends it, and forgets the old one only after
the edge stopped sending it. Each stage is one `up` of the origin secret and what depends
on it (programs/origin_secret.py), the stage itself stack config
(`edgeship:originSecretRotation`, "<generation>:<stage>"): a rotation that stopped
half-way (a kill, a cancelled job) is finished by running it again.

The decisions here are pure (table-tested); `rotate` runs them against a target.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.base.errors import NotDeployedError
from orchestrator.base.progress import ProgressEvent, Reporter

SETTLED, ACCEPTING, SENDING = "settled", "accepting", "sending"
# From each stage, the one a rotation goes to next.
NEXT_STAGE = {SETTLED: ACCEPTING, ACCEPTING: SENDING, SENDING: SETTLED}
INITIAL = f"0:{SETTLED}"


@dataclass(frozen=True)
class Rotation:
    """Where a rotation stands: its generation (how many were started) and stage."""

    generation: int
    stage: str

    @staticmethod
    def parse(text: str) -> Rotation:
        generation, _, stage = text.partition(":")
        if not generation.isdigit() or stage not in NEXT_STAGE:
            raise ValueError(
                f"edgeship:originSecretRotation {text!r}: expected '<n>:settled|accepting|sending'"
            )
        return Rotation(int(generation), stage)

    def __str__(self) -> str:
        return f"{self.generation}:{self.stage}"

    def remaining(self) -> list[Rotation]:
        """The stages a rotation still goes through from here: a whole new one from
        `settled`, the rest of the unfinished one otherwise."""
        generation = self.generation + 1 if self.stage == SETTLED else self.generation
        stages: list[Rotation] = []
        stage = self.stage
        while not stages or stage != SETTLED:  # follow NEXT_STAGE until the rotation settles
            stage = NEXT_STAGE[stage]
            stages.append(Rotation(generation, stage))
        return stages


@dataclass(frozen=True)
class Secrets:
    """What the edge sends and what the API accepts (the value sent first)."""

    sent: str
    accepted: tuple[str, ...]


def advance(now: Secrets, to: str, fresh: Callable[[], str]) -> Secrets:
    """The values after moving to stage `to` (pure; `fresh` makes a new secret).

    Refuses the one move that would refuse requests: sending a value the API has not
    accepted yet (`settled` straight to `sending`)."""
    if to == ACCEPTING:
        return Secrets(now.sent, (now.sent, fresh()))
    if to == SENDING:
        if len(now.accepted) < 2 or now.accepted[0] != now.sent:
            raise ValueError(
                "the origin secret can only be sent once the API accepts it: rotate through 'accepting'"
            )
        return Secrets(now.accepted[1], (now.accepted[1], now.sent))
    if to == SETTLED:
        return Secrets(now.sent, (now.sent,))
    raise ValueError(f"unknown rotation stage {to!r}")


class Rotatable(Protocol):
    """What a rotation needs of an environment (orchestrator.stacks.targets.StackTarget)."""

    def outputs(self) -> dict[str, Any]: ...

    def rotate_origin_secret(self, to: Rotation, urn: str, reporter: Reporter) -> None: ...


def rotate(
    target: Rotatable,
    reporter: Reporter,
    *,
    settle_s: Mapping[str, float],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Run the rotation's remaining stages; after each, wait what `settle_s` says for that
    stage (how long the cloud takes to act on it everywhere) before the next one."""
    outputs = target.outputs()
    urn, at = outputs.get("originSecretUrn"), outputs.get("originSecretRotation")
    if not urn or not at:
        raise NotDeployedError(
            "the stack has no rotatable origin secret yet (deployed by an older edgeship)",
            fix="run `orchestrator up` once, then rotate",
        )
    start = Rotation.parse(str(at))
    stages = start.remaining()
    for number, stage in enumerate(stages, 1):
        reporter.event(
            ProgressEvent(
                "step",
                f"origin secret: {stage.stage} ({number}/{len(stages)})",
                data={"rotation": str(stage)},
            )
        )
        target.rotate_origin_secret(stage, str(urn), reporter)
        wait = settle_s.get(stage.stage, 0.0)
        if wait and number < len(stages):
            reporter.event(ProgressEvent("step", f"waiting {wait:g} s for the cloud to apply it everywhere"))
            sleep(wait)
    return {"from": str(start), "to": str(stages[-1]), "stages": [str(s) for s in stages]}
