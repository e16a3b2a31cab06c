"""What model-based samplers learn from: trials in the space's unit-cube encoding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hpo.space import Space
from hpo.trial import FrozenTrial, TrialState


@dataclass(frozen=True)
class History:
    """The study so far, as arrays. Inactive coordinates are NaN."""

    x: np.ndarray  # (n, d) completed trials
    loss: np.ndarray  # (n,) their values, negated when maximizing: lower is better
    number: np.ndarray  # (n,) their trial numbers, older first
    pending: np.ndarray  # (m, d) trials running or queued: points being evaluated

    def __len__(self) -> int:
        return len(self.loss)


class HistoryEncoder:
    """Encodes each finished trial once; a finished trial never changes."""

    def __init__(self) -> None:
        self._rows: dict[tuple[Space, int, int], np.ndarray] = {}

    def __call__(self, space: Space, trials: Sequence[FrozenTrial],
                 direction: str = "minimize") -> History:
        sign = 1.0 if direction == "minimize" else -1.0
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        pending = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        d = len(space)
        x = np.array([self._row(space, t) for t in done]).reshape(len(done), d)
        return History(
            x=x, loss=np.array([sign * t.value for t in done], dtype=float),
            number=np.array([t.number for t in done], dtype=int),
            pending=space.encode_many([t.params for t in pending]).reshape(len(pending), d))

    def _row(self, space: Space, trial: FrozenTrial) -> np.ndarray:
        key = (space, trial.trial_id, trial.number)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = space.encode(trial.params)
        return row
