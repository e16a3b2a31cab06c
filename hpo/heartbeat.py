"""Liveness of running trials: a background heartbeat, and the test for a lost one.

While a trial runs, a daemon thread refreshes its heartbeat in storage every
`interval` seconds. A RUNNING trial is lost when its heartbeat is older than
the grace period, or at once when it ran on this machine in a process that
no longer exists (kill -9, out of memory), so resuming after a crash does not
wait out the grace period.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

from hpo.errors import StorageError
from hpo.records import LEASE_S, FrozenTrial, TrialState

HEARTBEAT_INTERVAL_S = 10.0
GRACE_PERIOD_S = 60.0

log = logging.getLogger("hpo")


def worker_id() -> str:
    """This process as "host:pid" (computed each time: a fork changes the pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_lost(trial: FrozenTrial, now: float, grace_period: float = GRACE_PERIOD_S) -> bool:
    """Whether a RUNNING trial's worker is gone: its process ran here and has died, or
    no heartbeat came for the grace period (or the trial's own lease, if it has one:
    a trial asked for by a client that beats when it can)."""
    if trial.state != TrialState.RUNNING:
        return False
    grace_period = float(trial.system_attrs.get(LEASE_S, grace_period))
    host, _, pid = (trial.worker or "").rpartition(":")
    if (
        host == socket.gethostname()
        and pid.isdigit()
        and int(pid) != os.getpid()
        and not _process_alive(int(pid))
    ):
        return True
    return trial.heartbeat_at is not None and now - trial.heartbeat_at > grace_period


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a killed child its parent has not reaped yet is a zombie: dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Beats(Protocol):
    """Where heartbeats go: a Storage, or a remote study (hpo.remote)."""

    @property
    def is_memory(self) -> bool: ...

    def heartbeat(self, trial_ids: Sequence[int]) -> None: ...


class Heartbeat:
    """While started (or open as a context manager), keeps the heartbeats of the
    `running()` trials fresh."""

    def __init__(
        self,
        storage: Beats,
        running: Callable[[], list[int]],
        interval: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self._storage = storage
        self._running = running  # the ids of the trials this process is evaluating
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        # An in-memory database is private to this process: nobody to tell.
        if not self._storage.is_memory:
            self._thread = threading.Thread(target=self._beat, name="hpo-heartbeat", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.heartbeat(self._running())
            except StorageError as exc:  # keep beating; the next one may get through
                log.warning("heartbeat failed: %s", exc)
