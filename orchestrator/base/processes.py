"""Process helpers shared by stack locks, promotions and local daemons."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def alive(pid: int) -> bool:
    """True if a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C inside the block: CI cancels jobs with SIGTERM, and long
    operations must stop cleanly (cancel the update, roll back the promotion) either way."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then raise KeyboardInterrupt: for
    cleanup that must not be cut half-way (giving a lease back: a DELETE interrupted before it
    was sent leaves the lease held until it expires). The handlers before the block are put
    back first. Outside the main thread there are no handlers to change: the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
    if received:
        raise KeyboardInterrupt


class SignalLatch:
    """SIGINT and SIGTERM as flags instead of exceptions, for the whole of a promotion.

    A promotion must never be cut between an alias call and the record write that follows
    it, so signals only set `received`; the driver looks at it between actions and inside
    its waits (bake, load test), and starts the rollback itself. While `rolling_back` is
    set, further signals are acknowledged and ignored: the rollback finishes first.
    """

    def __init__(self, *, rolls_back: bool = True) -> None:
        self.received: str | None = None
        self.count = 0
        self.rolling_back = False
        # Whether a stop now rolls back, for what a signal tells the user: a command that holds
        # the lease but has written no record yet has nothing to roll back (review: a Ctrl-C
        # during the lease's take said "rolling back"); set once a promotion's record exists.
        self.rolls_back = rolls_back
        self._raise = False
        self._previous: dict[int, Any] = {}

    @contextmanager
    def raising(self) -> Iterator[None]:
        """Inside the block a signal raises KeyboardInterrupt (work that is safe to cancel, such
        as a publish before any record exists); one latched before the block raises at once."""
        self.raise_if_received()
        self._raise = True
        try:
            yield
        finally:
            self._raise = False

    def raise_if_received(self) -> None:
        """KeyboardInterrupt if a signal was latched."""
        if self.received:
            raise KeyboardInterrupt

    def __enter__(self) -> SignalLatch:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.received = self.received or signal.Signals(signum).name
        if self._raise:
            raise KeyboardInterrupt
        if self.rolling_back or (self.count > 1 and self.rolls_back):
            message = "\nedgeship: rolling back, please wait (live is being put back on blue)\n"
        elif self.count > 1:
            message = "\nedgeship: already stopping, please wait\n"
        else:
            stopping = "stopping and rolling back" if self.rolls_back else "stopping (live was not touched)"
            message = f"\nedgeship: {signal.Signals(signum).name} received: {stopping}\n"
        os.write(2, message.encode())
