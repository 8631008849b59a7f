"""SIGTERM and SIGHUP stop a run the way Ctrl-C does.

The handler raises ``Terminated`` (a KeyboardInterrupt), so every place that handles Ctrl-C
(the executor between and during steps, bulk's stop flag, the wizard) finishes or abandons
the step in flight and writes the recap, the audit entry and the report. Only the first
signal raises: a second one while the run records what it did is ignored. The exit status
is then 128 + the signal number (143 for SIGTERM, 129 for SIGHUP) instead of 130.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)
CTRL_C_EXIT = 130


class Terminated(KeyboardInterrupt):
    """A stop signal other than Ctrl-C arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: int | None = None


def install() -> None:
    """Handle SIGTERM and SIGHUP (call from the main thread of the real process)."""
    for signum in HANDLED:
        signal.signal(signum, _handler)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received is not None:
        return  # already stopping: let the run finish recording what it did
    _received = signum
    raise Terminated(signum)


def reason() -> str:
    """What stopped the run, as messages name it: ``Ctrl-C``, ``SIGTERM`` or ``SIGHUP``."""
    return "Ctrl-C" if _received is None else signal.Signals(_received).name


def exit_status(status: int) -> int:
    """The interrupted status 130 becomes 128 + the signal number after SIGTERM/SIGHUP."""
    if status == CTRL_C_EXIT and _received is not None:
        return 128 + _received
    return status


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP while a record is written (the audit entry of a
    change that was made); a signal that came meanwhile is handled right after."""
    held = {signal.SIGINT, *HANDLED}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
