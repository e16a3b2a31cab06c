"""A study's workers on a Dask cluster: a real `dask scheduler` and two real `dask
worker` processes on 127.0.0.1, studies on PostgreSQL and MariaDB.

After each run the study must hold exactly its budget, numbered without gaps,
with no point evaluated twice; a Dask worker killed mid-trial, a Ctrl-C of
the driver, an objective the workers cannot import and a scheduler nobody
answers at must each end as `hpo run --workers N` would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import hpo
from hpo.records import TrialState
from tests.conftest import default_sigint, drop_hpo_tables, server_url

distributed = pytest.importorskip("distributed", reason="pip install -e '.[dask]'")

pytestmark = pytest.mark.slow

OBJECTIVE = '''
import os, time

def sleepy(trial, log, sleep=0.0):
    """Logs each evaluation (one line, appended atomically) and its BLAS threads."""
    with open(log, "a") as out:
        out.write(f"{trial.number} {os.getpid()}\\n")
    trial.set_user_attr("blas_threads", os.environ.get("OMP_NUM_THREADS"))
    time.sleep(sleep)
    return (trial.params["x"] - 0.3) ** 2
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `dask scheduler` and two `dask worker` processes (one process, one thread
    each, under their nannies, which restart a killed worker)."""
    folder = tmp_path_factory.mktemp("dask")
    port = str(_free_port())
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    options = ["--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder)]
    processes = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                [*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", *options],
                cwd=folder,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C of a driver is not theirs
            )
        )
    try:
        yield address
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)  # each its own group: worker and nanny
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def cluster(scheduler: str) -> str:
    """The cluster, with both workers up (a test before may have killed one)."""
    with distributed.Client(scheduler, timeout=30, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
    return scheduler


@pytest.fixture(params=["postgres", "mysql"])
def url(request: pytest.FixtureRequest) -> str:
    found = server_url(request.param)
    drop_hpo_tables(found)
    return found


@pytest.fixture
def postgres() -> str:
    found = server_url("postgres")
    drop_hpo_tables(found)
    return found


def _study_file(tmp_path: Path, name: str, trials: int, sleep: float) -> Path:
    (tmp_path / "objective.py").write_text(OBJECTIVE)
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\ntrials = {trials}\nseed = 1\nsampler = "random"\n'
        f'[objective]\nname = "objective.py:sleepy"\nlog = "{tmp_path / "evaluations.log"}"\n'
        f"sleep = {sleep}\n"
        '[[space]]\nname = "x"\ntype = "float"\nlow = 0.0\nhigh = 1.0\n'
    )
    return path


def _hpo(*args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _evaluations(tmp_path: Path) -> Counter[int]:
    path = tmp_path / "evaluations.log"
    lines = path.read_text().split("\n") if path.exists() else []
    return Counter(int(line.split()[0]) for line in lines if line)


def _assert_exact_budget(study: hpo.Study, budget: int, tmp_path: Path) -> None:
    """Exactly `budget` trials count, numbered 0..n-1, none left running or queued; a
    failure is an interrupted or lost trial whose point ran again; nothing ran twice."""
    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))
    assert study.n_counted == budget
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for trial in trials:
        if trial.state == TrialState.FAIL:
            assert trial.error.startswith(("worker lost", "interrupted")), trial.error
            retry = trials[trial.system_attrs["requeued_as"]]
            assert retry.params == trial.params and retry.state == TrialState.COMPLETE
    assert max(_evaluations(tmp_path).values()) == 1  # a retry is a trial of its own
    complete = [t.params["x"] for t in trials if t.state == TrialState.COMPLETE]
    assert len(set(complete)) == len(complete)


def test_cluster_workers_share_the_budget_exactly(cluster, url, tmp_path):
    path = _study_file(tmp_path, "shared", trials=24, sleep=0.02)
    if url.startswith("postgresql"):  # the command
        done = _hpo("run", str(path), "--cluster", cluster, "--workers", "2", "--storage", url)
        out, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
        assert "24 trials of a budget of 24 (24 complete)" in out
        assert out.count(" COMPLETE ") == 24  # each trial reported once by the driver
    else:  # the Python API, with the Dask client's own object
        with distributed.Client(cluster, set_as_default=False) as client:
            hpo.run(path, storage=url, workers=2, cluster=client)
    study = hpo.load_study("shared", url)
    _assert_exact_budget(study, 24, tmp_path)
    assert len({t.worker for t in study.trials}) == 2  # both Dask workers took part
    # BLAS threads: this machine's cores shared by the cluster's two worker threads
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert {t.user_attrs["blas_threads"] for t in study.trials} == {share}


def _running_trial(study: hpo.Study, deadline: float) -> hpo.trial.FrozenTrial:
    while True:
        running = [t for t in study.trials if t.state == TrialState.RUNNING]
        if running:
            return running[0]
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.05)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("lost", ["dask-worker", "machine"])
def test_a_dask_worker_killed_mid_trial_costs_no_trial(cluster, postgres, tmp_path, lost):
    """SIGKILL of the Dask worker process running a trial: its `hpo worker` stores the
    trial as interrupted; of both (the machine is gone): the trial is reaped as lost
    (at once here: its process is gone from this machine; elsewhere after the
    heartbeat's grace period). Either way its point runs again and the budget holds."""
    # (trials long enough that the killed one is still running when its hpo worker
    # notices, which takes up to half a second)
    sleep = 1.5 if lost == "dask-worker" else 0.5
    path = _study_file(tmp_path, f"kill-{lost}", trials=4, sleep=sleep)
    driver = _hpo("run", str(path), "--cluster", cluster, "--workers", "2", "--storage", postgres)
    assert _wait_for_study(path, postgres)
    study = hpo.load_study(f"kill-{lost}", postgres)
    victim = _running_trial(study, time.monotonic() + 60)
    child = int(victim.worker.rpartition(":")[2])
    dask_worker = _parent(child)
    if lost == "machine":
        os.kill(child, signal.SIGKILL)
    os.kill(dask_worker, signal.SIGKILL)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, err
    study = hpo.load_study(f"kill-{lost}", postgres)
    _assert_exact_budget(study, 4, tmp_path)
    failed = study.trials[victim.number]
    assert failed.state == TrialState.FAIL
    expected = "interrupted" if lost == "dask-worker" else "worker lost"
    assert failed.error.startswith(expected), failed.error


def _studies(url: str) -> list[str]:
    """The names of the studies in the database; none when hpo's tables are not there."""
    engine = sa.create_engine(url)
    try:
        if "hpo_studies" not in sa.inspect(engine).get_table_names():
            return []
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT name FROM hpo_studies")).scalars())
    finally:
        engine.dispose()


def _wait_for_study(path: Path, url: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.stem in _studies(url):
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_of_the_driver_stops_the_tasks_and_resume_finishes(cluster, postgres, tmp_path):
    path = _study_file(tmp_path, "stop", trials=16, sleep=0.2)
    driver = _hpo(
        "run",
        str(path),
        "--cluster",
        cluster,
        "--workers",
        "2",
        "--storage",
        postgres,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 60
    while len(_evaluations(tmp_path)) < 4:  # both workers are at work
        assert time.monotonic() < deadline and driver.poll() is None
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C does
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 130, err
    assert "continue with: hpo resume stop" in err
    study = hpo.load_study("stop", postgres)
    # (stopped in the instant between claiming a trial and running it, a worker leaves
    # it RUNNING: its task reaps it as lost at once)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.error.startswith(("interrupted", "worker lost")) for t in failed)
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert study.n_counted < 16
    resumed = _hpo("resume", "stop", "--cluster", cluster, "--storage", postgres)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    _assert_exact_budget(hpo.load_study("stop", postgres), 16, tmp_path)


def test_a_driver_killed_outright_leaves_no_task_running(cluster, postgres, tmp_path):
    """kill -9 of the driver: the scheduler drops its tasks; each stops its hpo worker,
    which stores its trial as interrupted, instead of running on to the budget."""
    path = _study_file(tmp_path, "orphans", trials=200, sleep=0.2)
    driver = _hpo("run", str(path), "--cluster", cluster, "--workers", "2", "--storage", postgres)
    deadline = time.monotonic() + 60
    while len(_evaluations(tmp_path)) < 4:  # both workers are at work
        assert time.monotonic() < deadline and driver.poll() is None
        time.sleep(0.05)
    driver.kill()
    driver.communicate()
    study = hpo.load_study("orphans", postgres)
    deadline = time.monotonic() + 60
    while [t for t in study.trials if t.state == TrialState.RUNNING]:
        assert time.monotonic() < deadline, "the tasks outlived their driver"
        time.sleep(0.2)
    evaluated = len(_evaluations(tmp_path))
    time.sleep(1.0)
    assert len(_evaluations(tmp_path)) == evaluated  # nothing runs any more
    assert study.n_counted < 200
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert all(t.error.startswith(("interrupted", "worker lost")) for t in failed)


def test_an_objective_the_workers_cannot_import_is_refused_before_writing(
    cluster, postgres, tmp_path
):
    """It imports a module found here (PYTHONPATH) but not on the Dask workers."""
    only_here = tmp_path / "only_here"
    only_here.mkdir()
    (only_here / "helper_only_here.py").write_text("SCALE = 1.0\n")
    (tmp_path / "needs_helper.py").write_text(
        "import helper_only_here\n\ndef f(trial):\n    return helper_only_here.SCALE\n"
    )
    path = tmp_path / "helper.toml"
    path.write_text(
        'name = "helper"\ntrials = 4\nobjective = "needs_helper.py:f"\n'
        '[[space]]\nname = "x"\ntype = "float"\nlow = 0.0\nhigh = 1.0\n'
    )
    environment = {**os.environ, "PYTHONPATH": str(only_here)}
    done = _hpo("run", str(path), "--cluster", cluster, "--storage", postgres, env=environment)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot load the objective" in err and "helper_only_here" in err, err
    assert "Traceback" not in err
    assert not _studies(postgres)  # nothing written


def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(postgres, tmp_path):
    path = _study_file(tmp_path, "nobody", trials=4, sleep=0.0)
    environment = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    done = _hpo("run", str(path), "--cluster", address, "--storage", postgres, env=environment)
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and "cannot reach the Dask scheduler" in err, err
    assert not _studies(postgres)


@pytest.mark.parametrize("address", ["foo://bar", "not an address", "127.0.0.1:8786x"])
def test_a_malformed_scheduler_address_is_one_line_and_the_command_ends(
    postgres, tmp_path, address
):
    path = _study_file(tmp_path, "malformed", trials=4, sleep=0.0)
    done = _hpo("run", str(path), "--cluster", address, "--storage", postgres)
    _, err = done.communicate(timeout=60)  # (it used to hang after its message)
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and "is not a Dask scheduler address" in err, err
    assert not _studies(postgres)


def test_an_sqlite_file_is_refused_for_a_remote_cluster(tmp_path):
    path = _study_file(tmp_path, "file", trials=4, sleep=0.0)
    db = tmp_path / "hpo.db"
    done = _hpo("run", str(path), "--cluster", "tcp://127.0.0.1:8786", "--storage", str(db))
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and "cannot share the SQLite file" in err, err
    assert not db.exists()


def test_cluster_local_starts_a_local_cluster_and_may_use_an_sqlite_file(tmp_path):
    path = _study_file(tmp_path, "here", trials=6, sleep=0.0)
    db = tmp_path / "hpo.db"
    done = _hpo("run", str(path), "--cluster", "local", "--workers", "2", "--storage", str(db))
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert "6 trials of a budget of 6 (6 complete)" in out
    assert "distributed" not in err  # Dask's own log says nothing
    _assert_exact_budget(hpo.load_study("here", str(db)), 6, tmp_path)


def test_compare_runs_each_study_on_the_cluster(cluster, postgres, tmp_path):
    done = _hpo(
        "compare",
        "--objective",
        "branin",
        "--samplers",
        "random,tpe",
        "--trials",
        "4",
        "--seeds",
        "1",
        "--cluster",
        cluster,
        "--workers",
        "2",
        "--storage",
        postgres,
        "--json",
    )
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    for sampler in ("random", "tpe"):
        study = hpo.load_study(f"compare-branin/branin/{sampler}/seed-0", postgres)
        assert study.n_counted == 4 and len(study.trials) == 4


def test_a_worker_loads_the_objective_file_from_a_copy_of_the_same_name(tmp_path):
    """What a task does on a machine without the file's stored path: `hpo worker
    --objective-file` the copy Dask uploaded; only a file of the same name is taken."""
    from hpo.errors import ObjectiveError

    original, copy = tmp_path / "here" / "objective.py", tmp_path / "there" / "objective.py"
    for path in (original, copy):
        path.parent.mkdir()
        path.write_text("def f(trial):\n    return trial.params['x']\n")
    db = str(tmp_path / "hpo.db")
    space = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]
    hpo.create_study("copied", db, space, objective=f"{original}:f", budget=3)
    original.unlink()
    with pytest.raises(ObjectiveError, match="not found"):
        hpo.worker("copied", db)
    other = tmp_path / "there" / "other.py"
    other.write_text(copy.read_text())
    with pytest.raises(ObjectiveError, match="must be a copy of that file, of the same name"):
        hpo.worker("copied", db, objective_file=other)
    study = hpo.worker("copied", db, objective_file=copy)
    assert study.n_counted == 3
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}
