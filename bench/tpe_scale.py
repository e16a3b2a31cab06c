"""TPE's ask time with large histories: hpo's `tpe` against Optuna's TPESampler.

For each problem (`hartmann6`, `conditional_nn` of bench/problems.py) and
each history size (1,000, 5,000 and 10,000 finished trials: random points
of the space with their values, the same trials for both libraries), both
samplers with their defaults are asked `--asks` times. Before each ask after
the first, one more finished trial joins the history, as in a running study.
Printed: the median ask of each (hpo's first ask apart: it reads every
record, later asks only the new ones), Optuna's median over hpo's, and the
target of issue 17 as met / missed (exit status 1 if missed):

- hpo's median ask at most 50 ms with 10,000 finished trials, on each problem.

Each ask is timed twice: in CPU seconds of this process (with one thread,
what it takes on an idle machine) and in wall seconds (which grow with
whatever else the machine runs). The target and the main ratio are read
from the CPU times; the wall times are printed beside them.

An Optuna ask is `study.ask()` plus the define-by-run suggestions of the
space (as the optuna-tpe backend walks it), in an in-memory study holding
the same trials. BLAS runs on one thread (set before NumPy loads).

    python bench/tpe_scale.py
    python bench/tpe_scale.py --sizes 1000,5000 --asks 5 --problems hartmann6
    python bench/tpe_scale.py --json tpe_scale.json   # also keep the raw times
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# (the imports come after: NumPy reads those settings when it loads)
import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import load_problems

import hpo
from hpo.records import FrozenTrial, TrialState
from hpo.samplers import make_sampler
from hpo.samplers.reference import active_params, library_keys
from hpo.samplers.reference_optuna import OptunaTPESampler, _suggest
from hpo.space import Param

TARGET_MS, TARGET_SIZE = 50.0, 10_000


def random_history(problem: dict[str, Any], n: int, seed: int) -> tuple[hpo.Space, list]:
    """n completed trials at uniform random points of the problem's space."""
    space = hpo.Space.from_spec(problem["space"])
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(n):
        params = space.decode(rng.random(len(space)))
        value = float(problem["fn"](params))
        trials.append(FrozenTrial(i + 1, i, TrialState.COMPLETE, params, value))
    return space, trials


class Clock:
    """CPU and wall seconds of each timed block."""

    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def __enter__(self) -> Clock:
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu.append(time.process_time() - self._cpu)
        self.wall.append(time.perf_counter() - self._wall)


def time_hpo(space: hpo.Space, trials: list[FrozenTrial], n: int, asks: int) -> Clock:
    """Each ask's seconds; ask i sees the first n + i trials (a new list each time)."""
    sampler, clock = make_sampler("tpe", seed=0), Clock()
    for i in range(asks):
        history = trials[: n + i]
        with clock:
            sampler.ask(space, history, np.random.default_rng(i))
    return clock


def time_optuna(space: hpo.Space, trials: list[FrozenTrial], n: int, asks: int) -> Clock:
    """The same for Optuna's TPESampler (its defaults) in an in-memory study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    convert = OptunaTPESampler()  # the optuna-tpe backend's conversions, both ways
    keys = library_keys(space)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.add_trials([convert._frozen(space, t.params, t.value) for t in trials[:n]])
    clock = Clock()
    for i in range(asks):
        if i:
            t = trials[n + i - 1]
            study.add_trial(convert._frozen(space, t.params, t.value))
        with clock:
            trial = study.ask()

            def value_of(j: int, param: Param, trial: Any = trial) -> Any:
                return _suggest(trial, keys[j], param)

            active_params(space, value_of)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # ignored by TPE from now on
    return clock


def measure(problems: list[str], sizes: list[int], asks: int, seed: int) -> list[dict[str, Any]]:
    rows, catalogue = [], load_problems()
    for name in problems:
        space, trials = random_history(catalogue[name], max(sizes) + asks, seed)
        for n in sizes:
            ours = time_hpo(space, trials, n, asks)
            theirs = time_optuna(space, trials, n, asks)
            row: dict[str, Any] = {"problem": name, "finished": n}
            for kind in ("cpu", "wall"):
                mine, other = getattr(ours, kind), getattr(theirs, kind)
                row[f"hpo_first_{kind}_ms"] = 1000 * mine[0]
                row[f"hpo_{kind}_ms"] = 1000 * statistics.median(mine[1:])
                row[f"optuna_{kind}_ms"] = 1000 * statistics.median(other[1:])
                row[f"hpo_{kind}_s"], row[f"optuna_{kind}_s"] = mine, other
            rows.append(row)
            print(f"  {name} at {n:,}: done", file=sys.stderr, flush=True)
    return rows


def report(rows: list[dict[str, Any]], asks: int) -> list[tuple[str, bool]]:
    print(
        f"\nTPE ask with n finished trials, ms: median of asks 2-{asks}, CPU time "
        "(wall time in brackets); hpo's first ask apart\n"
    )
    print("| problem | n | hpo tpe | hpo first ask | Optuna TPESampler | Optuna / hpo |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['problem']} | {r['finished']:,} "
            f"| {r['hpo_cpu_ms']:.1f} ({r['hpo_wall_ms']:.1f}) "
            f"| {r['hpo_first_cpu_ms']:.1f} ({r['hpo_first_wall_ms']:.1f}) "
            f"| {r['optuna_cpu_ms']:.1f} ({r['optuna_wall_ms']:.1f}) "
            f"| {r['optuna_cpu_ms'] / r['hpo_cpu_ms']:.1f}x "
            f"({r['optuna_wall_ms'] / r['hpo_wall_ms']:.1f}x) |"
        )
    return [
        (
            f"tpe ask {r['hpo_cpu_ms']:.1f} ms CPU ({r['hpo_wall_ms']:.1f} ms wall) with "
            f"{r['finished']:,} finished trials on {r['problem']} "
            f"(target: at most {TARGET_MS:.0f})",
            r["hpo_cpu_ms"] <= TARGET_MS,
        )
        for r in rows
        if r["finished"] == TARGET_SIZE
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="hartmann6,conditional_nn")
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--asks", type=int, default=9, help="asks per size (at least 2)")
    parser.add_argument("--seed", type=int, default=0, help="of the random history")
    parser.add_argument("--json", help="write the raw times to this file")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import optuna

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{started}; Python {platform.python_version()}, NumPy {np.__version__}, "
        f"optuna {optuna.__version__}; {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} at the start",
        flush=True,
    )
    rows = measure(
        args.problems.split(","),
        [int(s) for s in args.sizes.split(",")],
        max(args.asks, 2),
        args.seed,
    )
    checks = report(rows, max(args.asks, 2))
    print(f"\nload average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at the end")
    print("\nTargets:" if checks else f"\nTargets: none checked (no {TARGET_SIZE:,} in --sizes)")
    for text, met in checks:
        print(f"  [{'met' if met else 'MISSED'}] {text}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    return 0 if all(met for _, met in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
