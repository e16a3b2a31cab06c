"""What pruning saves: epochs trained and best validation loss, with and without a pruner.

For each bundled network objective (MNIST on a training subset, Boston), the
same sampler (TPE) and seeds run a study without a pruner, with the median
pruner (judging from the third epoch on, when at least three completed
trials reached it) and with ASHA (rungs at epochs 2, 6, 18, ...). Printed
per objective: the total epochs trained (the steps reported: a pruned trial
stops at its last; a network that diverges in its first epoch stops
part-way through it and counts none) and the best validation loss, as
means over the seeds, and each pruner's ratios to the unpruned run.

Target (issue 6): median or ASHA trains at most half the epochs of the
unpruned study while its best validation loss is within 2% of it (means
over at least 3 seeds).

    python bench/pruning.py                    # 10 seeds, a study per core at a time
    python bench/pruning.py --seeds 20 --first-seed 5 --objectives boston
    python bench/pruning.py --seeds 30 --first-seed 10 --objectives mnist_mlp
    python bench/pruning.py --objectives boston --warmup-fraction 0.1  # from epoch 10
    python bench/pruning.py --objectives mnist_mlp --max-epochs 20 --patience 5

BLAS runs single-threaded (set before NumPy loads), so the results do not
depend on `--jobs N`, which runs N studies at a time (one per core is
fastest; several NumPy processes with a thread per core each slow each
other down several times over).

The loss ratio comes with its standard error over the seeds (from the
paired differences, pruned minus unpruned, seed by seed): a ratio whose
error is larger than the 2% margin does not yet say which side it is on
(on these networks that takes some 25 seeds; docs/pruning.md).
"""

from __future__ import annotations

import os

# one BLAS thread, whatever the shell set: results change with the thread count
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
# (the imports come after: NumPy reads those settings when it loads)

import argparse
import logging
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import hpo

# Settings that give every trial a few epochs before judging it: the early
# epochs of a small step look worse than a large one's, and end better.
PRUNERS: dict[str, dict[str, Any]] = {
    "none": {},
    "median": {"n_warmup_steps": 2, "n_min_trials": 3},
    "asha": {"min_resource": 2, "reduction_factor": 3},
}
OBJECTIVES: dict[str, dict[str, Any]] = {
    "mnist_mlp": {
        "trials": 40,
        "options": {"max_epochs": 10, "subset": 10_000, "validation": 5_000, "patience": 3},
    },
    "boston": {"trials": 40, "options": {"max_epochs": 100}},
}
EPOCH_RATIO, LOSS_SLACK = 0.5, 0.02


def objective_options(objective: str, overrides: dict[str, int | None]) -> dict[str, Any]:
    """The objective's benchmark settings, with the options given on the command line."""
    given = {name: value for name, value in overrides.items() if value is not None}
    return {**OBJECTIVES[objective]["options"], **given}


def pruner_settings(pruner: str, max_epochs: int, warmup_fraction: float) -> dict[str, Any]:
    """The pruner's settings; with a warm-up fraction, judged from that share of
    max_epochs on (at least the fixed settings' 2 epochs)."""
    options = dict(PRUNERS[pruner])
    warmup = max(2, round(warmup_fraction * max_epochs))
    if "n_warmup_steps" in options:
        options["n_warmup_steps"] = warmup
    if "min_resource" in options:
        options["min_resource"] = warmup
    return options


def run(task: tuple[str, dict[str, Any], str, int, float]) -> tuple[int, float, float]:
    """(epochs trained, best value, seconds) of one study."""
    objective, options, pruner, seed, warmup_fraction = task
    start = time.perf_counter()
    logging.getLogger("hpo").setLevel(logging.ERROR)
    settings = pruner_settings(pruner, options["max_epochs"], warmup_fraction)
    study = hpo.create_study(
        objective=objective,
        objective_options=options,
        sampler="tpe",
        seed=seed,
        budget=OBJECTIVES[objective]["trials"],
        pruner=pruner,
        pruner_options=settings,
    )
    study.optimize()
    epochs = sum(len(t.intermediate) for t in study.trials)
    return epochs, study.best_value, time.perf_counter() - start


def paired_error(pruned: list[float], unpruned: list[float]) -> float:
    """The standard error of the mean seed-by-seed difference (0 with one seed)."""
    differences = [a - b for a, b in zip(pruned, unpruned, strict=True)]
    if len(differences) < 2:
        return 0.0
    return statistics.stdev(differences) / len(differences) ** 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument(
        "--warmup-fraction",
        type=float,
        default=0.0,
        help="judge from this share of max_epochs on (default: from epoch 2)",
    )
    parser.add_argument("--max-epochs", type=int, help="instead of each objective's setting")
    parser.add_argument(
        "--patience", type=int, help="of early stopping, instead of the objective's setting"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="studies run at a time (default: one per core)",
    )
    args = parser.parse_args()
    met_somewhere = {}
    seeds_run = range(args.first_seed, args.first_seed + args.seeds)
    for objective in args.objectives.split(","):
        options = objective_options(
            objective, {"max_epochs": args.max_epochs, "patience": args.patience}
        )
        tasks = [
            (objective, options, pruner, seed, args.warmup_fraction)
            for seed in seeds_run
            for pruner in PRUNERS
        ]
        results: dict[str, list[tuple[int, float]]] = {p: [] for p in PRUNERS}
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for (_, _, pruner, seed, _), (epochs, best, seconds) in zip(
                tasks, pool.map(run, tasks), strict=True
            ):
                results[pruner].append((epochs, best))
                print(
                    f"  {objective} seed {seed} {pruner}: {epochs} epochs, best {best:.4g} "
                    f"({seconds:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        base_epochs = statistics.fmean(e for e, _ in results["none"])
        base_loss = statistics.fmean(v for _, v in results["none"])
        trials = OBJECTIVES[objective]["trials"]
        seeds = f"seeds {args.first_seed}-{args.first_seed + args.seeds - 1}"
        settings = ", ".join(f"{k} {v}" for k, v in options.items())
        print(f"\n{objective} ({settings}): TPE, {trials} trials, {seeds} (means)")
        print(
            "| pruner | epochs trained | best validation loss | epochs / unpruned | "
            "loss / unpruned (± SE) |"
        )
        print("|---|---|---|---|---|")
        for pruner in PRUNERS:
            epochs = statistics.fmean(e for e, _ in results[pruner])
            loss = statistics.fmean(v for _, v in results[pruner])
            error = (
                paired_error([v for _, v in results[pruner]], [v for _, v in results["none"]])
                / base_loss
            )
            print(
                f"| {pruner} | {epochs:.0f} | {loss:.4g} | {epochs / base_epochs:.2f} | "
                f"{loss / base_loss:.3f} ± {error:.3f} |"
            )
            if pruner != "none":
                met_somewhere.setdefault(objective, []).append(
                    (
                        pruner,
                        epochs / base_epochs <= EPOCH_RATIO
                        and loss <= base_loss * (1 + LOSS_SLACK),
                    )
                )
    print("\nTarget: at most half the epochs, best loss within 2%:")
    for objective, checks in met_somewhere.items():
        for pruner, met in checks:
            print(f"  [{'met' if met else 'missed'}] {objective} with {pruner}")
    ok = all(any(met for _, met in checks) for checks in met_somewhere.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
