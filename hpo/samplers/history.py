"""What model-based samplers learn from: trials in the space's unit-cube encoding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hpo.direction import Direction
from hpo.records import FrozenTrial, TrialState
from hpo.space import Space


@dataclass(frozen=True)
class History:
    """The study so far, as arrays. Inactive coordinates are NaN."""

    x: np.ndarray  # (n, d) completed trials
    loss: np.ndarray  # (n,) their values, negated when maximizing: lower is better
    number: np.ndarray  # (n,) their trial numbers, older first
    pending: np.ndarray  # (m, d) trials running or queued: points being evaluated
    pruned_x: np.ndarray  # (p, d) pruned trials that reported a value
    pruned_loss: np.ndarray  # (p,) their last reported values, negated when maximizing
    pruned_step: np.ndarray  # (p,) the step of that value

    def __len__(self) -> int:
        return len(self.loss)


class HistoryEncoder:
    """Encodes each finished trial once; a finished trial never changes."""

    def __init__(self) -> None:
        self._rows: dict[Space, dict[tuple[int, int], np.ndarray]] = {}

    def __call__(
        self, space: Space, trials: Sequence[FrozenTrial], direction: Direction = Direction.MINIMIZE
    ) -> History:
        sign = direction.sign
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        pending = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        pruned = [
            t
            for t in trials
            if t.state == TrialState.PRUNED
            and t.last_step is not None
            and np.isfinite(t.intermediate[t.last_step])
        ]
        d = len(space)
        rows = self._rows.setdefault(space, {})  # (hashing a space once, not per trial)
        x = np.array([self._row(space, rows, t) for t in done]).reshape(len(done), d)
        return History(
            x=x,
            loss=np.array([sign * t.value for t in done], dtype=float),
            number=np.array([t.number for t in done], dtype=int),
            pending=space.encode_many([t.params for t in pending]).reshape(len(pending), d),
            pruned_x=np.array([self._row(space, rows, t) for t in pruned]).reshape(len(pruned), d),
            pruned_loss=np.array([sign * t.intermediate[t.last_step] for t in pruned], dtype=float),
            pruned_step=np.array([t.last_step for t in pruned], dtype=int),
        )

    @staticmethod
    def _row(
        space: Space, rows: dict[tuple[int, int], np.ndarray], trial: FrozenTrial
    ) -> np.ndarray:
        key = (trial.trial_id, trial.number)
        row = rows.get(key)
        if row is None:
            row = rows[key] = space.encode(trial.params)
        return row
