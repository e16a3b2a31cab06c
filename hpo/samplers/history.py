"""What model-based samplers learn from: trials in the space's unit-cube encoding."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

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


DONE, PENDING, PRUNED, UNUSED = 0, 1, 2, 3  # what a trial is to the models


@dataclass(frozen=True)
class _Table:
    """One call's trials, in its order, and what each record gives the History."""

    space: Space
    records: np.ndarray  # (N,) the FrozenTrials, held: no other object can take their ids
    position: dict[int, int]  # id(record) -> its position
    kind: np.ndarray  # (N,) DONE, PENDING, PRUNED or UNUSED
    x: np.ndarray  # (N, d) the encoded point; NaN rows where UNUSED
    loss: np.ndarray  # (N,) value, or last reported value if pruned, before the sign
    number: np.ndarray  # (N,) trial numbers
    step: np.ndarray  # (N,) the step of a pruned trial's last report


class HistoryEncoder:
    """Encodes the trials, reusing what the previous call read from the same records.

    A record (a FrozenTrial) is immutable -- a frozen dataclass, and nothing
    changes its params or reports in place: a trial that changes is stored
    and loaded as a new record -- so what it gives (its state, its point
    encoded by `space.encode`, its value) is the same whenever it is read. The
    encoder keeps the previous call's table, keyed by the records
    themselves (the very objects, which the table holds, so that no other
    object can take their ids), and reads afresh only the records it has not
    seen: the result is that of encoding every trial anew. Only the last
    call's table is kept, so memory stays bounded by one history. Matching
    10,000 records this way costs about a millisecond; encoding them, tens.
    """

    def __init__(self) -> None:
        self._last: _Table | None = None

    def __call__(
        self, space: Space, trials: Sequence[FrozenTrial], direction: Direction = Direction.MINIMIZE
    ) -> History:
        sign = direction.sign
        table = self._last = self._table(space, trials)
        done, pending, pruned = (table.kind == kind for kind in (DONE, PENDING, PRUNED))
        return History(
            x=table.x[done],
            loss=sign * table.loss[done],
            number=table.number[done],
            pending=table.x[pending],
            pruned_x=table.x[pruned],
            pruned_loss=sign * table.loss[pruned],
            pruned_step=table.step[pruned],
        )

    def _table(self, space: Space, trials: Sequence[FrozenTrial]) -> _Table:
        """This call's table: the previous one's rows where the record is the same."""
        n, last = len(trials), self._last
        records = np.fromiter(trials, dtype=object, count=n)  # (N,)
        if last is not None and len(last.records) and (last.space is space or last.space == space):
            # C-level passes: where each record was, and whether the same object was there
            was = np.fromiter(map(last.position.get, map(id, trials), repeat(-1)), np.intp, n)
            same = np.fromiter(map(operator.is_, records, last.records[was]), bool, n)
            kind, x = last.kind[was], last.x[was]
            loss, number, step = last.loss[was], last.number[was], last.step[was]
        else:
            same = np.zeros(n, dtype=bool)
            kind, x = np.full(n, UNUSED, dtype=np.int8), np.full((n, len(space)), np.nan)
            loss, number, step = np.full(n, np.nan), np.zeros(n, dtype=int), np.zeros(n, dtype=int)
        new = np.flatnonzero(~same)  # (k,) positions of records not seen last time
        for i in new.tolist():
            kind[i], loss[i], number[i], step[i] = _read(trials[i])
        used = new[kind[new] != UNUSED]
        x[new] = np.nan
        x[used] = space.encode_many(
            [trials[i].params for i in used.tolist()], history=True
        )  # (k, d)
        position = dict(zip(map(id, trials), range(n), strict=True))
        return _Table(space, records, position, kind, x, loss, number, step)


def _read(trial: FrozenTrial) -> tuple[int, float, int, int]:
    """What a record is to the models: (kind, loss before the sign, number, step).

    Completed trials count with their value, running and queued ones as
    pending points, pruned ones with their last reported value if it is
    finite; failed trials and the rest are unused.
    """
    state, number = trial.state, trial.number
    if state == TrialState.COMPLETE and trial.value is not None:
        return DONE, float(trial.value), number, 0
    if state in (TrialState.RUNNING, TrialState.WAITING):
        return PENDING, math.nan, number, 0
    if state == TrialState.PRUNED and trial.intermediate:
        step = max(trial.intermediate)
        value = trial.intermediate[step]
        if math.isfinite(value):
            return PRUNED, float(value), number, step
    return UNUSED, math.nan, number, 0
