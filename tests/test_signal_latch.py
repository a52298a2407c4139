"""What a signal tells the user, by what the command is doing (processes.SignalLatch): before
a promotion's record exists nothing is rolled back, so nothing says so."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from orchestrator.base.processes import SignalLatch


def _signal(latch: SignalLatch, capfd: Any, signum: int = signal.SIGINT) -> str:
    os.kill(os.getpid(), signum)  # handled before os.kill returns (the main thread's own signal)
    return str(capfd.readouterr().err).strip()


@pytest.mark.parametrize(
    ("rolls_back", "first", "again"),
    [
        (
            False,
            "edgeship: SIGINT received: stopping (live was not touched)",
            "edgeship: already stopping, please wait",
        ),
        (
            True,
            "edgeship: SIGINT received: stopping and rolling back",
            "edgeship: rolling back, please wait (live is being put back on blue)",
        ),
    ],
)
def test_a_signal_says_what_stopping_does_now(capfd: Any, rolls_back: bool, first: str, again: str) -> None:
    with SignalLatch(rolls_back=rolls_back) as latch:
        assert _signal(latch, capfd) == first
        assert _signal(latch, capfd, signal.SIGTERM) == again
        assert (latch.received, latch.count) == ("SIGINT", 2)


def test_a_latch_says_rolling_back_once_the_promotion_runs(capfd: Any) -> None:
    # as Release._run does when the record is written
    with SignalLatch(rolls_back=False) as latch:
        latch.rolls_back = True
        assert (
            _signal(latch, capfd, signal.SIGTERM) == "edgeship: SIGTERM received: stopping and rolling back"
        )
        latch.rolling_back = True
        assert _signal(latch, capfd) == "edgeship: rolling back, please wait (live is being put back on blue)"
