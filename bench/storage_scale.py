"""Storage at scale: the cost of a trial in a study of 100,000 trials against 1,000.

For each storage (an SQLite file; PostgreSQL with --postgres-url or
HPO_BENCH_POSTGRES_URL) the script fills a study with 100,000 finished
trials in bulk (`Storage.add_trials`), then measures:

- the cost of a trial: `--trials` more trials of a trivial objective
  (random sampler, three floats), with the study's budget set, run by 1 and
  by 4 `hpo worker` processes, on top of the 100,000 and, in the same round,
  on top of a fresh study of 1,000. The workers start, load the study and
  wait at a start line (a write lock the script holds until they are all
  idle); the cost is read off the stored trials: the time while every worker
  was running (from the last worker's first trial start to the first
  worker's last trial end) per trial finished in it, so process start-up and
  loading are left out;
- loading the study: `hpo.load_study(NAME, URL).trials`, in a fresh process
  that has imported hpo.study (wall and CPU time);
- `hpo trials NAME --limit 20` (sorted by number and by value) as a whole
  command, beside `hpo --version` (the CLI's start-up) and `python -c
  "import sqlalchemy"` (the floor of any command that opens a database) in
  the same round; wall and CPU time (its rusage): on a loaded machine the
  CPU time is what the command itself costs;
- `Study.trials_page(limit=20, ...)` in-process: the first page by number,
  by value, longest first, and a deep page (offset 50,000) of COMPLETE
  trials by value.

Targets (issue 17): the cost at 100,000 within 1.2x of the cost at 1,000
(medians of the run-by-run ratios); loading <= 2 s; `hpo trials --limit 20`
<= 0.5 s. The exit status is 1 when one is missed. The studies it creates
are deleted at the end (PostgreSQL: only those; nothing else is dropped).
Give PostgreSQL a database of its own: while its workers start, the script
holds a lock on the trials table that stops every other writer there.

    python bench/storage_scale.py                               # 3 runs
    python bench/storage_scale.py --runs 1 --trials 500 --postgres-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import hpo
from hpo.records import FrozenTrial, TrialState
from hpo.storage import Storage

SPACE = [{"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0} for i in range(3)]
SMALL, LARGE = 1_000, 100_000
RATIO_TARGET, LOAD_TARGET_S, LIST_TARGET_S = 1.2, 2.0, 0.5
WORKER_COUNTS = (1, 4)


def trivial(trial: hpo.Trial) -> float:
    return sum(trial.params.values())


def history(n: int, seed: int) -> list[FrozenTrial]:
    """n finished trials as a random-sampler study would have stored them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    points = rng.random((n, 3))  # (n, 3)
    start = time.time() - 3600.0
    return [
        FrozenTrial(
            trial_id=-1,
            number=-1,
            state=TrialState.COMPLETE,
            params={f"x{j}": float(points[i, j]) for j in range(3)},
            value=float(points[i].sum()),
            started_at=start + i * 0.01,
            finished_at=start + i * 0.01 + 0.001,
            heartbeat_at=start + i * 0.01,
            worker="bench:0",
            system_attrs={"sample": i, "ask_s": 1e-5},
        )
        for i in range(n)
    ]


def filled_study(url: str, size: int, tag: str) -> str:
    """A new study of `size` finished trials; its name."""
    name = f"scale-{tag}-{size}-{time.time_ns()}"
    with Storage(url) as store:
        study = hpo.create_study(
            name,
            store,
            SPACE,
            sampler="random",
            seed=0,
            objective=f"{Path(__file__).resolve()}:trivial",
        )
        store.add_trials(study.info.study_id, history(size, seed=size))
    return name


def cost_per_trial(url: str, name: str, workers: int, trials: int) -> float:
    """Seconds per trial for `trials` more trials of study `name` run by `workers`."""
    with Storage(url) as store:
        study = hpo.load_study(name, store)
        before = len(study.trials)
        study.set_budget(before + trials)
        command = [sys.executable, "-m", "hpo", "worker", name, "--quiet", "--storage", url]
        with writes_held(url):
            processes = [subprocess.Popen(command) for _ in range(workers)]
            wait_until_idle(processes)
        codes = [process.wait() for process in processes]
        if any(codes):
            raise RuntimeError(f"a worker failed on {name}: exit codes {codes}")
        spans: dict[str, list[tuple[float, float]]] = {}
        for trial in store.load_trials(study.info.study_id, after=before - 1):
            spans.setdefault(str(trial.worker), []).append((trial.started_at, trial.finished_at))
    first = max(min(s for s, _ in runs) for runs in spans.values())
    last = min(max(e for _, e in runs) for runs in spans.values())
    ended = sum(first < e <= last for runs in spans.values() for _, e in runs)
    if ended < trials // 4:
        raise RuntimeError(f"the {workers} workers overlapped for {ended} trials only")
    return (last - first) / ended


@contextmanager
def writes_held(url: str) -> Iterator[None]:
    """Hold a write lock on hpo's trials table: a start line for the workers, which
    load the study meanwhile (reads go on) and wait in their first write."""
    if url.startswith("sqlite:///"):
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        lite.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            lite.execute("ROLLBACK")
            lite.close()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE hpo_trials IN EXCLUSIVE MODE")
            yield
    finally:
        engine.dispose()


def wait_until_idle(processes: list[subprocess.Popen[bytes]], quiet_s: float = 1.0) -> None:
    """Until no process has used CPU for `quiet_s`: all started, loaded the study, and
    wait at the start line (Linux: CPU times from /proc)."""
    last, quiet_since = None, time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        time.sleep(0.1)
        used = [cpu_ticks(process.pid) for process in processes]
        if used != last:
            last, quiet_since = used, time.monotonic()


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def subprocess_seconds(command: list[str]) -> tuple[float, float]:
    """The command's wall time and CPU time (user + system, from its rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load_seconds(url: str, name: str) -> tuple[float, float]:
    """`hpo.load_study(name, url).trials` in a fresh process, once the modules it
    needs are imported: wall time and CPU time."""
    code = (
        "import sys, time, hpo.study\n"
        "wall, cpu = time.perf_counter(), time.process_time()\n"
        "n = len(hpo.load_study(sys.argv[1], sys.argv[2]).trials)\n"
        "print(time.perf_counter() - wall, time.process_time() - cpu, n)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, name, url], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


PAGES: dict[str, dict[str, Any]] = {  # Study.trials_page arguments, each with limit=20
    "first page by number": {},
    "first page by value": {"sort": "value"},
    "longest first": {"sort": "duration", "descending": True},
    "COMPLETE by value, offset 50,000": {"states": ["COMPLETE"], "sort": "value", "offset": 50_000},
}


def page_seconds(url: str, name: str) -> dict[str, float]:
    """`Study.trials_page(limit=20, ...)` in this process, on a study loaded once."""
    with Storage(url) as store:
        study = hpo.load_study(name, store)
        seconds = {}
        for what, page in PAGES.items():
            start = time.perf_counter()
            study.trials_page(limit=20, **page)
            seconds[what] = time.perf_counter() - start
    return seconds


def hpo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpo", *args]


def measure_storage(url: str, runs: int, trials: int) -> dict[str, list[float]]:
    """Every figure of one storage, run by run: name -> values."""
    figures: dict[str, list[float]] = {}
    large = filled_study(url, LARGE, "large")
    created = [large]
    listing = ["trials", large, "--storage", url, "--limit", "20"]
    try:
        for run in range(runs):
            for workers in WORKER_COUNTS:
                small = filled_study(url, SMALL, "small")
                created.append(small)
                pair = [(SMALL, small), (LARGE, large)]
                for size, name in pair if run % 2 == 0 else pair[::-1]:  # (drift cancels)
                    cost = cost_per_trial(url, name, workers, trials) * 1000
                    figures.setdefault(f"ms per trial, {workers} worker(s), {size:,}", []).append(
                        cost
                    )
            timed = {
                "load 100k": load_seconds(url, large),
                "hpo trials --limit 20": subprocess_seconds(hpo_command(*listing)),
                "hpo trials --limit 20 --sort value": subprocess_seconds(
                    hpo_command(*listing, "--sort", "value")
                ),
                "hpo --version": subprocess_seconds(hpo_command("--version")),
                "python -c 'import sqlalchemy'": subprocess_seconds(
                    [sys.executable, "-c", "import sqlalchemy"]
                ),
            }
            for what, (wall, cpu) in timed.items():
                figures.setdefault(f"{what} (s)", []).append(wall)
                figures.setdefault(f"{what} (s CPU)", []).append(cpu)
            for what, seconds in page_seconds(url, large).items():
                figures.setdefault(f"trials_page: {what} (s)", []).append(seconds)
            print(f"  round {run + 1}/{runs} done", file=sys.stderr)
    finally:
        for name in created:
            hpo.delete_study(name, url)
    return figures


def report(backend: str, figures: dict[str, list[float]]) -> list[str]:
    """Print one storage's figures; the targets it missed."""
    runs = len(next(iter(figures.values())))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{backend}: median [min - max] of {runs} runs (load average now {load})")
    for what, values in figures.items():
        low, high = min(values), max(values)
        print(f"  {what:50s} {statistics.median(values):8.3f}  [{low:.3f} - {high:.3f}]")
    missed = []
    for workers in WORKER_COUNTS:
        small = figures[f"ms per trial, {workers} worker(s), {SMALL:,}"]
        large = figures[f"ms per trial, {workers} worker(s), {LARGE:,}"]
        ratio = statistics.median(b / a for a, b in zip(small, large, strict=True))
        verdict = "meets" if ratio <= RATIO_TARGET else "MISSES"
        print(f"  {workers} worker(s): 100k / 1k, run by run: {ratio:.2f}x ({verdict} <= 1.2x)")
        if ratio > RATIO_TARGET:
            missed.append(f"{backend}, {workers} worker(s): {ratio:.2f}x")
    loading = statistics.median(figures["load 100k (s)"])
    if loading > LOAD_TARGET_S:
        missed.append(f"{backend}: loading took {loading:.2f} s")
    listing = statistics.median(figures["hpo trials --limit 20 (s)"])
    if listing > LIST_TARGET_S:
        missed.append(f"{backend}: hpo trials --limit 20 took {listing:.2f} s")
    return missed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=1000, help="trials per measurement")
    parser.add_argument("--postgres-url", default=os.environ.get("HPO_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("hpo").setLevel(logging.WARNING)
    missed = []
    with tempfile.TemporaryDirectory() as folder:
        storages = {} if args.no_sqlite else {"SQLite file": f"sqlite:///{folder}/scale.db"}
        if args.postgres_url:
            storages["PostgreSQL"] = args.postgres_url
        for backend, url in storages.items():
            print(f"{backend}: filling a study of {LARGE:,} trials ...", file=sys.stderr)
            missed += report(backend, measure_storage(url, args.runs, args.trials))
    if missed:
        print("\nMISSED: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
