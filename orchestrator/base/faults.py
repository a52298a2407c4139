"""Named fault points: a test tool for breaking a promotion on purpose, inert unless armed.

    EDGESHIP_FAULT="enter-shifting=kill"                 kill -9 ourselves on the first shift
    EDGESHIP_FAULT="enter-gating=raise;enter-rolling-back=sigint"

One environment variable, read once; each term is `point=action` (`point:action` also
reads). Actions: `kill` (SIGKILL to this process: nothing runs after it), `sigterm`,
`sigint` (delivered to ourselves, handled as a real signal would be), `raise` (an
InjectedFault exception), `sleep(ms)`. A point fires on its first hit only, so a fault in
a loop (one per step) breaks the first step. Unknown points or actions are a
configuration error at start-up: a typo must not make a fault test pass by testing
nothing. Hits are counted so tests can see a point was reached.

The names follow the promotion state machine (orchestrator/release/machine.py): `enter-P` fires
after the record says phase P (the intent is durable) and before P's action runs;
`done-P` after the action, before the next record write. `in-gate` and the `gate-*` points
fire inside a gate (pre-traffic's or a step's), between the record's write and the verdict.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter

from orchestrator.base.errors import ConfigError, InjectedFault

ENV_VAR = "EDGESHIP_FAULT"

# Phases with an act (see machine.PHASES); kept literal here so this module stays import-light.
_PHASES = ("planned", "pre-traffic", "shifting", "baking", "gating", "paused", "promoting", "rolling-back")
POINTS: tuple[str, ...] = (
    "lease-taken",  # the lease's PUT has landed, the heartbeat is not running yet
    "after-lease",  # the promotion lease is held, nothing published yet
    # `up` or `rotate-origin-secret` holds the lease, nothing changed yet (`destroy` takes no lease)
    "stack-change-after-lease",
    "after-publish",  # green is published, no record written yet
    *(f"{when}-{phase}" for phase in _PHASES for when in ("enter", "done")),
    "in-gate",  # Locust is running against the edge or the candidate route
    "write-after-shift",  # live has moved (a step's weights): the record's write that says so
    # a forward record write failed with the lease held: live is back on blue, the rollback
    # not recorded yet (the record in S3 still says in flight: Driver._roll_back_unrecorded)
    "rolled-back-unrecorded",
    # Sequential gates only (never hit by fixed-length ones):
    "gate-stopped-early",  # a look decided and the load has stopped; nothing judged or recorded yet
    "gate-early-fail",  # an early FAIL was decided to stand (over the judge's pass, if need be)
)
ACTIONS = ("kill", "sigterm", "sigint", "raise", "sleep")
_TERM = re.compile(r"^\s*(?P<point>[a-z-]+)\s*[=:]\s*(?P<action>[a-z]+)(?:\((?P<arg>[^)]*)\))?\s*$")


def parse(spec: str) -> dict[str, tuple[str, str]]:
    """`point=action;...` -> {point: (action, argument)}; a ConfigError for anything unknown."""
    armed: dict[str, tuple[str, str]] = {}
    for term in filter(str.strip, spec.split(";")):
        match = _TERM.match(term)
        if not match:
            raise ConfigError(
                f"{ENV_VAR}: cannot read {term!r}", fix="write point=action, e.g. enter-shifting=kill"
            )
        point, action, arg = match["point"], match["action"], match["arg"] or ""
        if point not in POINTS:
            raise ConfigError(
                f"{ENV_VAR}: unknown fault point {point!r}", fix=f"use one of: {', '.join(POINTS)}"
            )
        if action not in ACTIONS:
            raise ConfigError(
                f"{ENV_VAR}: unknown action {action!r}", fix=f"use one of: {', '.join(ACTIONS)}"
            )
        if action == "sleep" and not arg.isdigit():
            raise ConfigError(f"{ENV_VAR}: sleep needs milliseconds", fix="e.g. enter-baking=sleep(500)")
        armed[point] = (action, arg)
    return armed


_armed: dict[str, tuple[str, str]] = parse(os.environ.get(ENV_VAR, ""))
hits: Counter[str] = Counter()


def arm(spec: str) -> None:
    """Replace the armed points (in-process tests; subprocesses use the environment variable)."""
    global _armed
    _armed = parse(spec)
    hits.clear()


def point(name: str) -> None:
    """A fault point. Returns at once unless `name` is armed; fires on its first hit."""
    if not _armed:
        return
    if name not in POINTS:  # a call site with a typo is a bug, armed or not
        raise AssertionError(f"unknown fault point {name!r}")
    hits[name] += 1
    if name not in _armed or hits[name] != 1:
        return
    action, arg = _armed[name]
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    elif action == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
    elif action == "raise":
        raise InjectedFault(f"injected fault at {name}", fix=f"unset {ENV_VAR}")
    elif action == "sleep":
        time.sleep(int(arg) / 1000)
