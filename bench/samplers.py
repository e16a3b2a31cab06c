"""Sampler quality and speed on the public problems, ours against the references.

Every sampler runs every problem of `bench/problems.py` (read through the
public API: `hpo.Space.from_spec` on the neutral spec, the problem's `fn` as
the objective) for several seeds; each study is 60 trials in an in-memory
database. Printed for each problem: the mean simple regret (best value found
minus the known optimum) after 20 / 40 / 60 trials with its standard error,
and the mean time per ask (model fitting included); then each sampler's
mean rank across the problems, TPE's ask time with 1,000 finished trials,
and the targets of issue 4 as met / missed.

    python bench/samplers.py                              # everything, 10 seeds
    python bench/samplers.py --samplers tpe,optuna-tpe --seeds 20 --problems branin
    python bench/samplers.py --json results.json          # also keep the raw numbers
    python bench/samplers.py --samplers tpe,optuna-tpe --first-seed 100 --seeds 100

Reference samplers whose library is missing are skipped with a note
(pip install 'hpo[reference]'; optuna-gp also needs torch). BLAS runs
single-threaded (set before NumPy loads), as the samplers' own timings are
small-matrix work that threads only slow down; `--jobs 2` runs two studies
at a time (faster, but then ask times include contention).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# (the imports come after: NumPy reads those settings when it loads)
import argparse
import json
import logging
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import TimedSampler, available, load_problems

import hpo
from hpo.samplers import make_sampler

CHECKPOINTS = (20, 40, 60)
NATIVE = ["random", "sobol", "halton", "tpe", "gp"]
REFERENCE = ["optuna-tpe", "optuna-qmc", "hyperopt-tpe", "skopt-gp", "optuna-gp"]


def run_one(task: tuple[str, str, int, int]) -> dict[str, Any]:
    """One study: (sampler, problem, seed, trials) -> best-so-far regrets and ask times."""
    sampler, problem_name, seed, trials = task
    logging.getLogger("hpo").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    problem = load_problems()[problem_name]
    space = hpo.Space.from_spec(problem["space"])
    study = hpo.create_study(space=space, sampler=sampler, seed=seed, budget=trials)
    timed = TimedSampler(study.sampler)
    study.sampler = timed
    study.optimize(lambda trial: problem["fn"](trial.params))
    values = [t.value for t in study.trials]
    best = np.minimum.accumulate(values) - problem["optimum"]
    return {
        "sampler": sampler,
        "problem": problem_name,
        "seed": seed,
        "regret": [float(best[c - 1]) for c in CHECKPOINTS if c <= len(best)],
        "ask_ms": 1000 * statistics.fmean(timed.seconds),
    }


def tpe_ask_ms_with(finished: int, asks: int = 20) -> float:
    """Median ask of TPE on hartmann6 after `finished` completed random trials."""
    problem = load_problems()["hartmann6"]
    study = hpo.create_study(space=problem["space"], sampler="random", seed=0)
    study.optimize(lambda trial: problem["fn"](trial.params), n_trials=finished)
    sampler, space, trials = make_sampler("tpe", seed=0), study.space, study.trials
    seconds = []
    for i in range(asks):
        start = time.perf_counter()
        sampler.ask(space, trials, np.random.default_rng(i))
        seconds.append(time.perf_counter() - start)
    return 1000 * statistics.median(seconds)


def summarize(
    results: list[dict[str, Any]], samplers: list[str], problems: list[str]
) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for problem in problems:
        for sampler in samplers:
            rows = [r for r in results if r["sampler"] == sampler and r["problem"] == problem]
            regrets = np.array([r["regret"] for r in rows])  # (seeds, checkpoints)
            table.setdefault(problem, {})[sampler] = {
                "mean": regrets.mean(axis=0).tolist(),
                "se": (regrets.std(axis=0, ddof=1) / np.sqrt(len(rows))).tolist(),
                "ask_ms": statistics.fmean(r["ask_ms"] for r in rows),
            }
    return table


def print_report(table: dict[str, dict[str, Any]], samplers: list[str], seeds: int) -> None:
    print(
        f"\nMean simple regret after 20 / 40 / 60 trials (± standard error, {seeds} seeds), "
        "mean ask time:\n"
    )
    for problem, rows in table.items():
        print(f"## {problem}")
        print(f"| sampler | {' | '.join(f'regret @{c}' for c in CHECKPOINTS)} | ask ms |")
        print("|---|" + "---|" * (len(CHECKPOINTS) + 1))
        for sampler in samplers:
            row = rows[sampler]
            cells = [f"{m:.3g} ± {s:.2g}" for m, s in zip(row["mean"], row["se"], strict=True)]
            print(f"| {sampler} | {' | '.join(cells)} | {row['ask_ms']:.2f} |")
        print()
    ranks = mean_ranks(table, samplers)
    print("Mean rank across problems (by final regret; 1 is best):")
    for sampler in sorted(samplers, key=ranks.get):
        print(f"  {sampler:14s} {ranks[sampler]:.2f}")


def mean_ranks(table: dict[str, dict[str, Any]], samplers: list[str]) -> dict[str, float]:
    ranks = {s: [] for s in samplers}
    for rows in table.values():
        ordered = sorted(samplers, key=lambda s: rows[s]["mean"][-1])
        for position, sampler in enumerate(ordered, start=1):
            ranks[sampler].append(position)
    return {s: statistics.fmean(r) for s, r in ranks.items()}


def check_targets(
    table: dict[str, dict[str, Any]], samplers: list[str], tpe_ms: dict[int, float]
) -> list[tuple[str, bool]]:
    """Issue 4's targets, for the samplers present in this run."""
    final = {p: {s: rows[s]["mean"][-1] for s in samplers} for p, rows in table.items()}
    ask = {s: statistics.fmean(rows[s]["ask_ms"] for rows in table.values()) for s in samplers}
    checks: list[tuple[str, bool]] = []

    def no_worse(ours: str, theirs: str) -> int:
        return sum(final[p][ours] <= final[p][theirs] for p in final)

    if {"gp", "optuna-gp"} <= set(samplers):
        checks.append(
            (
                f"gp no worse than optuna-gp on {no_worse('gp', 'optuna-gp')}/5 "
                "problems (target: 4)",
                no_worse("gp", "optuna-gp") >= 4,
            )
        )
    if {"gp", "skopt-gp"} <= set(samplers):
        subset = mean_ranks(table, ["gp", "skopt-gp"])
        checks.append(
            (
                f"gp mean rank {subset['gp']:.2f} vs skopt-gp {subset['skopt-gp']:.2f}"
                " (target: better)",
                subset["gp"] < subset["skopt-gp"],
            )
        )
    if "gp" in samplers:
        checks.append((f"gp mean ask {ask['gp']:.1f} ms (target: at most 25)", ask["gp"] <= 25))
    if {"tpe", "optuna-tpe"} <= set(samplers):
        checks.append(
            (
                f"tpe no worse than optuna-tpe on {no_worse('tpe', 'optuna-tpe')}/5 "
                "problems (target: 4)",
                no_worse("tpe", "optuna-tpe") >= 4,
            )
        )
    if {"tpe", "hyperopt-tpe"} <= set(samplers):
        wins = sum(final[p]["tpe"] < final[p]["hyperopt-tpe"] for p in final)
        checks.append(
            (f"tpe better than hyperopt-tpe on {wins}/5 problems (target: 5)", wins == len(final))
        )
    if "tpe" in samplers:
        checks.append(
            (
                f"tpe mean ask {ask['tpe']:.2f} ms over 60 trials (target: at most 2)",
                ask["tpe"] <= 2,
            )
        )
    for finished, ms in tpe_ms.items():
        checks.append(
            (f"tpe ask {ms:.2f} ms with {finished} finished trials (target: at most 10)", ms <= 10)
        )
    for qmc in ("sobol", "halton"):
        if {qmc, "random"} <= set(samplers):
            ratio = float(
                np.exp(np.mean([np.log(final[p][qmc] / final[p]["random"]) for p in final]))
            )
            checks.append(
                (
                    f"{qmc} regret / random regret, geometric mean over the problems: "
                    f"{ratio:.2f} (target: below 1)",
                    ratio < 1,
                )
            )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", default=",".join(NATIVE + REFERENCE))
    parser.add_argument(
        "--problems", default="branin,hartmann6,rosenbrock4,mixed_nn,conditional_nn"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1"
    )
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args()

    samplers = available(args.samplers.split(","))
    problems = args.problems.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(s, p, seed, args.trials) for s in samplers for p in problems for seed in seeds]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = []
        for i, result in enumerate(pool.map(run_one, tasks), start=1):
            results.append(result)
            if i % args.seeds == 0:
                print(
                    f"  {i}/{len(tasks)} studies ({result['sampler']} on "
                    f"{result['problem']}), {time.perf_counter() - start:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    table = summarize(results, samplers, problems)
    print_report(table, samplers, args.seeds)
    tpe_ms = {1000: tpe_ask_ms_with(1000)} if "tpe" in samplers else {}
    print("\nTargets:")
    checks = check_targets(table, samplers, tpe_ms) if len(problems) == 5 else []
    for text, met in checks:
        print(f"  [{'met' if met else 'MISSED'}] {text}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"args": vars(args), "results": results, "table": table, "tpe_ms": tpe_ms}, indent=1
            )
        )
    return 0 if all(met for _, met in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
