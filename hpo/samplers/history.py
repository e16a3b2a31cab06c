"""What model-based samplers learn from: trials in the space's unit-cube encoding.

A study of several objectives gives its samplers a tuple of directions; its
trials' values are read as losses, one column per objective (`History.losses`).
Constraints (`trial.set_constraints`, feasible when every value is <= 0) are
read as a total violation, the sum of the positive parts (Deb, 2000, "An
efficient constraint handling method for genetic algorithms"): 0 when feasible.
"""

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
    losses: np.ndarray  # (n, k) every objective's value as a loss (column 0 is `loss`)
    violation: np.ndarray  # (n,) total constraint violation: 0 when feasible (or none set)

    @property
    def feasible(self) -> np.ndarray:
        """(n,) the completed trials whose constraints are met."""
        return self.violation <= 0

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
    loss: np.ndarray  # (N, k) values, or last reported value if pruned, before the sign
    number: np.ndarray  # (N,) trial numbers
    step: np.ndarray  # (N,) the step of a pruned trial's last report
    violation: np.ndarray  # (N,) total constraint violation


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
        self, space: Space, trials: Sequence[FrozenTrial], direction: Goal = Direction.MINIMIZE
    ) -> History:
        sign = signs(direction)  # (k,)
        table = self._last = self._table(space, trials, len(sign))
        done, pending, pruned = (table.kind == kind for kind in (DONE, PENDING, PRUNED))
        losses = sign * table.loss[done]  # (n, k)
        return History(
            x=table.x[done],
            loss=losses[:, 0],
            number=table.number[done],
            pending=table.x[pending],
            pruned_x=table.x[pruned],
            pruned_loss=sign[0] * table.loss[pruned, 0],
            pruned_step=table.step[pruned],
            losses=losses,
            violation=table.violation[done],
        )

    def _table(self, space: Space, trials: Sequence[FrozenTrial], k: int) -> _Table:
        """This call's table: the previous one's rows where the record is the same."""
        n, last = len(trials), self._last
        records = np.fromiter(trials, dtype=object, count=n)  # (N,)
        if (
            last is not None
            and len(last.records)
            and last.loss.shape[1] == k
            and (last.space is space or last.space == space)
        ):
            # C-level passes: where each record was, and whether the same object was there
            was = np.fromiter(map(last.position.get, map(id, trials), repeat(-1)), np.intp, n)
            same = np.fromiter(map(operator.is_, records, last.records[was]), bool, n)
            kind, x, violated = last.kind[was], last.x[was], last.violation[was]
            loss, number, step = last.loss[was], last.number[was], last.step[was]
        else:
            same = np.zeros(n, dtype=bool)
            kind, x = np.full(n, UNUSED, dtype=np.int8), np.full((n, len(space)), np.nan)
            loss, number, step = (
                np.full((n, k), np.nan),
                np.zeros(n, dtype=int),
                np.zeros(n, dtype=int),
            )
            violated = np.zeros(n)
        new = np.flatnonzero(~same)  # positions of records not seen last time
        for i in new.tolist():
            kind[i], loss[i], number[i], step[i], violated[i] = _read(trials[i], k)
        used = new[kind[new] != UNUSED]
        x[new] = np.nan
        x[used] = space.encode_many(
            [trials[i].params for i in used.tolist()], history=True
        )  # (k, d)
        position = dict(zip(map(id, trials), range(n), strict=True))
        return _Table(space, records, position, kind, x, loss, number, step, violated)


Goal = Direction | Sequence[Direction]  # what a study tells its sampler to aim for


def signs(direction: Goal) -> np.ndarray:
    """(k,): each objective's sign (+1 minimize, -1 maximize), for one direction or several."""
    if isinstance(direction, Direction):
        return np.array([direction.sign])
    return np.array([Direction.parse(d).sign for d in direction])


def violation(trial: FrozenTrial) -> float:
    """A trial's total constraint violation: the sum of its constraints' positive parts,
    0 when feasible; a NaN constraint is an infinite violation (never feasible)."""
    if not trial.constraints:
        return 0.0
    return float(
        sum(c if c > 0 else (math.inf if math.isnan(c) else 0.0) for c in trial.constraints)
    )


def _read(trial: FrozenTrial, k: int) -> tuple[int, np.ndarray | float, int, int, float]:
    """What a record is to the models: (kind, losses before the sign (k,), number, step,
    constraint violation).

    Completed trials count with their values, running and queued ones as
    pending points, pruned ones with their last reported value if it is
    finite (one objective only: a study of several is never pruned);
    failed trials and the rest are unused.
    """
    state, number, values = trial.state, trial.number, trial.values
    if state == TrialState.COMPLETE and values is not None and len(values) == k:
        return DONE, np.asarray(values, dtype=float), number, 0, violation(trial)
    if state in (TrialState.RUNNING, TrialState.WAITING):
        return PENDING, math.nan, number, 0, 0.0
    if k == 1 and state == TrialState.PRUNED and trial.intermediate:
        step = max(trial.intermediate)
        value = trial.intermediate[step]
        if math.isfinite(value):
            return PRUNED, float(value), number, step, 0.0
    return UNUSED, math.nan, number, 0, 0.0
