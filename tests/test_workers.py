"""Many workers on one study: real processes, real databases, real kills.

Load: 8 worker processes share a 1,000-trial budget. Faults: workers are
killed with SIGKILL mid-trial, the PostgreSQL server drops every
connection, a locked SQLite file refuses a result. After each, the study
must hold exactly its budget, numbered without gaps, nothing evaluated
twice, no completed trial lost.
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

import hpo
from hpo.connection import check_local_disk, filesystem_type
from hpo.errors import StorageError, TransientStorageError
from hpo.records import TrialState
from hpo.storage import Storage
from tests.conftest import default_sigint, drop_hpo_tables, server_url

OBJECTIVE = '''
import os, time

def fast(trial):
    """Logs each evaluation (one line, appended atomically), then sleeps a little."""
    with open(os.environ["HPO_TEST_EVAL_LOG"], "a") as log:
        log.write(f"{trial.number} {os.getpid()}\\n")
    time.sleep(float(os.environ.get("HPO_TEST_SLEEP", "0")))
    return (trial.params["x"] - 0.3) ** 2
'''
SPACE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]


@pytest.fixture
def objective(tmp_path, monkeypatch) -> str:
    """A user objective in a file; its evaluation log; recovery files kept in tmp_path."""
    (tmp_path / "objective.py").write_text(OBJECTIVE)
    monkeypatch.setenv("HPO_TEST_EVAL_LOG", str(tmp_path / "evaluations.log"))
    monkeypatch.setenv("HPO_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    return f"{tmp_path / 'objective.py'}:fast"


def evaluations(tmp_path: Path) -> Counter[int]:
    """How many times each trial number was evaluated."""
    path = tmp_path / "evaluations.log"
    lines = path.read_text().split("\n") if path.exists() else []
    return Counter(int(line.split()[0]) for line in lines if line)


def worker(name: str, url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", "worker", name, "--quiet", "--storage", url, *args],
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_exact_budget(study: hpo.Study, budget: int) -> None:
    """Exactly `budget` trials count; numbers 0..n-1; only lost ones failed, re-queued."""
    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))
    assert study.n_counted == budget
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for trial in trials:
        if trial.state == TrialState.FAIL:
            assert trial.error.startswith(("worker lost", "interrupted")), trial.error


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hpo.db'}"
    found = server_url("postgres")
    drop_hpo_tables(found)
    return found


# -- load -------------------------------------------------------------------------------


def test_eight_workers_share_a_budget_of_1000_trials(url, objective, tmp_path):
    study = hpo.create_study("load", url, SPACE, objective=objective, seed=1, budget=1000)
    for x in (0.1, 0.2, 0.3, 0.4, 0.5):
        study.enqueue({"x": x})  # taken by exactly one worker each
    (tmp_path / "load.toml").write_text("")  # (the workers read the stored study)
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "resume", "load", "--workers", "8", "--storage", url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "locked" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "1000 trials of a budget of 1000 (1000 complete)" in done.stdout
    trials = study.trials
    assert len(trials) == 1000 and {t.state for t in trials} == {TrialState.COMPLETE}
    assert_exact_budget(study, 1000)
    assert evaluations(tmp_path) == Counter(range(1000))  # each trial evaluated once
    assert [t.params["x"] for t in trials[:5]] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert len({t.worker for t in trials}) > 1
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_run_with_workers_from_a_study_file(objective, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.toml").write_text(
        f'name = "filed"\nobjective = "{objective}"\ntrials = 40\nseed = 3\n'
        '[[space]]\nname = "x"\ntype = "float"\nlow = 0.0\nhigh = 1.0\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "run", "study.toml", "--workers", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "40 trials of a budget of 40 (40 complete)" in done.stdout
    assert done.stdout.count(" COMPLETE ") == 40  # each trial reported once by the parent
    assert_exact_budget(hpo.load_study("filed", "hpo.db"), 40)


# -- faults --------------------------------------------------------------------------


def test_killed_workers_lose_no_completed_trial_and_the_budget_is_met(
    url, objective, tmp_path, monkeypatch
):
    monkeypatch.setenv("HPO_TEST_SLEEP", "0.03")
    budget, rng = 150, random.Random(7)
    study = hpo.create_study("kills", url, SPACE, objective=objective, seed=2, budget=budget)
    workers = [worker("kills", url) for _ in range(4)]
    completed: dict[int, float] = {}
    killed = 0
    while killed < 6 and study.n_counted < budget - 20:
        time.sleep(rng.uniform(0.3, 0.8))
        trials = study.trials
        for trial in trials:  # what has completed so far must stay so
            if trial.state == TrialState.COMPLETE:
                completed[trial.number] = trial.value
        busy = {int(t.worker.rpartition(":")[2]) for t in trials if t.state == TrialState.RUNNING}
        candidates = [w for w in workers if w.poll() is None and w.pid in busy]
        if not candidates:
            continue
        victim = rng.choice(candidates)  # in the middle of a trial
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed += 1
        workers.append(worker("kills", url))  # a replacement joins
    for process in workers:
        if process.returncode is None:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
    assert killed >= 3
    trials = study.trials
    for number, value in completed.items():
        assert (trials[number].state, trials[number].value) == (TrialState.COMPLETE, value)
    assert_exact_budget(study, budget)
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert lost, "no worker was killed mid-trial"
    for trial in lost:
        if "requeued_as" in trial.system_attrs:  # re-queued: its retry ran the same point
            retry = trials[trial.system_attrs["requeued_as"]]
            assert retry.params == trial.params
            assert retry.system_attrs["retry_of"] == trial.number
        else:  # a retry killed in its turn stays failed: a point is re-queued once
            assert "retry_of" in trial.system_attrs
    # nothing ran twice except the points of killed trials
    twice = {n for n, count in evaluations(tmp_path).items() if count > 1}
    assert not twice
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_workers_reconnect_when_postgres_drops_their_connections(objective, monkeypatch):
    url = server_url("postgres")
    drop_hpo_tables(url)
    monkeypatch.setenv("HPO_TEST_SLEEP", "0.01")
    budget = 300
    study = hpo.create_study("drops", url, SPACE, objective=objective, seed=4, budget=budget)
    workers = [worker("drops", url) for _ in range(4)]
    admin = sa.create_engine(url)
    terminated = 0
    try:
        while study.n_counted < budget - 50 and terminated < 400:
            time.sleep(0.3)
            with admin.connect() as conn:
                terminated += len(
                    conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "datname = current_database() AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend'"
                    ).all()
                )
    finally:
        admin.dispose()
    outputs = [process.communicate(timeout=120)[1] for process in workers]
    failed = [out for process, out in zip(workers, outputs, strict=True) if process.returncode]
    assert not failed, "\n".join(line for line in failed[0].splitlines() if "hpo" in line)[-6000:]
    assert terminated >= 4
    study.storage.close()
    study = hpo.load_study("drops", url)
    not_complete = [
        (t.number, t.state, t.error) for t in study.trials if t.state != TrialState.COMPLETE
    ]
    assert not not_complete
    assert_exact_budget(study, budget)


def test_ctrl_c_stops_every_worker_and_resume_finishes(objective, tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_TEST_SLEEP", "1.0")
    db = tmp_path / "hpo.db"
    hpo.create_study("stop", str(db), SPACE, objective=objective, seed=5, budget=100)
    parent = subprocess.Popen(
        [sys.executable, "-m", "hpo", "resume", "stop", "--workers", "3", "--storage", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    while len(evaluations(tmp_path)) < 4:  # every worker is at work
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.02)
    # Ctrl-C just after an evaluation starts, so that at least that trial is interrupted
    # in its objective (between two trials, every worker could be asking or telling)
    started = len(evaluations(tmp_path))
    while len(evaluations(tmp_path)) == started:
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.01)
    os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    _, stderr = parent.communicate(timeout=60)
    assert parent.returncode == 130, stderr
    assert "continue with: hpo resume stop" in stderr
    study = hpo.load_study("stop", str(db))
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert interrupted and all("interrupted" in t.error for t in interrupted)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    monkeypatch.setenv("HPO_TEST_SLEEP", "0")
    hpo.resume("stop", str(db))
    assert_exact_budget(hpo.load_study("stop", str(db)), 100)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux's /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # it just ended
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be read


def test_workers_stop_when_their_parent_is_killed(objective, tmp_path, monkeypatch):
    """kill -9 of `hpo run --workers N` must not leave N workers running on their own:
    each notices, stores its trial as interrupted, and ends."""
    monkeypatch.setenv("HPO_TEST_SLEEP", "0.2")
    db = tmp_path / "hpo.db"
    hpo.create_study("orphans", str(db), SPACE, objective=objective, seed=5, budget=500)
    parent = subprocess.Popen(
        [sys.executable, "-m", "hpo", "resume", "orphans", "--workers", "2", "--storage", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while len(evaluations(tmp_path)) < 4:  # both workers are at work
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    workers = _children(parent.pid)
    assert len(workers) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers outlived their parent"
        time.sleep(0.1)
    study = hpo.load_study("orphans", str(db))
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert interrupted and all("interrupted" in t.error for t in interrupted)
    assert all("requeued_as" in t.system_attrs for t in interrupted)  # its point runs again
    waiting = [t.params for t in study.trials if t.state == TrialState.WAITING]
    assert waiting and all(params in [t.params for t in interrupted] for params in waiting)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.4])
def test_ctrl_c_while_the_workers_start_prints_no_traceback(objective, tmp_path, delay):
    """Ctrl-C soon after `hpo run --workers N` started its workers, some of them still
    loading: one clean stop, no traceback, nothing left running."""
    db = tmp_path / "hpo.db"
    hpo.create_study("early", str(db), SPACE, objective=objective, seed=5, budget=50)
    parent = subprocess.Popen(
        [sys.executable, "-m", "hpo", "resume", "early", "--workers", "3", "--storage", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    while len(_children(parent.pid)) < 3 and parent.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(delay)
    os.killpg(parent.pid, signal.SIGINT)  # what Ctrl-C does: the terminal's process group
    _, stderr = parent.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert parent.returncode in (0, 130), stderr
    study = hpo.load_study("early", str(db))
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection holding SQLite's write lock for `seconds`."""
    ready = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        ready.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    return thread


def test_a_transient_lock_is_retried(tmp_path, caplog):
    db = tmp_path / "hpo.db"
    store = Storage(str(db), busy_timeout=0.05, retry_seconds=30)
    study = hpo.create_study("busy", store, SPACE, seed=0)
    holder = _hold_write_lock(db, 0.6)
    with caplog.at_level(logging.WARNING, logger="hpo"):
        study.optimize(lambda trial: trial.params["x"], n_trials=2)
    holder.join()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert "database is locked; retrying in" in caplog.text


def test_a_result_that_cannot_be_stored_is_kept_and_stored_on_the_next_start(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("HPO_RECOVERY_DIR", str(tmp_path / "recovery"))
    db = tmp_path / "hpo.db"
    store = Storage(str(db), busy_timeout=0.05, retry_seconds=0.3)
    study = hpo.create_study("outage", store, SPACE, seed=0)
    holders = []

    def objective(trial):
        holders.append(_hold_write_lock(db, 2.0))  # the database goes away meanwhile
        return 0.25

    with (
        pytest.raises(TransientStorageError, match="database is locked"),
        caplog.at_level(logging.ERROR, logger="hpo"),
    ):
        study.optimize(objective, n_trials=1)
    assert "could not store the result of trial 0" in caplog.text
    assert len(list((tmp_path / "recovery").glob("*.json"))) == 1
    holders[0].join()
    assert study.trials[0].state == TrialState.RUNNING  # the database never saw the end
    again = hpo.load_study("outage", str(db))
    with caplog.at_level(logging.WARNING, logger="hpo"):
        again.optimize(lambda trial: 1.0, n_trials=1)
    assert "stored the COMPLETE result of trial 0" in caplog.text
    assert [(t.state, t.value) for t in again.trials] == [
        (TrialState.COMPLETE, 0.25),
        (TrialState.COMPLETE, 1.0),
    ]
    assert not list((tmp_path / "recovery").glob("*.json"))


# -- refusals --------------------------------------------------------------------------


MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /mnt/shared nfs4 rw,relatime 0 0
/dev/sdb1 /mnt/shared/local\\040disk ext4 rw 0 0
//nas/share /mnt/nas cifs rw 0 0
"""


def test_filesystem_type_takes_the_longest_mount_point():
    assert filesystem_type("/home/me", MOUNTS) == "ext4"
    assert filesystem_type("/mnt/shared/project", MOUNTS) == "nfs4"
    assert filesystem_type("/mnt/shared/local disk/x", MOUNTS) == "ext4"
    assert filesystem_type("/mnt/sharedother", MOUNTS) == "ext4"


@pytest.mark.parametrize("path", ["/mnt/shared/project/hpo.db", "/mnt/nas/hpo.db"])
def test_sqlite_on_a_network_filesystem_is_refused(path):
    with pytest.raises(StorageError, match=r"network filesystem \((nfs4|cifs)\).*PostgreSQL"):
        check_local_disk(path, MOUNTS)
    check_local_disk("/home/me/hpo.db", MOUNTS)


def test_workers_need_a_database_other_processes_can_open(objective, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.toml").write_text(
        f'name = "mem"\nobjective = "{objective}"\ntrials = 4\n'
        '[[space]]\nname = "x"\ntype = "float"\nlow = 0.0\nhigh = 1.0\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpo",
            "run",
            "study.toml",
            "--workers",
            "2",
            "--storage",
            "sqlite://",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "hpo: error: --workers 2 needs the storage as a URL or "
        "file path that worker processes can open, not an "
        "in-memory database"
    )
    missing = subprocess.run(
        [sys.executable, "-m", "hpo", "worker", "nope", "--storage", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no hpo database at" in missing.stderr


def test_trials_state_running_shows_each_heartbeat_age(tmp_path):
    db = str(tmp_path / "hpo.db")
    study = hpo.create_study("hb", db, SPACE, seed=0)
    trial = study.storage.create_trial(
        study.info.study_id, TrialState.RUNNING, {"x": 0.5}, "elsewhere:4242"
    )
    with study.storage._write() as conn:  # a heartbeat 42 s old, as a slow worker leaves it
        from hpo.schema import trials_table

        conn.execute(
            trials_table.update()
            .where(trials_table.c.trial_id == trial.trial_id)
            .values(heartbeat_at=time.time() - 42)
        )
    started = time.time()
    shown = subprocess.run(
        [sys.executable, "-m", "hpo", "trials", "hb", "--state", "running", "--storage", db],
        capture_output=True,
        text=True,
    )
    took = time.time() - started  # (a loaded machine starts the command slowly)
    assert shown.returncode == 0, shown.stderr
    assert "RUNNING" in shown.stdout
    age = re.search(r"heartbeat (\d+)s ago \(elsewhere:4242\)", shown.stdout)
    assert age is not None, shown.stdout
    assert 42 <= int(age.group(1)) <= 43 + took, shown.stdout


def test_local_workers_share_the_cores_between_their_blas_threads(monkeypatch):
    from hpo.workers import _THREAD_VARIABLES, thread_limits

    for name in _THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert thread_limits(4) == dict.fromkeys(_THREAD_VARIABLES, "2")
    assert thread_limits(16) == dict.fromkeys(_THREAD_VARIABLES, "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert thread_limits(4) == {}


def test_when_every_worker_dies_the_run_says_so(objective, tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_TEST_SLEEP", "0.5")
    db = tmp_path / "hpo.db"
    hpo.create_study("dies", str(db), SPACE, objective=objective, seed=6, budget=40)
    parent = subprocess.Popen(
        [sys.executable, "-m", "hpo", "resume", "dies", "--workers", "2", "--storage", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children: list[int] = []
    for _ in range(100):  # the workers, once they have started trials
        time.sleep(0.1)
        children = [
            int(pid)
            for pid in subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(parent.pid)], capture_output=True, text=True
            ).stdout.split()
        ]
        if len(children) == 2 and evaluations(tmp_path):
            break
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    _, stderr = parent.communicate(timeout=60)
    assert parent.returncode == 2, stderr
    assert "2 of 2 workers failed (exit codes -9, -9" in stderr


def test_a_kept_result_is_taken_by_one_worker_only(tmp_path, monkeypatch):
    from hpo import recovery

    monkeypatch.setenv("HPO_RECOVERY_DIR", str(tmp_path))
    outcome = recovery.Outcome(7, 3, "COMPLETE", {"x": 0.5}, 100.0, 0.25)
    recovery.save("sqlite:///a.db", "s", outcome)
    recovery.save("sqlite:///a.db", "other", outcome)
    first = recovery.claim("sqlite:///a.db", "s")
    assert [o for _, o in first] == [outcome]
    assert recovery.claim("sqlite:///a.db", "s") == []  # a second worker finds it taken


def test_a_kept_result_whose_study_was_deleted_is_set_aside(tmp_path, monkeypatch, caplog):
    from hpo import recovery

    monkeypatch.setenv("HPO_RECOVERY_DIR", str(tmp_path / "recovery"))
    db = str(tmp_path / "hpo.db")
    study = hpo.create_study("again", db, SPACE, seed=0)
    recovery.save(
        study.storage.identity,
        "again",
        recovery.Outcome(9999, 5, "COMPLETE", {"x": 0.5}, 100.0, 0.25),
    )
    with caplog.at_level(logging.WARNING, logger="hpo"):
        study.optimize(lambda trial: 1.0, n_trials=1)
    assert "is no longer in the study; the result is left in" in caplog.text
    assert len(list((tmp_path / "recovery").glob("*.orphaned"))) == 1
    assert [t.value for t in study.trials] == [1.0]
