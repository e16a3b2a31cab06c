"""GP ask time at scale: hpo's `gp` against Optuna's GPSampler on the same histories.

For each problem of `bench/problems.py`, one fixed history: a TPE study (seed
0) of the largest size asked for; the history at n trials is its first n
trials, so both samplers see exactly the same points and values.

At each size n, each sampler makes the asks of a running study over a window
of the last w = ceil(n * window) trials: one untimed ask on the first n - w
trials (the state a study would have reached), then one timed ask on each of
the first n - w + 1, ..., n trials. hpo's gp refits its hyperparameters from
scratch once per 20% of growth (gp_fit.REFIT_GROWTH), and the window is as
long, so it holds the refits at their true rate: the window's mean is the
cost per trial, the median the typical ask. Optuna's GPSampler runs natively (an in-memory
Optuna study, `add_trials`, `study.ask()` and the suggestions; each timed
trial is then told FAIL, which its model ignores), keeping the kernel
parameters of its previous fit to start the next one from, as in a study.
The two samplers' asks alternate (hpo at k, Optuna at k, hpo at k + 1, ...),
so that both meet the same load on a shared machine, and the window is run
again (from scratch) until at least 30 asks of each are timed (--min-asks). Also printed:
CPU time (this process alone, whatever else runs) and hpo's first ask from an
empty fit cache (what a resumed study pays once).

Ratios are Optuna's mean over hpo's, from the same run. BLAS and torch run
on one thread (set before NumPy loads).

    python bench/gp_scale.py                  # hartmann6 and mixed_nn: 60/200/500, hpo at 2,000
    python bench/gp_scale.py --problems hartmann6 --sizes 60,200 --hpo-only-sizes ""

Targets (issue 17): Optuna's mean over hpo's (wall time) >= 3 at 60, 200 and
500 trials; hpo's mean and its cold ask <= 1.5 s at 2,000. Exit status 1
when one is missed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# (the imports come after: NumPy and torch read those settings when they load)
import argparse
import logging
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_common import load_problems

import hpo
from hpo.samplers import gp_fit, make_sampler
from hpo.samplers.reference import active_params, library_keys
from hpo.samplers.reference_optuna import OptunaGPSampler, _suggest
from hpo.space import Space
from hpo.trial import FrozenTrial

RATIO_TARGET = 3.0
SECONDS_ALONE = 1.5

Asker = Callable[[int], tuple[float, float]]  # k -> wall and CPU seconds of an ask on k trials


def build_history(problem: dict[str, Any], n: int) -> tuple[Space, list[FrozenTrial]]:
    """n trials of a TPE study (seed 0) on the problem: the fixed history both samplers see."""
    study = hpo.create_study(space=problem["space"], sampler="tpe", seed=0)
    study.optimize(lambda trial: problem["fn"](trial.params), n_trials=n)
    return study.space, study.trials


def hpo_asker(space: Space, trials: list[FrozenTrial], start: int) -> Asker:
    """hpo's gp, its fit cache emptied, after an (untimed) ask on the first `start` trials."""
    sampler = make_sampler("gp", seed=0)
    gp_fit.clear_cache()
    sampler.ask(space, trials[:start], np.random.default_rng(start))
    return lambda k: _timed(lambda: sampler.ask(space, trials[:k], np.random.default_rng(k)))


def optuna_asker(space: Space, trials: list[FrozenTrial], start: int) -> Asker:
    """Optuna's GPSampler in a study of the first `start` trials, after an (untimed) ask;
    each call adds trial k - 1 to the study (untimed), then asks."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    reference, keys = OptunaGPSampler(), library_keys(space)
    records = [reference._frozen(space, t.params, t.value) for t in trials]
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))

    def ask() -> None:
        trial = study.ask()
        active_params(space, lambda j, param: _suggest(trial, keys[j], param))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # a failed trial: not modelled

    def timed_ask(k: int) -> tuple[float, float]:
        study.add_trial(records[k - 1])
        return _timed(ask)

    study.add_trials(records[:start])
    ask()
    return timed_ask


def time_windows(
    space: Space, trials: list[FrozenTrial], n: int, w: int, repeats: int, with_optuna: bool
) -> list[dict[str, float]]:
    """hpo's (and Optuna's) asks on k = n - w + 1 .. n, alternating between samplers, the
    window run `repeats` times: mean and median wall ms, mean CPU ms, per sampler."""
    makers = [hpo_asker, optuna_asker] if with_optuna else [hpo_asker]
    seconds: list[list[tuple[float, float]]] = [[] for _ in makers]
    for _ in range(repeats):
        askers = [make(space, trials, n - w) for make in makers]
        for k in range(n - w + 1, n + 1):
            for asker, times in zip(askers, seconds, strict=True):
                times.append(asker(k))
    return [
        {
            "mean": 1000 * statistics.fmean(t[0] for t in times),
            "median": 1000 * statistics.median(t[0] for t in times),
            "cpu": 1000 * statistics.fmean(t[1] for t in times),
        }
        for times in seconds
    ]


def cold_ms(space: Space, trials: list[FrozenTrial], n: int) -> float:
    """hpo's ask on n trials from an empty fit cache, wall ms."""
    sampler = make_sampler("gp", seed=0)
    gp_fit.clear_cache()
    return 1000 * _timed(lambda: sampler.ask(space, trials[:n], np.random.default_rng(n)))[0]


def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of a call (CPU time: this process alone, whatever else runs)."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="hartmann6,mixed_nn")
    parser.add_argument("--sizes", default="60,200,500", help="sizes timed for both samplers")
    parser.add_argument("--hpo-only-sizes", default="2000", help="sizes timed for hpo alone")
    parser.add_argument(
        "--window",
        type=float,
        default=gp_fit.REFIT_GROWTH - 1,
        help="fraction of n timed (default: hpo's refit period)",
    )
    parser.add_argument("--min-asks", type=int, default=30, help="repeat windows until this many")
    args = parser.parse_args()
    logging.getLogger("hpo").setLevel(logging.ERROR)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    alone = [int(s) for s in args.hpo_only_sizes.split(",") if s]
    checks: list[tuple[str, bool]] = []
    print(
        "| problem | trials | asks timed | hpo mean ms | hpo median ms | hpo CPU ms "
        "| hpo cold ms | optuna mean ms | optuna median ms | optuna CPU ms "
        "| optuna / hpo (means) | (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.problems.split(","):
        space, trials = build_history(load_problems()[name], max(sizes + alone))
        for n in sizes + alone:
            w = math.ceil(n * args.window)
            repeats = math.ceil(args.min_asks / w)
            timings = time_windows(space, trials, n, w, repeats, with_optuna=n not in alone)
            ours, cold = timings[0], cold_ms(space, trials, n)
            row = f"| {name} | {n} | {w * repeats} | {ours['mean']:.1f} "
            row += f"| {ours['median']:.1f} | {ours['cpu']:.1f} | {cold:.1f} "
            if n in alone:
                print(row + "| | | | | |", flush=True)
                checks.append(
                    (
                        f"{name} @{n}: hpo mean {ours['mean'] / 1000:.2f} s, cold "
                        f"{cold / 1000:.2f} s (target: at most {SECONDS_ALONE} s)",
                        max(ours["mean"], cold) <= 1000 * SECONDS_ALONE,
                    )
                )
                continue
            theirs = timings[1]
            ratio = theirs["mean"] / ours["mean"]
            row += f"| {theirs['mean']:.1f} | {theirs['median']:.1f} | {theirs['cpu']:.1f} "
            row += f"| {ratio:.1f}x | {theirs['cpu'] / ours['cpu']:.1f}x |"
            print(row, flush=True)
            checks.append(
                (
                    f"{name} @{n}: optuna / hpo {ratio:.1f}x (target: at least {RATIO_TARGET}x)",
                    ratio >= RATIO_TARGET,
                )
            )
    print("\nTargets:")
    for text, met in checks:
        print(f"  [{'met' if met else 'MISSED'}] {text}")
    return 0 if all(met for _, met in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
