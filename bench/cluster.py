"""A study's workers on a Dask cluster: scaling with 1, 2, 4, 8 Dask worker processes,
and the cost per trial against local `--workers` on the same database.

The script starts a real `dask scheduler` and 8 `dask worker` processes on
this machine (one process, one thread each; `--nworkers 1 --nthreads 1`),
then, for N in 1, 2, 4, 8, runs a fresh study of a 0.2 s sleep objective
(random sampler) on PostgreSQL twice:

- cluster: `hpo.cluster.optimize(study, client, workers=N)`: N Dask tasks,
  one per Dask worker process, each an `hpo worker`;
- local: `hpo.workers.run_workers(study, url, N)`, what `hpo run --workers N`
  does: N `hpo worker` processes started here.

Rates are read off the stored trials as in bench/workers.py: the trials
finished while all N workers were running, per second (from the last
worker's first trial start to the first worker's last trial end), so
process start-up is left out for both. So that every worker is up before
the first trial starts, the script holds a write lock on the trials table
while they start.

- speed-up: cluster rate with N workers / cluster rate with 1 (target >= 0.9 N);
- overhead per trial: N / rate - 0.2 s, the worker-seconds each trial costs
  beyond the objective's own sleep; cluster / local (target <= 1.2x).

The exit status is 1 when a target is missed. Sleeping trials do not compete
for cores, so 8 workers can scale on a 2-core machine.

    python bench/cluster.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python bench/cluster.py --trials 100 --runs 3 --workers 1,2,4,8   # shrunk
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

SLEEP_S = 0.2
SPEEDUP_TARGET, OVERHEAD_TARGET = 0.9, 1.2
STARTUP_S = 1.0  # per worker process, on a loaded 2-core machine
SPACE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]


def sleep(trial) -> float:  # the objective (this file is uploaded to the Dask workers)
    time.sleep(SLEEP_S)
    return trial.params["x"]


def _bench_workers():  # bench/workers.py: steady_rate, writes_held, clean_postgres
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import workers

    return workers


@contextlib.contextmanager
def dask_cluster(n_workers: int, folder: Path) -> Iterator[str]:
    """A `dask scheduler` and `n_workers` `dask worker` processes on 127.0.0.1."""
    from distributed import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": folder}
    options = ["--host", "127.0.0.1", "--no-dashboard"]
    processes = [
        subprocess.Popen(
            [*dask, "scheduler", "--port", str(port), *options], start_new_session=True, **quiet
        )
    ]
    for _ in range(n_workers):
        processes.append(
            subprocess.Popen(
                [*dask, "worker", address, "--nworkers", "1", "--nthreads", "1", *options],
                start_new_session=True,
                **quiet,
            )
        )
    try:
        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(n_workers, timeout=120)
        yield address
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait()


def rate(url: str, workers: int, trials: int, run: Callable[..., object]) -> float:
    """Trials per second of a fresh study while all `workers` ran it (`run(study)`)."""
    import hpo

    bench = _bench_workers()
    name = f"bench-cluster-{workers}-{time.time_ns()}"
    study = hpo.create_study(
        name, url, SPACE, objective=f"{__file__}:sleep", sampler="random", seed=0, budget=trials
    )
    hold = threading.Thread(target=_hold_writes, args=(bench, url, STARTUP_S * (2 + workers)))
    hold.start()
    try:
        run(study)
    finally:
        hold.join()
    spans: dict[str, list[tuple[float, float]]] = {}
    for trial in study.trials:
        spans.setdefault(trial.worker, []).append((trial.started_at, trial.finished_at))
    assert sum(map(len, spans.values())) == trials == study.n_counted
    assert len(spans) == workers, f"{len(spans)} workers ran trials, not {workers}"
    study.storage.close()
    return float(bench.steady_rate(spans))


def _hold_writes(bench, url: str, seconds: float) -> None:
    with bench.writes_held(url):
        time.sleep(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--trials", type=int, default=400, help="each study's budget")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HPO_BENCH_POSTGRES_URL"),
        help="[default: $HPO_BENCH_POSTGRES_URL]",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill`: clean up as Ctrl-C
    if not args.postgres_url:
        parser.error("give --postgres-url (or set HPO_BENCH_POSTGRES_URL): the cluster needs it")
    import tempfile

    from distributed import Client

    import hpo.cluster
    from hpo.workers import run_workers

    counts = [int(n) for n in args.workers.split(",")]
    url = args.postgres_url
    _bench_workers().clean_postgres(url)
    cluster_rates: dict[int, list[float]] = {n: [] for n in counts}
    local_rates: dict[int, list[float]] = {n: [] for n in counts}
    with (
        tempfile.TemporaryDirectory() as tmp,
        dask_cluster(max(counts), Path(tmp)) as address,
        Client(address, set_as_default=False) as client,
    ):
        for run in range(args.runs):
            for n in counts:  # cluster and local alternate: the same load for both
                cluster_rates[n].append(
                    rate(url, n, args.trials, lambda s, n=n: hpo.cluster.optimize(s, client, n))
                )
                local_rates[n].append(
                    rate(url, n, args.trials, lambda s, n=n: run_workers(s, url, n))
                )
                print(
                    f"run {run + 1}, {n} workers: cluster {cluster_rates[n][-1]:.2f}/s, "
                    f"local {local_rates[n][-1]:.2f}/s",
                    file=sys.stderr,
                    flush=True,
                )
    return report(counts, cluster_rates, local_rates, args)


def report(
    counts: list[int],
    cluster_rates: dict[int, list[float]],
    local_rates: dict[int, list[float]],
    args: argparse.Namespace,
) -> int:
    cluster = {n: statistics.median(v) for n, v in cluster_rates.items()}
    local = {n: statistics.median(v) for n, v in local_rates.items()}
    print(
        f"0.2 s sleep objective, {args.trials} trials per study, median of {args.runs} runs, "
        f"{os.cpu_count()} CPUs, PostgreSQL"
    )
    print(
        "| workers | cluster trials/s | speed-up vs 1 | target | local trials/s | "
        "overhead/trial cluster | local | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    missed = []
    base = cluster.get(1)
    for n in counts:
        speedup = cluster[n] / base if base else float("nan")
        over_c = n / cluster[n] - SLEEP_S
        over_l = n / local[n] - SLEEP_S
        ratio = over_c / over_l if over_l > 0 else float("nan")
        ok_speed = speedup >= SPEEDUP_TARGET * n
        ok_over = ratio <= OVERHEAD_TARGET
        missed += [] if ok_speed else [f"speed-up {n}"]
        missed += [] if ok_over else [f"overhead {n}"]
        print(
            f"| {n} | {cluster[n]:.2f} | {speedup:.2f}x | >= {SPEEDUP_TARGET * n:.1f}x "
            f"{'met' if ok_speed else 'MISSED'} | {local[n]:.2f} | {over_c * 1000:.1f} ms | "
            f"{over_l * 1000:.1f} ms | {ratio:.2f}x {'met' if ok_over else 'MISSED'} |"
        )
    print("missed: " + ", ".join(missed) if missed else "every target met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
