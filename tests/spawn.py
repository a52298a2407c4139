"""Children started with chosen signal dispositions, without `preexec_fn`.

`preexec_fn` makes subprocess fork (not vfork), and a fork of a process that has loaded
gRPC (the tests drive the Pulumi Automation API in-process) runs gRPC's fork handlers: its
poller restarted in the child met the descriptors `close_fds` had closed, and the child
died of SIGABRT before exec ("Epoll1Poller ... epoll_wait error: Bad file descriptor"; a
`test_engine.py` run in CI, grpc/grpc#43055). An ignored or default disposition survives
exec, so it is set in this process around the spawn instead (main thread only)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def dispositions(wanted: dict[int, Any]) -> Iterator[None]:
    """Within the block, this process's handlers for `wanted`'s signals are `wanted`'s
    (signal.SIG_IGN or signal.SIG_DFL, which a child inherits through exec)."""
    previous = {sig: signal.signal(sig, how) for sig, how in wanted.items()}
    try:
        yield
    finally:
        for sig, how in previous.items():
            signal.signal(sig, how)
