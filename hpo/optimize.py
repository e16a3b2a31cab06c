"""The runner loop behind `Study.optimize`, in one thread or several (`n_jobs`).

    reap lost trials -> budget met? -> claim an enqueued trial or ask the
    sampler -> run the objective -> store the outcome (one transaction) ->
    callbacks

Several threads (Optuna's `n_jobs`) share one Study: starting and finishing a
trial happen under the study's lock, the objective runs outside it, so
threads pay off when the objective waits (I/O, a GPU, a remote job) or
releases the GIL. For CPU-bound Python objectives use processes
(`hpo run --workers N`). `n_trials` counts the trials of all threads together.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hpo.errors import BudgetMet, SamplerExhausted

if TYPE_CHECKING:
    from hpo.records import FrozenTrial
    from hpo.trial import Trial

log = logging.getLogger("hpo")


class Runs(Protocol):
    """What the loop needs of a study: a local `hpo.Study` or a remote one (hpo.remote)."""

    poll_interval: float

    @property
    def name(self) -> str: ...

    @property
    def budget(self) -> int | None: ...

    @property
    def n_counted(self) -> int: ...

    @property
    def stop_requested(self) -> bool: ...

    def stop(self) -> None: ...

    def start_trial(self) -> FrozenTrial: ...

    def run_trial(
        self,
        fn: Callable[[Trial], Any],
        record: FrozenTrial,
        catch: tuple[type[BaseException], ...] = ...,
    ) -> FrozenTrial: ...


@dataclass
class Loop:
    """One `optimize` call: what to run, and when to stop."""

    study: Runs
    fn: Callable[[Trial], Any]
    n_trials: int | None
    deadline: float | None  # time.monotonic()
    catch: tuple[type[BaseException], ...]
    callbacks: Sequence[Callable[[Any, FrozenTrial], None]]
    gc_after_trial: bool

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._started = 0  # trials started by this call, over all threads
        self._told_waiting = False

    def run(self, n_jobs: int) -> None:
        jobs = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
        if jobs == 1:
            self._thread()
            return
        self._threads(jobs)

    def _threads(self, jobs: int) -> None:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                self._thread()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                errors.append(exc)
                self.study.stop()

        threads = [
            threading.Thread(target=work, name=f"hpo-job-{i}", daemon=True) for i in range(jobs)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except KeyboardInterrupt:  # Ctrl-C reaches this thread: let the trials running finish
            self.study.stop()
            for thread in threads:
                thread.join()
            raise
        if errors:
            raise errors[0]

    def _thread(self) -> None:
        while self._take_a_place():
            try:
                record = self.study.start_trial()
            except SamplerExhausted as exc:
                log.info("study %s: %s", self.study.name, exc)
                return
            except BudgetMet:
                self._give_back_a_place()
                if self.study.n_counted >= (self.study.budget or 0):
                    return  # the budget is met
                self._wait_for_other_workers()
                continue
            finished = self.study.run_trial(self.fn, record, self.catch)
            with self._lock:
                for callback in self.callbacks:
                    callback(self.study, finished)
            if self.gc_after_trial:
                gc.collect()

    def _take_a_place(self) -> bool:
        """Whether another trial may start (n_trials, the deadline, stop())."""
        with self._lock:
            if self.study.stop_requested:
                return False
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return False
            if self.n_trials is not None and self._started >= self.n_trials:
                return False
            self._started += 1
            return True

    def _give_back_a_place(self) -> None:
        with self._lock:
            self._started -= 1

    def _wait_for_other_workers(self) -> None:
        """The rest of the budget runs elsewhere: wait for it to finish (or be lost)."""
        if not self._told_waiting:
            log.info(
                "study %s: the rest of the budget is running in other workers; waiting "
                "for those trials",
                self.study.name,
            )
            self._told_waiting = True
        poll = self.study.poll_interval
        left = None if self.deadline is None else self.deadline - time.monotonic()
        time.sleep(max(0.0, min(poll, left if left is not None else poll)))
