"""The hypervolume history of a study (hpo.pareto.hypervolume_history) against the
plain way, the hypervolume of every completed trial recomputed after each trial.

The history keeps the front as trials come and recomputes only when it
changes; figures, reports and comparisons call it once per study. Random
points in the unit cube (uniform, so the front keeps changing), reference
point 1.1 in every objective; both ways must give the same values. Each is
timed `--runs` times (median), the two alternating so that both meet the
same load on a shared machine.

    python bench/hypervolume_history.py                   # 2 and 3 objectives, 500 trials
    python bench/hypervolume_history.py --trials 1000 --objectives 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from hpo.direction import Direction
from hpo.pareto import hypervolume, hypervolume_history, losses
from hpo.records import FrozenTrial, TrialState


def recomputed(
    trials: Sequence[FrozenTrial], directions: Sequence[Direction], reference: np.ndarray
) -> np.ndarray:
    """(n,): the reference: every completed trial's hypervolume recomputed after each."""
    out = np.zeros(len(trials))
    for i in range(len(trials)):
        done = [t for t in trials[: i + 1] if t.state == TrialState.COMPLETE]
        out[i] = hypervolume(losses(done, directions), reference)
    return out


def timed(fn: Callable[..., np.ndarray], *args: object) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--objectives", default="2,3")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'k':>2} {'trials':>6} {'history (s)':>12} {'recomputed (s)':>15} {'ratio':>7}")
    for k in map(int, args.objectives.split(",")):
        points = np.random.default_rng(0).random((args.trials, k))  # (n, k)
        trials = [
            FrozenTrial(i + 1, i, TrialState.COMPLETE, {}, None, objective_values=list(p))
            for i, p in enumerate(points)
        ]
        directions, reference = [Direction.MINIMIZE] * k, np.full(k, 1.1)
        fast, slow = [], []
        for _ in range(args.runs):
            seconds, ours = timed(hypervolume_history, trials, directions, reference)
            fast.append(seconds)
            seconds, plain = timed(recomputed, trials, directions, reference)
            slow.append(seconds)
            assert np.allclose(ours, plain)
        a, b = statistics.median(fast), statistics.median(slow)
        print(f"{k:>2} {args.trials:>6} {a:>12.3f} {b:>15.3f} {b / a:>7.0f}")


if __name__ == "__main__":
    main()
