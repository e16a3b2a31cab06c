"""Trials: their states, the stored record (FrozenTrial) and the live Trial.

The objective receives a live `Trial`: it reads the sampled parameters,
suggests new ones (Optuna's define-by-run API), reports intermediate values
and sets attributes. Every read elsewhere — `study.trials`, samplers, the
CLI — sees `FrozenTrial` records, plain data loaded from storage.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hpo.errors import SpaceError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hpo.study import Study


SAMPLE_INDEX = "sample"  # system attribute: a sampled trial's index among sampled trials
ASK_SECONDS = "ask_s"  # system attribute: how long the sampler took to propose the point


class TrialState(StrEnum):
    WAITING = "WAITING"  # enqueued, not yet claimed by a worker
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    @property
    def is_finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class FrozenTrial:
    """One stored trial. Times are seconds since the epoch (UTC)."""

    trial_id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)  # step -> value
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    worker: str | None = None  # "host:pid" of the process that ran it
    error: str | None = None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate) if self.intermediate else None

    @property
    def sample_index(self) -> int | None:
        """n for the n-th trial whose point the sampler chose; None if enqueued or a retry."""
        return self.system_attrs.get(SAMPLE_INDEX)

    @property
    def ask_seconds(self) -> float | None:
        """How long the sampler took to propose this trial's point; None if not sampled."""
        return self.system_attrs.get(ASK_SECONDS)

    @property
    def finish_order(self) -> tuple[float, int]:
        """A sort key: when the trial finished (unfinished ones last), then its number."""
        return (self.finished_at if self.finished_at is not None else math.inf, self.number)

    @property
    def counts_toward_budget(self) -> bool:
        """Finished trials count, except failures whose point was re-queued.

        A trial lost with its worker or interrupted by Ctrl-C is evaluated
        again as a new trial; only that retry counts.
        """
        return self.state.is_finished and "requeued_as" not in self.system_attrs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for --json output and export)."""
        return {
            "number": self.number,
            "state": str(self.state),
            "value": self.value,
            "params": self.params,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "intermediate": {
                str(k): v if math.isfinite(v) else None
                for k, v in sorted(self.intermediate.items())
            },
            "heartbeat_at": self.heartbeat_at,
            "worker": self.worker,
            "error": self.error,
            "user_attrs": self.user_attrs,
            "system_attrs": self.system_attrs,
        }


def completed_finite(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The completed trials whose value is a finite number, in their order (what plots
    and importance can place on an axis; a diverged network may score inf or NaN)."""
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]


class Trial:
    """The handle an objective receives for one evaluation.

    `params` holds the sampled values of the declared space (active ones
    only). `suggest_*` return a declared parameter's value, or sample a new
    parameter with the study's sampler; a new parameter is added to the
    study's space and persisted, so objectives written for Optuna run
    unchanged.
    """

    def __init__(self, study: Study, record: FrozenTrial) -> None:
        self._study = study
        self._record = record
        self._params = dict(record.params)
        self._user_attrs = dict(record.user_attrs)
        self._intermediate = dict(record.intermediate)

    @property
    def number(self) -> int:
        return self._record.number

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._user_attrs)

    @property
    def intermediate_values(self) -> dict[int, float]:
        """What this trial has reported so far: step -> value."""
        return dict(self._intermediate)

    @property
    def study(self) -> Study:
        return self._study

    # -- define-by-run suggestions (Optuna-compatible signatures) ----------

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        spec = {"name": name, "type": "float", "low": low, "high": high, "log": log}
        if step is not None:
            spec["step"] = step
            spec["high"] = _divisible_high(name, low, high, step)
        return self._suggest(spec)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        spec = {"name": name, "type": "int", "low": low, "high": high, "log": log}
        if step != 1:
            spec["step"] = step
            spec["high"] = _divisible_high(name, low, high, step)
        return self._suggest(spec)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._suggest({"name": name, "type": "categorical", "choices": list(choices)})

    def _suggest(self, spec: dict[str, Any]) -> Any:
        name = spec["name"]
        if name in self._params:
            self._study._check_suggest_kind(name, spec["type"])
            return self._params[name]
        if name in self._study.space:
            raise SpaceError(
                f"parameter {name!r} is declared in the study's space but is "
                "not active in this trial (its branch was not chosen)"
            )
        if spec["type"] != "categorical" and spec["low"] == spec["high"]:
            value = spec["low"]  # a range of one value, as Optuna allows
        else:
            value = self._study._sample_new_param(spec, self._record)
        self._params[name] = value
        # stored at once, so that a retry after a crash evaluates the same point
        self._study.storage.set_params(self._record.trial_id, self._params)
        return value

    # -- reports and attributes ----------------------------------------------

    def report(self, value: float, step: int) -> None:
        """Store an intermediate value (a validation loss after each epoch, say)."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"report: step must be a non-negative integer, got {step!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"report: value must be a number, got {value!r}")
        if self._study.storage.add_intermediate(self._record.trial_id, int(step), float(value)):
            self._intermediate[int(step)] = float(value)
        else:
            warnings.warn(
                f"trial {self.number}: step {step} was already reported; the new value is ignored",
                stacklevel=2,
            )

    def should_prune(self) -> bool:
        """Whether the study's pruner says to stop this trial now.

        If so, stop and raise `hpo.TrialPruned`: the trial is stored as PRUNED
        with its last reported value and step.
        """
        return self._study._should_prune(
            replace(self._record, intermediate=dict(self._intermediate))
        )

    def set_user_attr(self, key: str, value: Any) -> None:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise TypeError(f"user attribute {key!r}: {value!r} cannot be stored as JSON") from None
        self._user_attrs[key] = value
        self._study.storage.set_user_attrs(self._record.trial_id, self._user_attrs)


def _divisible_high(name: str, low: float, high: float, step: float) -> float:
    """Optuna's rule: a step that does not divide the range shortens the range."""
    if step <= 0 or high < low:
        return high  # the space reports the problem
    count = math.floor((high - low) / step + 1e-9)
    new_high = low + count * step
    if isinstance(low, int) and isinstance(step, int):
        new_high = int(new_high)
    elif not math.isclose(new_high, high, rel_tol=1e-9, abs_tol=1e-12):
        new_high = float(f"{new_high:.15g}")
    else:
        return high
    if new_high != high:
        warnings.warn(
            f"parameter {name!r}: step {step} does not divide [{low}, {high}]; "
            f"the range becomes [{low}, {new_high}]",
            stacklevel=4,
        )
    return new_high


def as_objective_value(result: Any) -> float:
    """Check what an objective returned: a finite number, else ValueError.

    Anything float() takes that is not text or a boolean counts as a number:
    NumPy and PyTorch scalars, 0-d arrays, Decimal.
    """
    if isinstance(result, bool | str | bytes) or not hasattr(result, "__float__"):
        raise ValueError(
            f"objective returned {type(result).__name__} {result!r:.80}, expected a number"
        )
    try:
        value = float(result)
    except (TypeError, ValueError):
        raise ValueError(
            f"objective returned {type(result).__name__} {result!r:.80}, expected a single number"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"objective returned {value}, expected a finite number")
    return value
