"""Ctrl-C is held while a trial's rows are written, and raised once they are."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from hpo.interrupts import held_interrupts


def test_ctrl_c_inside_the_block_is_raised_when_it_ends():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT has no Python handler here (a background run ignores it)")
    written, raised = [], False
    try:
        with held_interrupts() as held:
            os.kill(os.getpid(), signal.SIGINT)
            written.append("the whole write")  # not cut short
            assert held.received == [signal.SIGINT]
    except KeyboardInterrupt:
        raised = True
    assert raised and written == ["the whole write"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_held_signal_reaches_the_handler_that_was_in_place():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with held_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]  # once, after the block
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_without_a_signal_nothing_happens_and_other_threads_are_left_alone():
    with held_interrupts() as held:
        pass
    assert held.received == []
    outcome = []

    def other() -> None:
        with held_interrupts() as held:  # may not set handlers here: it holds nothing
            outcome.append(held.received)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert outcome == [[]]
