"""Pruners, looked up by name: stop a trial whose intermediate values say it is hopeless.

A pruner is pure: ``pruner.prune(trial, trials, direction) -> bool`` reads the
trial (its intermediate values, the latest just reported) and the study's
other trials, and never touches storage. With several workers, `trials`
holds everybody's values. Steps are what the objective passes to
`trial.report` (epochs, for the bundled networks).

- none: never prunes.
- median: after `n_warmup_steps`, and once `n_startup_trials` trials have
  completed, prune if the trial's best value so far is worse than the
  median of the completed trials' values at the same step (Optuna's
  MedianPruner; the Google Vizier "median stopping rule", Golovin et al.,
  2017). Trials that did not report that step do not vote; fewer than
  `n_min_trials` voters decide nothing.
- asha: asynchronous successive halving (Li et al., 2020, "A System for
  Massively Parallel Hyperparameter Tuning", Algorithm 2). Rungs sit at
  steps min_resource x reduction_factor^(k + min_early_stopping_rate); a
  trial that reaches a rung continues only if its value there is among the
  best 1/reduction_factor of all values recorded at that rung. A trial's
  value at a rung is, by default, its best value up to the rung
  (rung_value = "best"): the bundled objectives return their best epoch,
  and one noisy epoch should not decide; rung_value = "last" is the
  paper's rule, the last value at or before the rung (docs/pruning.md
  compares the two).
- hyperband: several brackets of successive halving with rates 0, 1, ...;
  a trial's bracket is drawn from its number, weighted by the brackets'
  budgets, and it competes only inside its bracket (Li et al., 2018,
  "Hyperband", as Optuna's HyperbandPruner).
- threshold: prune when the value leaves [lower, upper] or is NaN (the
  article's "error too high" rule, generalized).
- patience: wraps another pruner; prunes only once the trial has not
  improved by `min_delta` for `patience` steps and the wrapped pruner (if
  any) agrees.
"""

from __future__ import annotations

import functools
import math
import statistics
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from hpo.direction import Direction
from hpo.errors import PrunerError
from hpo.records import FrozenTrial, TrialState
from hpo.registry import OptionChecks, Registry

# what a trial scores at a rung: its best value up to the rung (default), or the last
# value it reported at or before the rung (Li et al.'s rule)
RUNG_VALUES = ("best", "last")


check = OptionChecks(PrunerError)  # the option checks: check.integer("median", ...)


class Pruner(Protocol):
    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        direction: Direction = Direction.MINIMIZE,
    ) -> bool:
        """Whether to stop `trial` now."""


class NopPruner:
    """Never prunes."""

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        direction: Direction = Direction.MINIMIZE,
    ) -> bool:
        return False


class MedianPruner:
    """Prune a trial whose best value so far is worse than the median at its step."""

    def __init__(
        self,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        n_min_trials: int = 1,
    ) -> None:
        self.n_startup_trials = check.integer("median", "n_startup_trials", n_startup_trials, 0)
        self.n_min_trials = check.integer("median", "n_min_trials", n_min_trials, 1)
        self.n_warmup_steps = check.integer("median", "n_warmup_steps", n_warmup_steps, 0)
        self.interval_steps = check.integer("median", "interval_steps", interval_steps, 1)

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        direction: Direction = Direction.MINIMIZE,
    ) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        if (step - self.n_warmup_steps) % self.interval_steps:
            return False
        completed = [
            t for t in trials if t.state == TrialState.COMPLETE and t.number != trial.number
        ]
        if len(completed) < self.n_startup_trials:
            return False
        peers = [v for t in completed if (v := _finite(t.intermediate.get(step))) is not None]
        if len(peers) < self.n_min_trials:
            return False  # too few trials reported this step to judge
        best = _best_so_far(trial, direction)
        if best is None:
            return True  # only NaN so far
        median = statistics.median(peers)
        return direction.is_better(median, best)


class SuccessiveHalvingPruner:
    """Asynchronous successive halving: continue only the best 1/reduction_factor at each rung."""

    def __init__(
        self,
        min_resource: int = 1,
        reduction_factor: int = 4,
        min_early_stopping_rate: int = 0,
        rung_value: str = "best",
        bracket: Callable[[int], bool] | None = None,
    ) -> None:
        self.min_resource = check.integer("asha", "min_resource", min_resource, 1)
        self.reduction_factor = check.integer("asha", "reduction_factor", reduction_factor, 2)
        self.min_early_stopping_rate = check.integer(
            "asha", "min_early_stopping_rate", min_early_stopping_rate, 0
        )
        self.rung_value = check.one_of("asha", "rung_value", rung_value, RUNG_VALUES)
        self._same_bracket = bracket  # (hyperband) which trials compete: by number

    def rung_steps(self, up_to: int) -> list[int]:
        """The rung steps (ascending) not beyond `up_to`."""
        rungs, k = [], 0
        while (
            step := self.min_resource * self.reduction_factor ** (k + self.min_early_stopping_rate)
        ) <= up_to:
            rungs.append(step)
            k += 1
        return rungs

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        direction: Direction = Direction.MINIMIZE,
    ) -> bool:
        steps = sorted(trial.intermediate)
        if not steps:
            return False
        previous = steps[-2] if len(steps) > 1 else -1
        crossed = [r for r in self.rung_steps(steps[-1]) if r > previous]
        if not crossed:
            return False  # decisions happen when a trial reaches a rung
        rung = crossed[-1]
        value = self._at_rung(trial, rung, direction, judged=True)
        if value is None or math.isnan(trial.intermediate[steps[-1]]):
            return True  # diverged: NaN now, or nothing but NaN
        competing = [
            v
            for t in trials
            if t.number != trial.number
            and (self._same_bracket is None or self._same_bracket(t.number))
            and (v := self._at_rung(t, rung, direction)) is not None
        ]
        competing.append(value)
        kept = max(1, len(competing) // self.reduction_factor)
        ranked = sorted(competing, key=direction.loss)
        return direction.is_better(ranked[kept - 1], value)

    def _at_rung(
        self, trial: FrozenTrial, rung: int, direction: Direction, judged: bool = False
    ) -> float | None:
        """The trial's value at the rung: its best up to there, or its last there.

        A trial that reported nothing up to the rung (its first report came
        after it) has no value there: as a competitor it is left out; the
        trial being judged is judged by that first report, all it has.
        """
        if trial.last_step is None or trial.last_step < rung:
            return None  # it did not get that far
        steps = [s for s in trial.intermediate if s <= rung]
        if not steps:
            if not judged:
                return None
            steps = [min(trial.intermediate)]
        if self.rung_value == "last":
            return _finite(trial.intermediate[max(steps)])
        values = [v for s in steps if not math.isnan(v := trial.intermediate[s])]
        return direction.best(values) if values else None


class HyperbandPruner:
    """Brackets of successive halving; each trial competes inside its own bracket."""

    def __init__(
        self,
        min_resource: int = 1,
        max_resource: int = 100,
        reduction_factor: int = 3,
        rung_value: str = "best",
    ) -> None:
        self.min_resource = check.integer("hyperband", "min_resource", min_resource, 1)
        self.max_resource = check.integer("hyperband", "max_resource", max_resource, 1)
        self.reduction_factor = check.integer("hyperband", "reduction_factor", reduction_factor, 2)
        if self.max_resource < self.min_resource:
            raise PrunerError(
                "hyperband: max_resource must be at least min_resource, got "
                f"{max_resource} < {min_resource}"
            )
        ratio = self.max_resource / self.min_resource
        self.n_brackets = math.floor(math.log(ratio, self.reduction_factor) + 1e-9) + 1
        # bracket s starts halving at rate s; its budget (Li et al., 2018, eq. for B) weighs
        # how many trials it gets
        self._budgets = [
            self.reduction_factor ** (self.n_brackets - 1 - s) / (s + 1)
            for s in range(self.n_brackets)
        ]
        self.rung_value = check.one_of("hyperband", "rung_value", rung_value, RUNG_VALUES)
        self._halvings = [
            SuccessiveHalvingPruner(
                self.min_resource,
                self.reduction_factor,
                s,
                rung_value,
                bracket=functools.partial(self._in_bracket, s),
            )
            for s in range(self.n_brackets)
        ]

    def _in_bracket(self, bracket: int, number: int) -> bool:
        return self.bracket(number) == bracket

    def bracket(self, number: int) -> int:
        """The bracket of trial `number`: a deterministic draw weighted by budget."""
        point = zlib.crc32(f"hyperband:{number}".encode()) / 2**32 * sum(self._budgets)
        for s, budget in enumerate(self._budgets):
            point -= budget
            if point < 0:
                return s
        return self.n_brackets - 1

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        direction: Direction = Direction.MINIMIZE,
    ) -> bool:
        return self._halvings[self.bracket(trial.number)].prune(trial, trials, direction)


class ThresholdPruner:
    """Prune when the value leaves [lower, upper] (either may be omitted) or is NaN."""

    def __init__(
        self, lower: float | None = None, upper: float | None = None, n_warmup_steps: int = 0
    ) -> None:
        for name, bound in (("lower", lower), ("upper", upper)):
            if bound is not None:
                check.number("threshold", name, bound)
        if lower is None and upper is None:
            raise PrunerError(
                "threshold: give lower, upper or both (in the study file's "
                "[pruner] table, or pruner_options in Python: --pruner takes "
                "only a name)"
            )
        if lower is not None and upper is not None and lower > upper:
            raise PrunerError(f"threshold: lower ({lower}) must not exceed upper ({upper})")
        self.lower, self.upper = lower, upper
        self.n_warmup_steps = check.integer("threshold", "n_warmup_steps", n_warmup_steps, 0)

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        direction: Direction = Direction.MINIMIZE,
    ) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        value = trial.intermediate[step]
        if math.isnan(value):
            return True
        return (self.lower is not None and value < self.lower) or (
            self.upper is not None and value > self.upper
        )


class PatientPruner:
    """Prune only after `patience` steps without an improvement of `min_delta`."""

    def __init__(
        self, patience: int = 3, min_delta: float = 0.0, wrapped: Mapping[str, Any] | None = None
    ) -> None:
        self.patience = check.integer("patience", "patience", patience, 0)
        check.number("patience", "min_delta", min_delta, 0.0)
        self.min_delta = float(min_delta)
        if wrapped is not None and not (isinstance(wrapped, Mapping) and "name" in wrapped):
            raise PrunerError(
                "patience: wrapped must be a table with the pruner's name and its options"
            )
        self.wrapped = (
            make_pruner(wrapped["name"], {k: v for k, v in wrapped.items() if k != "name"})
            if wrapped
            else None
        )

    def prune(
        self,
        trial: FrozenTrial,
        trials: Sequence[FrozenTrial],
        direction: Direction = Direction.MINIMIZE,
    ) -> bool:
        steps = sorted(trial.intermediate)
        if len(steps) <= self.patience:
            return False
        values = [direction.loss(trial.intermediate[s]) for s in steps]
        before = [v for v in values[: -self.patience] if not math.isnan(v)]
        recent = [v for v in values[-self.patience :] if not math.isnan(v)]
        improved = before and recent and min(recent) < min(before) - self.min_delta
        if improved or not before:
            return False
        return self.wrapped is None or self.wrapped.prune(trial, trials, direction)


PRUNERS = Registry(
    "pruner",
    {
        "none": "hpo.pruners:NopPruner",
        "median": "hpo.pruners:MedianPruner",
        "asha": "hpo.pruners:SuccessiveHalvingPruner",
        "hyperband": "hpo.pruners:HyperbandPruner",
        "threshold": "hpo.pruners:ThresholdPruner",
        "patience": "hpo.pruners:PatientPruner",
    },
    PrunerError,
    context=frozenset({"bracket"}),  # constructor arguments that are not options
)


def make_pruner(name: str, options: Mapping[str, Any] | None = None) -> Pruner:
    """Build a pruner by name; unknown names, options and bad values raise PrunerError."""
    pruner: Pruner = PRUNERS.make(name, options)
    return pruner


def check_pruner_objectives(name: str, n_objectives: int) -> None:
    """The pruners judge one value per step: a study of several objectives has none."""
    if n_objectives > 1 and name != "none":
        raise PrunerError(
            f"pruner {name!r} judges one objective; a study of {n_objectives} objectives "
            'cannot be pruned (pruner = "none")'
        )


def pruner_options(name: str) -> list[tuple[str, Any]]:
    return PRUNERS.options(name)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _best_so_far(trial: FrozenTrial, direction: Direction) -> float | None:
    values = [v for v in trial.intermediate.values() if not math.isnan(v)]
    return direction.best(values) if values else None
