"""Ctrl-C held while a trial's rows are written, and raised once they are.

Ctrl-C (SIGINT, and SIGTERM, which the CLI turns into the same
KeyboardInterrupt) raises wherever the main thread happens to be. Inside
the objective that is what users want: the trial is stored as interrupted
and its point runs again. Inside the transaction that starts a trial or
stores its outcome, it left the trial RUNNING with a finished objective's
result lost (`hpo resume --workers 3` stopped at a round's end, where the
workers were telling: tests/test_workers.py). While `held_interrupts()` is
open those signals are only noted; when it closes, the handler that was in
place gets them, so the KeyboardInterrupt comes after the write, whole.

Only the main thread can set signal handlers, and only it receives signals:
elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

HELD = (signal.SIGINT, signal.SIGTERM)


class Held:
    """The signals that arrived while held, in order."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)


@contextlib.contextmanager
def held_interrupts() -> Iterator[Held]:
    """Hold SIGINT and SIGTERM for the block (where a Python handler would raise);
    deliver them to that handler when it ends."""
    held = Held()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous: dict[int, Any] = {}
    for held_signal in HELD:
        handler = signal.getsignal(held_signal)
        if callable(handler):  # ignored or default (no Python handler): nothing to hold
            previous[held_signal] = handler
            signal.signal(held_signal, held.note)
    try:
        yield held
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(held.received):  # each signal once, in order
            deliver: Callable[[int, FrameType | None], Any] = previous[number]
            deliver(number, None)
