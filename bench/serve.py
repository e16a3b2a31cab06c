"""Ask+tell round trips per second and latency through `hpo serve`, against Optuna's ask/tell.

For each storage (an SQLite file; PostgreSQL with --postgres-url or
HPO_BENCH_POSTGRES_URL), each study size (trials already in the study,
pre-filled with add_trials) and each sampler, a fresh study is served by a
real `hpo serve` process, and N client processes (1, 8, 32) each run
ask -> tell through `hpo.connect` for --seconds. Reported: round trips per
second (all clients together), p50 / p99 latency of ask and of ask+tell, and
errors: for hpo a 5xx or the server out of reach (there must be none); for
Optuna an exception out of ask or tell (SQLite locked past its timeout).

Beside it, in the same run, Optuna's own ask/tell on its RDB storage (the
same database kind, the same number of processes, the same sampler, a study
pre-filled with the same number of trials): the reference the throughput
target is measured against.

With --server-workers 1,2 each measurement of hpo is made against `hpo serve
--workers 1`, then `--workers 2` (Optuna once, beside the first).

Then the budget check (for each server): 32 clients on a study with a budget of --budget trials
past its pre-filled ones run until ask answers that the budget is met; the
study must hold exactly the budget, with zero 5xx.

Targets (issue 19): with 32 clients on PostgreSQL exactly the budget, zero
5xx; ask+tell throughput >= 10x Optuna's; p99 ask latency <= 25 ms with 10,000
trials in the study (random sampler). Exit status 1 when a target measured is
missed.

    python bench/serve.py                                   # SQLite only, a few minutes
    python bench/serve.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        --backends sqlite,postgres --seconds 4
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import hpo

SPACE = [{"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0} for i in range(3)]
HPO = str(Path(sys.executable).parent / "hpo")
OPTUNA_RATIO, P99_ASK_MS = 10.0, 25.0


@dataclass
class Cell:
    """One measurement: what ran, how fast, how many server errors."""

    system: str
    backend: str
    size: int
    sampler: str
    clients: int
    rate: float  # round trips per second, all clients together
    ask_ms: tuple[float, float]  # p50, p99
    trip_ms: tuple[float, float]
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reset(url: str) -> None:
    """Drop every table (hpo's and Optuna's) of a scratch database."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()


def prefill_points(size: int, seed: int) -> list[hpo.FrozenTrial]:
    rng = random.Random(seed)
    return [
        hpo.create_trial(value=rng.random(), params={p["name"]: rng.random() for p in SPACE})
        for _ in range(size)
    ]


@contextmanager
def serving(storage: str, workdir: Path, workers: int) -> Iterator[str]:
    port = free_port()
    log = open(workdir / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed below
    command = [HPO, "serve", "--port", str(port), "--storage", storage, "--no-access-log"]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("HPO_")},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("hpo serve did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        log.close()


# -- one client process ---------------------------------------------------------------------


def hpo_client(url: str, name: str, seconds: float, until_budget: bool, out: mp.Queue) -> None:
    study = hpo.connect(url, name, token="")
    asks, trips, errors = [], [], 0
    began, stop = time.time(), time.monotonic() + seconds
    while time.monotonic() < stop:
        start = time.perf_counter()
        try:
            record = study.start_trial(lease=600)
            asked = time.perf_counter()
            study.tell(record.number, sum(record.params.values()))
        except hpo.BudgetMet:
            if until_budget:
                break
            continue
        except hpo.HpoError:
            errors += 1  # ServerError: a 5xx, or the server out of reach
            continue
        asks.append(asked - start)
        trips.append(time.perf_counter() - start)
    out.put((asks, trips, errors, began, time.time()))


def optuna_client(url: str, name: str, sampler: str, seconds: float, out: mp.Queue) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url, sampler=optuna_sampler(sampler))
    dists = {p["name"]: optuna.distributions.FloatDistribution(0.0, 1.0) for p in SPACE}
    asks, trips = [], []
    stop = time.monotonic() + seconds
    errors, began = 0, time.time()
    while time.monotonic() < stop:
        start = time.perf_counter()
        try:
            trial = study.ask(dists)
            asked = time.perf_counter()
            study.tell(trial, sum(trial.params.values()))
        except Exception:  # noqa: BLE001 - SQLite locked past its timeout, with 8+ processes
            errors += 1
            continue
        asks.append(asked - start)
        trips.append(time.perf_counter() - start)
    out.put((asks, trips, errors, began, time.time()))


def optuna_sampler(name: str):
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=0)
    return optuna.samplers.TPESampler(seed=0, multivariate=True, constant_liar=True)


def run_clients(target, args_of, clients: int) -> tuple[list[float], list[float], int, float]:
    """Start `clients` processes of `target`, wait for them; (asks, trips, errors, seconds
    from the first client's start to the last one's end: an ask or a tell under way at
    the deadline is waited for, and counted)."""
    context = mp.get_context("fork")
    out = context.Queue()
    processes = [context.Process(target=target, args=(*args_of, out)) for _ in range(clients)]
    for process in processes:
        process.start()
    results = [out.get(timeout=600) for _ in processes]
    elapsed = max(r[4] for r in results) - min(r[3] for r in results)
    for process in processes:
        process.join()
    asks = [a for r in results for a in r[0]]
    trips = [t for r in results for t in r[1]]
    return asks, trips, sum(r[2] for r in results), elapsed


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (math_nan(), math_nan())
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def math_nan() -> float:
    return float("nan")


# -- the measurements ---------------------------------------------------------------------------


def measure_hpo(
    url: str,
    storage: str,
    system: str,
    backend: str,
    size: int,
    sampler: str,
    clients: int,
    seconds: float,
) -> Cell:
    name = f"bench-{system.replace(' ', '-')}-{sampler}-{size}-{clients}"
    study = hpo.create_study(name, storage, SPACE, sampler=sampler, seed=0)
    study.add_trials(prefill_points(size, clients))
    asks, trips, errors, elapsed = run_clients(hpo_client, (url, name, seconds, False), clients)
    return Cell(
        system, backend, size, sampler, clients, len(trips) / elapsed,
        percentiles(asks), percentiles(trips), errors,
    )  # fmt: skip


def measure_optuna(
    url: str, backend: str, size: int, sampler: str, clients: int, seconds: float
) -> Cell:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"optuna-{sampler}-{size}-{clients}"
    study = optuna.create_study(study_name=name, storage=url)
    dists = {p["name"]: optuna.distributions.FloatDistribution(0.0, 1.0) for p in SPACE}
    study.add_trials(
        [
            optuna.trial.create_trial(params=t.params, distributions=dists, value=t.value)
            for t in prefill_points(size, clients)
        ]
    )
    asks, trips, errors, elapsed = run_clients(
        optuna_client, (url, name, sampler, seconds), clients
    )
    return Cell(
        "Optuna ask/tell", backend, size, sampler, clients, len(trips) / elapsed,
        percentiles(asks), percentiles(trips), errors,
    )  # fmt: skip


def budget_check(url: str, storage: str, size: int, budget: int, clients: int) -> tuple[int, int]:
    """(trials counted at the end minus the pre-filled ones, 5xx seen)."""
    name = f"bench-budget-{size}-{url.rsplit(':', 1)[-1]}"
    study = hpo.create_study(name, storage, SPACE, sampler="random", seed=0, budget=size + budget)
    study.add_trials(prefill_points(size, 1))
    _, _, errors, _ = run_clients(hpo_client, (url, name, 600.0, True), clients)
    return hpo.load_study(name, storage).n_counted - size, errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite", help="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HPO_BENCH_POSTGRES_URL"),
        help="a scratch PostgreSQL database: its tables are dropped",
    )
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--samplers", default="random,tpe")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--optuna-sizes", default="1000", help="Optuna's pre-fill is slow")
    parser.add_argument("--budget", type=int, default=400, help="trials of the budget check")
    parser.add_argument(
        "--server-workers", default="1", help="hpo serve --workers: one server per count"
    )
    args = parser.parse_args(argv)
    cells: list[Cell] = []
    budgets: list[tuple[str, int, int]] = []
    optuna_sizes = {int(s) for s in args.optuna_sizes.split(",") if s}
    first_workers = int(args.server_workers.split(",")[0])  # Optuna is measured beside it
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            if backend == "sqlite":
                storage = str(workdir / "hpo.db")
                optuna_url = f"sqlite:///{workdir / 'optuna.db'}"
            else:
                if not args.postgres_url:
                    parser.error("--backends postgres needs --postgres-url")
                storage = optuna_url = args.postgres_url
                reset(storage)
            hpo.create_study("bench-init", storage, SPACE)  # the schema, before the server
            for workers in map(int, args.server_workers.split(",")):
                system = "hpo serve" if workers == 1 else f"hpo serve x{workers}"
                with serving(storage, workdir, workers) as url:
                    for size in map(int, args.sizes.split(",")):
                        for sampler in args.samplers.split(","):
                            for clients in map(int, args.clients.split(",")):
                                cell = measure_hpo(
                                    url, storage, system, backend, size, sampler, clients,
                                    args.seconds,
                                )  # fmt: skip
                                cells.append(cell)
                                report(cell)
                                if size in optuna_sizes and workers == first_workers:
                                    cell = measure_optuna(
                                        optuna_url, backend, size, sampler, clients, args.seconds
                                    )
                                    cells.append(cell)
                                    report(cell)
                    size = max(map(int, args.sizes.split(",")))
                    counted, errors = budget_check(url, storage, size, args.budget, 32)
                    budgets.append((f"{backend}, {system}", counted, errors))
                    print(f"budget check, {backend}, {system}: 32 clients, budget {args.budget}: "
                          f"{counted} trials counted, {errors} 5xx", flush=True)  # fmt: skip
    return verdict(cells, budgets, args.budget)


def report(cell: Cell) -> None:
    print(
        f"{cell.system:16} {cell.backend:8} {cell.size:>6} {cell.sampler:6} {cell.clients:>3} "
        f"clients: {cell.rate:8.1f}/s  ask p50 {cell.ask_ms[0]:6.1f} p99 {cell.ask_ms[1]:6.1f} ms"
        f"  ask+tell p50 {cell.trip_ms[0]:6.1f} p99 {cell.trip_ms[1]:6.1f} ms  err {cell.errors}",
        flush=True,
    )


def verdict(cells: list[Cell], budgets: list[tuple[str, int, int]], budget: int) -> int:
    missed = []
    for backend, counted, errors in budgets:
        if counted != budget or errors:
            missed.append(f"{backend}: {counted} of a budget of {budget}, {errors} 5xx")
    ours = [c for c in cells if c.system.startswith("hpo serve")]
    optuna = {
        (c.backend, c.size, c.sampler, c.clients): c for c in cells if c.system.startswith("Optuna")
    }
    for c in ours:
        reference = optuna.get((c.backend, c.size, c.sampler, c.clients))
        if reference is not None:
            ratio = c.rate / reference.rate
            print(f"ratio vs Optuna, {c.system}, {c.backend} {c.size} {c.sampler} "
                  f"{c.clients}: {ratio:.1f}x")  # fmt: skip
            if ratio < OPTUNA_RATIO:
                missed.append(
                    f"{c.system}, {c.backend} {c.size} {c.sampler} x{c.clients}: "
                    f"{ratio:.1f}x Optuna"
                )
        if c.size >= 10_000 and c.sampler == "random" and c.ask_ms[1] > P99_ASK_MS:
            missed.append(f"{c.system}, {c.backend} x{c.clients}: p99 ask {c.ask_ms[1]:.1f} ms")
        if c.errors:  # a 5xx, or the server out of reach
            missed.append(f"{c.system}, {c.backend} {c.sampler} x{c.clients}: {c.errors} 5xx")
    for line in missed:
        print("target missed:", line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
