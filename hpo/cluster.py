"""A study's workers as tasks on a Dask cluster (`hpo run --cluster ADDRESS --workers N`).

    connect (refusing storage the cluster cannot share) -> check that every Dask
    worker can load the objective -> submit N tasks -> each runs `hpo worker NAME`
    in a process of its own -> this process reports trials as they finish

Each task is one `hpo worker` process, started by the Dask worker that runs
the task: the same worker loop, budget rules and Ctrl-C handling as `hpo run
--workers N` (hpo/workers.py), with the study shared through the database
alone. A process of its own (not a thread of the Dask worker) because only a
process can be stopped mid-trial cleanly: on Ctrl-C the driver sets a Dask
event, each task sends its process SIGTERM, and the process stores its
running trial as interrupted and re-queues its point. When the Dask worker
process dies, its `hpo worker` notices within a second (hpo.workers.
watch_parent) and stops the same way; when the whole machine is lost, the
trial's heartbeat stops and a live worker reaps it (hpo.heartbeat). Either
way its point runs again, Dask may rerun the task, and the budget stays exact.

Dask is imported here only, inside functions: `import hpo` does not need it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hpo.connection import is_memory_url, parse_url
from hpo.errors import ClusterError, StudyConfigError
from hpo.workers import PARENT_VARIABLE, STOP_GRACE_S, report_finished, thread_limits

if TYPE_CHECKING:
    from hpo.study import Callback, Study

LOCAL = "local"  # --cluster local: a LocalCluster on this machine
POLL_INTERVAL_S = 0.5
STOP_WAIT_S = STOP_GRACE_S + 10.0  # the tasks' own grace, and the time to hear back
_TAIL_LINES = 20  # what a task keeps of its process's messages, for the driver

log = logging.getLogger("hpo")


# -- the driver ----------------------------------------------------------------


def check_storage(storage: str, cluster: Any) -> None:
    """Refuse storage the cluster's workers cannot share, before anything is written:
    a private in-memory database always, an SQLite file unless the cluster is a
    LocalCluster on this machine (other machines cannot open it, and SQLite's
    locking is not reliable on a network filesystem)."""
    url = parse_url(storage)
    if is_memory_url(url):
        raise StudyConfigError(
            "--cluster needs the storage as a URL the cluster's workers can open, "
            "not an in-memory database"
        )
    if url.get_backend_name() == "sqlite" and not _is_local(cluster):
        raise StudyConfigError(
            f"--cluster {_describe(cluster)}: the Dask workers on other machines cannot "
            f"share the SQLite file {url.database!r}; store the study in PostgreSQL or "
            "MySQL (--storage postgresql+psycopg://user@host/db), or run on this "
            "machine with --cluster local"
        )


@dataclass
class Session:
    """A connected Dask client (and the LocalCluster it started, if any)."""

    cluster: Any  # what `connect` was given
    client: Any  # distributed.Client
    local: Any | None  # distributed.LocalCluster that `connect` started
    workers: int | None  # tasks per study; None: one per thread of the cluster
    checked: set[str] = field(default_factory=set)  # objectives every worker can load

    def optimize(
        self,
        study: Study,
        timeout: float | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> list[TaskResult]:
        """Run the study's workers on the cluster until they stop; what each task ended
        with. `callbacks` run here for every trial that finishes, wherever it ran."""
        return run_tasks(self, study, timeout, callbacks)

    def n_tasks(self) -> int:
        if self.workers is not None:
            return self.workers
        threads = sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values())
        return max(1, threads)


@contextlib.contextmanager
def connect(cluster: Any, workers: int | None = None) -> Iterator[Session]:
    """A session on `cluster`: "local" (a LocalCluster of `workers` processes), a
    scheduler address ("tcp://host:8786"), a distributed.Client, or a cluster object
    (LocalCluster, dask-jobqueue's SLURMCluster, ...). Closed on exit, except a
    client or cluster the caller passed in. Dask's own log says only errors
    meanwhile (a LocalCluster's scheduler and nannies run in this process, and
    log their every step)."""
    distributed = _import_distributed()
    local = None
    with _quiet_dask():
        if isinstance(cluster, distributed.Client):
            client, owned = cluster, False
        elif cluster == LOCAL:
            local = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client, owned = distributed.Client(local, set_as_default=False), True
        elif isinstance(cluster, str):
            client, owned = _connect_to(distributed, cluster), True
        else:  # a cluster object
            client, owned = distributed.Client(cluster, set_as_default=False), True
        try:
            yield Session(cluster, client, local, workers)
        finally:
            if owned:
                client.close()
            if local is not None:
                local.close()


def optimize(
    study: Study,
    cluster: Any,
    workers: int | None = None,
    timeout: float | None = None,
    callbacks: Iterable[Callback] = (),
) -> list[TaskResult]:
    """Run `study` with `workers` Dask tasks on `cluster` (see `connect`), each an
    `hpo worker` on the study's storage, until its budget is met (or `timeout`).
    The study must have a stored objective (a built-in, module:function or
    file.py:function) and shareable storage (`check_storage`)."""
    check_storage(study.storage.identity, cluster)
    with connect(cluster, workers) as session:
        return session.optimize(study, timeout, callbacks)


@dataclass(frozen=True)
class TaskResult:
    """How one task ended: its `hpo worker`'s exit code and last messages."""

    worker: str  # the Dask worker's address
    code: int
    messages: tuple[str, ...]
    stopped: bool = False  # by the driver: Ctrl-C, or the budget met

    def describe(self) -> str:
        last = self.messages[-1] if self.messages else "no message"
        return f"hpo worker on {self.worker} exited with code {self.code}: {last}"


def check_workers(session: Session, objective: str, options: dict[str, Any]) -> None:
    """Every Dask worker can run hpo and load the objective, or a ClusterError that
    says which cannot and why, before anything is written. A file objective is
    uploaded first; a worker that has the file at the same path (this machine, a
    shared filesystem) loads it from there, with its neighbours."""
    if objective in session.checked:
        return
    path = _objective_file(objective)
    if path is not None and path.is_file():
        session.client.upload_file(str(path), load=False)
    try:
        answers = session.client.run(_probe, objective, options, on_error="return")
    except Exception as exc:  # noqa: BLE001 - anything the cluster says
        raise ClusterError(f"the Dask workers cannot run hpo: {_one_line(exc)}") from None
    if not answers:
        raise ClusterError("the Dask cluster has no workers")
    for address, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            raise ClusterError(
                f"the Dask worker {address} cannot run hpo ({_one_line(answer)}); "
                "install hpo there, the same version as here"
            )
        if answer is not None:
            raise ClusterError(
                f"the Dask worker {address} cannot load the objective: {answer}; make it "
                "importable there (install the package it needs, or put its files on a "
                "shared filesystem; a file objective is uploaded, but not what it imports)"
            )
    session.checked.add(objective)


def run_tasks(
    session: Session, study: Study, timeout: float | None, callbacks: Iterable[Callback]
) -> list[TaskResult]:
    """Submit the tasks, report trials as they finish, and collect how the tasks ended.
    Ctrl-C (or any error here) stops the tasks, whose trials are stored as
    interrupted, before it propagates."""
    distributed = _import_distributed()
    check_storage(study.storage.identity, session.cluster)
    client = session.client
    info = study.info
    if info.objective is None:
        raise ClusterError(
            f"study {study.name!r} has no stored objective (it was created from a Python "
            "function): a cluster's workers can only run a built-in, module:function or "
            "file.py:function objective"
        )
    check_workers(session, info.objective, dict(info.objective_options or {}))
    stop = distributed.Event(f"hpo-stop-{uuid.uuid4().hex}", client=client)
    deadline = None if timeout is None else time.time() + timeout
    threads = _threads_by_host(client)
    futures = [
        client.submit(
            run_task,
            study.name,
            study.storage.identity,
            info.objective,
            deadline,
            stop.name,
            threads,
            key=f"hpo-worker-{study.name}-{i}-{uuid.uuid4().hex[:8]}",
            pure=False,
        )
        for i in range(session.n_tasks())
    ]
    callbacks = list(callbacks)
    _, seen = study.finished_since(0)  # those finished before now are not reported
    try:
        while True:
            done = all(f.done() for f in futures)
            seen = report_finished(study, seen, callbacks)
            if done or _budget_done(study):
                break
            time.sleep(POLL_INTERVAL_S)
    except BaseException:
        _stop(client, futures, stop)
        raise
    if not done:
        # The budget is met: the tasks running have nothing left to run, and those not
        # started (more tasks than the cluster has threads, a task Dask reruns after
        # its worker died) need not start a process only to see that.
        _stop(client, futures, stop)
    return _results(futures)


def _budget_done(study: Study) -> bool:
    """Every trial of the budget has finished (none running, none queued to run)."""
    return study.budget is not None and study.n_counted >= study.budget


def _stop(client: Any, futures: list[Any], stop: Any) -> None:
    """Tell every task to stop its `hpo worker` (which stores its trial as
    interrupted), wait for them, then cancel what is left (tasks not started)."""
    with contextlib.suppress(Exception):  # a cluster gone: nothing left to tell
        stop.set()
        deadline = time.monotonic() + STOP_WAIT_S
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            time.sleep(0.1)
    with contextlib.suppress(Exception):
        client.cancel(futures)


def _results(futures: list[Any]) -> list[TaskResult]:
    """How the tasks ended (a task cancelled before it started: not at all); a warning
    for each that failed, other than by being stopped."""
    results = []
    for future in futures:
        if future.status == "error":  # e.g. KilledWorker: its Dask workers died too often
            error = future.exception()
            results.append(TaskResult("?", 1, (f"{type(error).__name__}: {error}",)))
        elif future.status == "finished":
            results.append(future.result())
    for result in results:
        if result.code != 0 and not result.stopped:
            log.warning("%s", result.describe())
    return results


def _connect_to(distributed: Any, address: str) -> Any:
    """A client of the scheduler at `address`; one line when it cannot be reached (how
    long Dask tries: distributed.comm.timeouts.connect, env
    DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT)."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend

    try:  # before a Client exists: one that fails on a malformed address leaves its
        # event loop running, and the interpreter then never exits
        scheme, location = parse_address(address)
        get_backend(scheme).get_address_host_port(location)
    except ValueError as exc:
        raise ClusterError(
            f"{address!r} is not a Dask scheduler address (e.g. tcp://HOST:8786, or "
            f"'local'): {_one_line(exc)}"
        ) from None
    try:
        return distributed.Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address!r}: {_one_line(exc)}"
        ) from None


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own loggers (distributed.*, each with its level from Dask's config) say
    only errors for a while: what hpo has to say, it says itself."""
    names = ["distributed"] + [
        n for n in logging.root.manager.loggerDict if n.startswith("distributed.")
    ]
    loggers = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _threads_by_host(client: Any) -> dict[str, int]:
    """Dask worker threads per machine: each task's share of that machine's cores."""
    threads: dict[str, int] = collections.Counter()
    for address, worker in client.scheduler_info()["workers"].items():
        threads[urlsplit(address).hostname or address] += worker["nthreads"]
    return dict(threads)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "--cluster needs Dask distributed: pip install -e '.[dask]' (in hpo's checkout)"
        ) from None
    return distributed


def _is_local(cluster: Any) -> bool:
    if cluster == LOCAL:
        return True
    return type(cluster).__name__ == "LocalCluster"


def _describe(cluster: Any) -> str:
    return cluster if isinstance(cluster, str) else type(cluster).__name__


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- on a Dask worker ------------------------------------------------------------


def _objective_file(objective: str) -> Path | None:
    """The file of a file.py:function objective (stored as an absolute path), else None."""
    location, _, _ = objective.rpartition(":")
    if location.endswith(".py") or "/" in location or os.sep in location:
        return Path(location)
    return None


def _local_copy(objective: str) -> Path | None:
    """On a Dask worker, where to load a file objective from when the stored path is not
    there: the copy `check_workers` uploaded; None when the stored path will do."""
    path = _objective_file(objective)
    if path is None or path.is_file():
        return None
    from distributed import get_worker

    return Path(get_worker().local_directory) / path.name


def _probe(objective: str, options: dict[str, Any]) -> str | None:
    """On each Dask worker: why the objective cannot be loaded there, or None."""
    from hpo.errors import HpoError
    from hpo.objectives import load_objective

    copy = _local_copy(objective)
    if copy is not None:
        objective = f"{copy}:{objective.rpartition(':')[2]}"
    try:
        load_objective(objective, options)
    except HpoError as exc:
        return str(exc)
    return None


def run_task(
    name: str,
    storage: str,
    objective: str,
    deadline: float | None,
    stop_name: str,
    threads: dict[str, int],
) -> TaskResult:
    """One task: run `hpo worker NAME` here until it ends, or until the driver sets the
    stop event (or lets go of this task), then stop it as Ctrl-C would."""
    from distributed import Event, get_worker

    worker = get_worker()
    stop = Event(stop_name)
    if stop.is_set():
        return TaskResult(worker.address, 0, ("stopped before it started",), stopped=True)
    process = subprocess.Popen(
        _worker_command(name, objective, deadline),
        env=_worker_environment(storage, worker, threads),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,  # a Ctrl-C meant for the Dask worker is not its to take
    )
    messages: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    reader = threading.Thread(target=_relay, args=(process, messages), daemon=True)
    reader.start()
    key = worker.get_current_task()
    stopped = False
    try:
        while process.poll() is None:
            if stop.wait(POLL_INTERVAL_S) or _let_go(worker, key):
                stopped = True
                break
    finally:  # told to stop, or the scheduler unreachable: not left running on its own
        if process.poll() is None:
            _terminate(process)
    process.wait()
    reader.join(timeout=5.0)
    if stopped and process.returncode != 0:
        _reap(name, storage)
    return TaskResult(worker.address, process.returncode, tuple(messages), stopped)


def _reap(name: str, storage: str) -> None:
    """A worker stopped in the instant between claiming a trial and running it leaves
    that trial RUNNING: reap it now (its process is gone from this machine, so it is
    lost at once and its point queued again) rather than when the study next runs."""
    from hpo.catalog import load_study

    try:
        study = load_study(name, storage)
        try:
            study.reap_lost_trials()
        finally:
            study.storage.close()
    except Exception as exc:  # noqa: BLE001 - the next run of the study reaps it anyway
        log.warning("could not check study %s for a trial left running: %s", name, exc)


def _worker_command(name: str, objective: str, deadline: float | None) -> list[str]:
    command = [sys.executable, "-m", "hpo", "worker", name, "--quiet"]
    if deadline is not None:
        command += ["--timeout", repr(max(deadline - time.time(), 1e-3))]
    copy = _local_copy(objective)
    if copy is not None:
        command += ["--objective-file", str(copy)]
    return command


def _worker_environment(storage: str, worker: Any, threads: dict[str, int]) -> dict[str, str]:
    """The storage URL through the environment (not the command line, where `ps` shows
    it); the Dask worker as the parent to watch; the uploaded files importable; BLAS
    threads: this machine's cores shared between its Dask worker threads (Dask's
    own default is one thread per worker process)."""
    host = urlsplit(worker.address).hostname or worker.address
    sharing = threads.get(host, worker.state.nthreads)
    path = os.pathsep.join(p for p in (worker.local_directory, os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "HPO_STORAGE": storage,
        PARENT_VARIABLE: str(os.getpid()),
        "PYTHONPATH": path,
        **thread_limits(sharing, keep_set=False),
    }


def _relay(process: subprocess.Popen[str], messages: collections.deque[str]) -> None:
    """Pass the worker's messages on to the Dask worker's log, keeping the last ones."""
    assert process.stderr is not None
    for line in process.stderr:
        messages.append(line.rstrip("\n"))
        sys.stderr.write(line)


def _let_go(worker: Any, key: Any) -> bool:
    """Whether the scheduler no longer wants this task: the driver cancelled it or is
    gone (its client closed, or killed). Dask's internal task state: a Dask without
    it keeps the task running to the budget (the stop event still works)."""
    try:
        state = worker.state.tasks.get(key)
    except AttributeError:
        return False
    return state is None or state.state in ("cancelled", "released", "forgotten")


def _terminate(process: subprocess.Popen[str]) -> None:
    """SIGTERM (taken as Ctrl-C: the running trial is stored as interrupted), then, if
    storing takes too long, SIGKILL (its trial is reaped as lost)."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
