"""SIGINT cancels a command, whatever the process inherited.

Python installs its KeyboardInterrupt handler at start-up only when SIGINT is not ignored,
and a background job of a non-interactive shell (`cmd &` in a Makefile recipe or a CI
wrapper) starts with SIGINT ignored: `up` would then run to its end through a cancel sent
to it (seen: exit 0, not 130). So the CLI installs the handler itself, as its first act,
for every command: from then on a SIGINT raises KeyboardInterrupt wherever the command is,
before the engine starts (nothing applied: the CLI exits 130) or while it runs (stacks/engine.py
passes it on to the engine, which stops cleanly). A signal that arrives before this runs,
while the interpreter itself starts, the kernel discards when it is ignored: nothing a
Python program can catch.

Kept light (signal, sys, errors.py): it runs before the CLI's own imports (`python -m orchestrator`).
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

from orchestrator.base.errors import ExitCode


def cancel_on_sigint() -> None:
    """SIGINT raises KeyboardInterrupt from now on (Python's own handler), even when the
    process started with it ignored or at the kernel's default. A handler this process set
    itself (the CLI called in process by a program with its own) is left alone, as is any
    thread but the main one (only it may set handlers)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGINT)
    if callable(current) and current is not signal.default_int_handler:
        return  # the caller's own
    signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupted() -> NoReturn:
    """End the command as cancelled (exit 130): a SIGINT arrived before it reached the CLI's
    own handling (while its modules imported, or click parsed the command line)."""
    sys.stderr.write("interrupted\n")
    sys.exit(int(ExitCode.INTERRUPTED))
