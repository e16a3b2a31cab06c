"""Pruning rules replayed on the same trials: what each rule saves and what it loses.

Runs the unpruned studies of bench/pruning.py (TPE, its objectives' settings;
MNIST and seeds 0-9 unless told), keeps every trial's curve, then replays each pruning rule on those
curves in trial order, as if the study had run with that pruner but with
the sampler's choices held fixed. That separates the rule from the
sampler's reaction to pruned trials (which bench/pruning.py measures with
it). Printed per rule: epochs trained and best validation loss relative to
the unpruned studies (means over the seeds), and the number of seeds whose
best trial the rule would have stopped.

    python bench/pruning_replay.py                       # MNIST, 10 seeds
    python bench/pruning_replay.py --storage sqlite:///replay.db  # keep the studies
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

# (bench/pruning.py sets BLAS single-threaded as it loads, before NumPy does)
from pruning import OBJECTIVES, PRUNERS

import hpo
from hpo.pruners import Pruner, make_pruner
from hpo.records import FrozenTrial, TrialState

RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "median": ("median", PRUNERS["median"]),
    "asha, best value up to the rung": ("asha", {**PRUNERS["asha"], "rung_value": "best"}),
    "asha, last value at the rung": ("asha", {**PRUNERS["asha"], "rung_value": "last"}),
    "asha rf 2, best": ("asha", {"min_resource": 2, "reduction_factor": 2, "rung_value": "best"}),
    "asha rf 2, last": ("asha", {"min_resource": 2, "reduction_factor": 2, "rung_value": "last"}),
}


def unpruned_trials(objective: str, seed: int, storage: str) -> list[FrozenTrial]:
    """The trials of the unpruned study (run now, or resumed from `storage`)."""
    setup = OBJECTIVES[objective]
    study = hpo.create_study(
        f"{objective}-seed-{seed}",
        storage,
        objective=objective,
        objective_options=setup["options"],
        sampler="tpe",
        seed=seed,
        budget=setup["trials"],
        load_if_exists=True,
    )
    study.optimize()
    return sorted(study.trials, key=lambda t: t.number)


def replay(trials: list[FrozenTrial], pruner: Pruner) -> tuple[int, float]:
    """(epochs trained, best completed value) had `pruner` judged these curves.

    The bundled network objectives minimize a validation loss.
    """
    seen: list[FrozenTrial] = []
    epochs = 0
    for trial in trials:
        reached: dict[int, float] = {}
        pruned = False
        for step in sorted(trial.intermediate):
            reached[step] = trial.intermediate[step]
            epochs += 1
            now = FrozenTrial(
                trial.trial_id,
                trial.number,
                TrialState.RUNNING,
                trial.params,
                intermediate=dict(reached),
            )
            if pruner.prune(now, seen):
                pruned = True
                break
        seen.append(
            FrozenTrial(
                trial.trial_id,
                trial.number,
                TrialState.PRUNED if pruned else trial.state,
                trial.params,
                value=None if pruned else trial.value,
                intermediate=reached,
            )
        )
    return epochs, min(t.value for t in seen if t.state == TrialState.COMPLETE)


def report(objective: str, studies: list[list[FrozenTrial]]) -> None:
    """Print each rule's epochs and best loss relative to the unpruned studies."""
    base = [
        (
            sum(len(t.intermediate) for t in trials),
            min(t.value for t in trials if t.state == TrialState.COMPLETE),
        )
        for trials in studies
    ]
    base_epochs = statistics.fmean(e for e, _ in base)
    base_loss = statistics.fmean(v for _, v in base)
    print(
        f"\n{objective}: the unpruned TPE studies of {len(studies)} seeds, replayed "
        f"({base_epochs:.0f} epochs, best loss {base_loss:.4g}: means)"
    )
    print("| rule | epochs / unpruned | best loss / unpruned | seeds losing their best |")
    print("|---|---|---|---|")
    for label, (name, options) in RULES.items():
        pruner = make_pruner(name, options)
        results = [replay(trials, pruner) for trials in studies]
        epochs = statistics.fmean(e for e, _ in results)
        loss = statistics.fmean(v for _, v in results)
        lost = sum(v > b for (_, v), (_, b) in zip(results, base, strict=True))
        print(
            f"| {label} | {epochs / base_epochs:.2f} | {loss / base_loss:.3f} | "
            f"{lost}/{len(studies)} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--objectives", default="mnist_mlp")
    parser.add_argument("--storage", help="a storage URL to keep (and reuse) the studies in")
    args = parser.parse_args()
    logging.getLogger("hpo").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        storage = args.storage or f"sqlite:///{Path(scratch) / 'replay.db'}"
        for objective in args.objectives.split(","):
            studies = []
            for seed in range(args.seeds):
                studies.append(unpruned_trials(objective, seed, storage))
                print(
                    f"  {objective} seed {seed}: unpruned study done", file=sys.stderr, flush=True
                )
            report(objective, studies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
