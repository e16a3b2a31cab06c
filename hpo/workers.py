"""Several worker processes on one study, on this machine (`hpo run --workers N`).

Each worker is an `hpo worker NAME --quiet` process (``python -m hpo``) that
reads the storage URL from HPO_STORAGE rather than its command line, where
`ps` would show a password. The workers share the study through the
database alone: they claim trials in transactions that check the budget, so
together they run exactly the budget (see `hpo.study`). The parent process
only watches: it reports each trial as it finishes and, on Ctrl-C or
SIGTERM, stops the workers with SIGTERM and lets them store their running
trials before it returns. A
parent killed outright (kill -9) cannot do that: each worker watches its
parent and, when it is gone, stops as on Ctrl-C instead of running on alone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpo.study import Callback, Study

POLL_INTERVAL_S = 0.5
STOP_GRACE_S = 30.0  # how long stopping workers may take to store their trials
PARENT_VARIABLE = "HPO_PARENT_PID"  # set for the workers that run_workers starts
PARENT_POLL_S = 0.5

log = logging.getLogger("hpo")


def run_workers(
    study: Study,
    storage: str,
    n_workers: int,
    timeout: float | None = None,
    callbacks: Iterable[Callback] = (),
) -> list[int]:
    """Run `n_workers` worker processes on `study` until they stop; their exit codes.

    `callbacks` are called in this process for every trial that finishes,
    whichever worker ran it.
    """
    command = [sys.executable, "-m", "hpo", "worker", study.name, "--quiet"]
    if timeout is not None:
        command += ["--timeout", repr(timeout)]
    environment = {
        **os.environ,
        "HPO_STORAGE": storage,
        PARENT_VARIABLE: str(os.getpid()),
        **thread_limits(n_workers),
    }
    callbacks = list(callbacks)
    _, seen = study.finished_since(0)  # those finished before now are not reported
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(n_workers):
            # A process group of its own: the terminal's Ctrl-C reaches this process only,
            # which stops the workers with SIGTERM. A worker still loading then ends
            # silently (its SIGTERM handler is not installed yet) instead of printing
            # Python's traceback of an interrupted import.
            processes.append(subprocess.Popen(command, env=environment, process_group=0))
        while True:
            running = any(p.poll() is None for p in processes)
            seen = report_finished(study, seen, callbacks)
            if not running:
                break
            time.sleep(POLL_INTERVAL_S)
    except BaseException:
        _stop(processes)
        raise
    codes = [p.returncode for p in processes]
    for process, code in zip(processes, codes, strict=True):
        if code != 0:
            log.warning(
                "worker %d exited with code %d%s",
                process.pid,
                code,
                " (killed by a signal)" if code < 0 else "",
            )
    return codes


def watch_parent() -> None:
    """In a worker that run_workers started: when the parent process is gone, stop as
    on Ctrl-C (SIGTERM, which the command takes as one): the running trial is stored
    as interrupted and its point runs first on resume. Elsewhere, nothing."""
    text = os.environ.pop(PARENT_VARIABLE, None)  # (not inherited by the objective's children)
    if text is None:
        return
    parent = int(text)

    def watch() -> None:
        while os.getppid() == parent:  # reparented once the parent dies
            time.sleep(PARENT_POLL_S)
        log.warning(
            "the parent process %d is gone: stopping; the running trial is stored as "
            "interrupted and runs first on resume",
            parent,
        )
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hpo-parent-watch", daemon=True).start()


_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_limits(n_workers: int, keep_set: bool = True) -> dict[str, str]:
    """Share the cores between the workers' BLAS thread pools.

    Each NumPy process would start a thread per core; N of them on the same
    cores fight over them and train slower together than one alone. A
    limit the user set is kept (`keep_set`; a Dask worker's limit is Dask's
    default of 1, not the user's, and is replaced).
    """
    if keep_set and any(name in os.environ for name in _THREAD_VARIABLES):
        return {}
    per_worker = str(max(1, (os.cpu_count() or 1) // n_workers))
    return dict.fromkeys(_THREAD_VARIABLES, per_worker)


def report_finished(study: Study, seen: int, callbacks: list[Callback]) -> int:
    """Hand the trials finished since the last look (the first `seen` finished ones
    were handed before) to the callbacks, in the order they finished (so that a
    progress line's best so far is as of its trial); the new count seen. Only what
    changed is read: the cost of a look does not grow with the study."""
    new, seen = study.finished_since(seen)
    for trial in sorted(new, key=lambda t: t.finish_order):
        for callback in callbacks:
            callback(study, trial)
    return seen


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every worker (each takes it as Ctrl-C and stores its trial), then wait."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # a worker takes it as Ctrl-C
    if not _wait(processes, STOP_GRACE_S):
        for process in processes:
            if process.poll() is None:
                process.kill()  # its trial is found lost and re-queued on the next run
        _wait(processes, 5.0)


def _wait(processes: list[subprocess.Popen[bytes]], seconds: float) -> bool:
    """Wait up to `seconds` for every process to exit; whether they all did."""
    deadline = time.monotonic() + seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
    return True
