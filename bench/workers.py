"""Trials per second with 1, 2, 4, 8 worker processes on one study.

Each measurement starts N `hpo worker` processes (python -m hpo worker) on a
fresh study and reads the rate off the stored trials: the trials finished
while all N workers were running (from the last worker's first trial start
to the first worker's last trial end), per second. Process start-up is thus
left out, for hpo and the reference alike. So that every worker is up
before the first trial starts, the script holds a write lock on the
trials table while the workers start (they wait for it in their first
write).

Objectives: `trivial` (returns at once: the storage's cost per trial) and
`sleep` (sleeps 50 ms: how the workers scale). Storages: an SQLite file and,
with --postgres-url (or HPO_BENCH_POSTGRES_URL), PostgreSQL. The reference,
measured in the same run: Optuna's RDB storage on an SQLite file, N
processes each running `study.optimize` on the trivial objective (pip
install optuna).

Targets (issue 8): with 4 workers and the 50 ms objective, at least 3.5x the
single-worker rate; with the trivial objective, at least 10x Optuna's rate
with the same number of processes on SQLite. The exit status is 1 when a
target measured is missed.

    python bench/workers.py                       # medians of 3 runs
    python bench/workers.py --runs 1 --workers 1,4 --postgres-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import sqlalchemy as sa

import hpo

SPACE = [{"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0} for i in range(3)]
SLEEP_S = 0.05
SCALING_TARGET, OPTUNA_TARGET = 3.5, 10.0
STARTUP_S = 0.5  # per worker process, on a loaded 2-core machine


def trivial(trial: hpo.Trial) -> float:
    return sum(trial.params.values())


def sleep(trial: hpo.Trial) -> float:
    time.sleep(SLEEP_S)
    return sum(trial.params.values())


def steady_rate(spans: dict[str, list[tuple[float, float]]]) -> float:
    """Trials per second while every worker was running.

    `spans`: worker -> its trials' (start, end). The window runs from the
    last worker's first start to the first worker's last end.
    """
    first = max(min(s for s, _ in trials) for trials in spans.values())
    last = min(max(e for _, e in trials) for trials in spans.values())
    if last <= first:
        raise RuntimeError("the workers did not overlap: raise the number of trials")
    ended = sum(first <= e <= last for trials in spans.values() for _, e in trials)
    return ended / (last - first)


def hpo_rate(url: str, objective: str, workers: int, trials: int) -> float:
    name = f"bench-{objective}-{workers}-{time.time_ns()}"
    study = hpo.create_study(
        name,
        url,
        SPACE,
        objective=f"{__file__}:{objective}",
        sampler="random",
        seed=0,
        budget=trials,
    )
    command = [sys.executable, "-m", "hpo", "worker", name, "--quiet", "--storage", url]
    with writes_held(url):
        processes = [subprocess.Popen(command) for _ in range(workers)]
        time.sleep(STARTUP_S * (1 + workers))
    if any(code != 0 for code in [p.wait() for p in processes]):
        raise RuntimeError(f"a worker failed on {name}")
    spans: dict[str, list[tuple[float, float]]] = {}
    for trial in study.trials:
        spans.setdefault(trial.worker, []).append((trial.started_at, trial.finished_at))
    assert sum(map(len, spans.values())) == trials
    study.storage.close()
    return steady_rate(spans)


@contextmanager
def writes_held(url: str) -> Iterator[None]:
    """Hold a write lock on hpo's trials table (a start line for the workers)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("LOCK TABLE hpo_trials IN EXCLUSIVE MODE")
            yield
    finally:
        engine.dispose()


def optuna_rate(folder: Path, workers: int, trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{folder / f'optuna-{workers}-{time.time_ns()}.db'}"
    optuna.create_study(study_name="bench", storage=url)
    command = [sys.executable, __file__, "--optuna-worker", url, str(trials // workers)]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(workers)
    ]
    outputs = [p.communicate()[0] for p in processes]
    if any(p.returncode != 0 for p in processes):
        raise RuntimeError("an Optuna worker failed")
    return steady_rate({str(i): json.loads(out) for i, out in enumerate(outputs)})


def optuna_worker(url: str, trials: int) -> None:
    """One Optuna process: run its trials, print their (start, end) times as JSON."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name="bench", storage=url, sampler=optuna.samplers.RandomSampler()
    )
    spans = []

    def objective(trial: optuna.Trial) -> float:
        return sum(trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(3))

    def keep(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        spans.append((trial.datetime_start.timestamp(), trial.datetime_complete.timestamp()))

    study.optimize(objective, n_trials=trials, callbacks=[keep])
    print(json.dumps(spans))


def clean_postgres(url: str) -> None:
    from hpo.schema import metadata

    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--trials", type=int, default=2000, help="trivial objective: trials per measurement"
    )
    parser.add_argument(
        "--sleep-trials",
        type=int,
        default=40,
        help="50 ms objective: trials per worker per measurement",
    )
    parser.add_argument("--optuna-trials", type=int, default=400)
    parser.add_argument("--postgres-url", default=os.environ.get("HPO_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-optuna", action="store_true")
    parser.add_argument("--optuna-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.optuna_worker:
        optuna_worker(args.optuna_worker[0], int(args.optuna_worker[1]))
        return 0
    counts = [int(n) for n in args.workers.split(",")]
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        storages = {"sqlite": f"sqlite:///{folder / 'hpo.db'}"}
        if args.postgres_url:
            clean_postgres(args.postgres_url)
            storages["postgres"] = args.postgres_url
        print(
            f"trials per second, median of {args.runs} runs "
            f"({os.cpu_count()} CPUs; trivial: {args.trials} trials; "
            f"50 ms: {args.sleep_trials} trials per worker)"
        )
        print("| storage | objective | " + " | ".join(f"{n} workers" for n in counts) + " |")
        print("|---|---|" + "---|" * len(counts))
        rates: dict[tuple[str, str], dict[int, float]] = {}
        for storage, url in storages.items():
            for objective in ("trivial", "sleep"):
                row = rates.setdefault((storage, objective), {})
                for n in counts:
                    trials = args.trials if objective == "trivial" else args.sleep_trials * n
                    row[n] = median_of(args.runs, partial(hpo_rate, url, objective, n, trials))
                print(
                    f"| hpo, {storage} | {objective} | "
                    + " | ".join(f"{row[n]:.0f}" for n in counts)
                    + " |",
                    flush=True,
                )
        if not args.no_optuna:
            optuna_row = {
                n: median_of(args.runs, partial(optuna_rate, folder, n, args.optuna_trials))
                for n in counts
            }
            print(
                "| Optuna RDB, sqlite | trivial | "
                + " | ".join(f"{optuna_row[n]:.0f}" for n in counts)
                + " |"
            )
    print()
    for storage in storages:
        row = rates[(storage, "sleep")]
        if 1 in row and 4 in row:
            ratio = row[4] / row[1]
            ok = ratio >= SCALING_TARGET
            missed += [] if ok else [f"{storage} scaling"]
            print(
                f"{storage}, 50 ms objective: 4 workers / 1 worker = {ratio:.2f}x "
                f"(target >= {SCALING_TARGET}x) {'met' if ok else 'MISSED'}"
            )
    if not args.no_optuna:
        for n in counts:
            ratio = rates[("sqlite", "trivial")][n] / optuna_row[n]
            ok = ratio >= OPTUNA_TARGET
            if n == 4:
                missed += [] if ok else ["vs Optuna"]
            print(
                f"sqlite, trivial objective, {n} workers: hpo / Optuna = {ratio:.1f}x"
                + (f" (target >= {OPTUNA_TARGET}x) {'met' if ok else 'MISSED'}" if n == 4 else "")
            )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
