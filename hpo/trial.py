"""The live trial: the handle an objective receives for one evaluation.

The objective reads the sampled parameters, suggests new ones (Optuna's
define-by-run API), reports intermediate values, asks whether to stop, sets
attributes and draws its own random numbers from `trial.rng`. The trial talks
to its study through the small `TrialHost` surface, so a local study and a
remote one can both run it. The stored record is `hpo.records.FrozenTrial`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from hpo.errors import InvalidValueError, SpaceError
from hpo.records import FrozenTrial, TrialState
from hpo.space import Param, Space
from hpo.streams import Purpose, stream


class TrialHost(Protocol):
    """What a live Trial needs from its study (`hpo.Study` provides it)."""

    @property
    def space(self) -> Space: ...

    @property
    def seed(self) -> int: ...

    def check_suggest_kind(self, name: str, kind: str) -> None:
        """SpaceError if `name` is a parameter of another kind than `kind`."""

    def sample_new_param(self, spec: dict[str, Any], record: FrozenTrial) -> Any:
        """A value for a parameter first met in suggest_* in this trial."""

    def should_prune(self, record: FrozenTrial) -> bool:
        """The pruner's decision on the trial with the values it reported so far."""

    def define_param(self, param: Param) -> Param:
        """The study's definition of a parameter the objective defines by suggest_*."""

    def store_params(self, trial_id: int, params: dict[str, Any]) -> None:
        """Persist a running trial's parameters as they grow."""

    def store_intermediate(self, trial_id: int, step: int, value: float) -> bool:
        """Persist one intermediate value; False if the step was already reported."""

    def store_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """Persist the trial's user attributes."""


class Trial:
    """The handle an objective receives for one evaluation.

    `params` holds the sampled values of the declared space (active ones
    only). `suggest_*` return a declared parameter's value, or sample a new
    parameter with the study's sampler; a new parameter is added to the
    study's space and persisted, so objectives written for Optuna run
    unchanged.
    """

    def __init__(self, study: TrialHost, record: FrozenTrial) -> None:
        self._study = study
        self._rng: np.random.Generator | None = None
        self._record = record
        self._params = dict(record.params)
        self._user_attrs = dict(record.user_attrs)
        self._intermediate = dict(record.intermediate)
        self._constraints = None if record.constraints is None else list(record.constraints)

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
    def system_attrs(self) -> dict[str, Any]:
        """hpo's own notes on the trial (its sample index, lease, ...), as stored when it
        started (Optuna's name)."""
        return dict(self._record.system_attrs)

    @property
    def distributions(self) -> dict[str, Param]:
        """Each parameter's definition in the study (Optuna's name: distributions)."""
        defs = self._record.param_defs
        return {name: defs[name] for name in self._params if name in defs}

    @property
    def datetime_start(self) -> dt.datetime | None:
        return self._record.datetime_start

    @property
    def intermediate_values(self) -> dict[int, float]:
        """What this trial has reported so far: step -> value."""
        return dict(self._intermediate)

    @property
    def study(self) -> TrialHost:
        """The study this trial belongs to (an `hpo.Study` when run locally)."""
        return self._study

    @property
    def rng(self) -> np.random.Generator:
        """The objective's own random numbers (initial weights, shuffling, dropout).

        Reproducible from the study's seed and the trial, and independent of the
        sampler's draws: the point a trial evaluates and the noise of its
        evaluation never share numbers (see `hpo.streams`). One generator per
        trial: successive uses continue its stream.
        """
        if self._rng is None:
            self._rng = stream(self._study.seed, Purpose.OBJECTIVE, self._record.seed_index)
        return self._rng

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

    def suggest(self, param: Param) -> Any:
        """Suggest a parameter by its definition (an `hpo.space` parameter, or one from
        `hpo.distributions`): what suggest_float, _int and _categorical do."""
        return self._suggest(param.to_spec())

    def _suggest(self, spec: dict[str, Any]) -> Any:
        name = spec["name"]
        if name in self._params:
            self._study.check_suggest_kind(name, spec["type"])
            if name not in self._study.space:  # given by an enqueued point, or drawn at start
                self._take_given(Space.from_spec([spec]).params[0])
            return self._params[name]
        if name in self._study.space:
            raise SpaceError(
                f"parameter {name!r} is declared in the study's space but is "
                "not active in this trial (its branch was not chosen)"
            )
        if spec["type"] != "categorical" and spec["low"] == spec["high"]:
            value = spec["low"]  # a range of one value, as Optuna allows
        else:
            value = self._study.sample_new_param(spec, self._record)
        self._params[name] = value
        # stored at once, so that a retry after a crash evaluates the same point
        self._study.store_params(self._record.trial_id, self._params)
        return value

    def _take_given(self, param: Param) -> None:
        """A value given for a parameter the objective defines only now (Optuna's
        enqueue-then-suggest): the study learns the definition; a value outside the
        range asked for is used as given, with a warning, as Optuna does."""
        self._study.define_param(param)
        value = self._params[param.name]
        if isinstance(value, str) and not param.contains(value):  # typed on the command line
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if param.contains(value):
            value = param.coerce(value)
        else:
            warnings.warn(
                f"trial {self.number}: the value {value!r} given for {param.name!r} is outside "
                "the range the objective asks for; it is used as given",
                stacklevel=4,
            )
        if value != self._params[param.name]:
            self._params[param.name] = value
            self._study.store_params(self._record.trial_id, self._params)

    # -- reports and attributes ----------------------------------------------

    def report(self, value: float, step: int) -> None:
        """Store an intermediate value (a validation loss after each epoch, say)."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise InvalidValueError(f"report: step must be a non-negative integer, got {step!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidValueError(f"report: value must be a number, got {value!r}")
        if self._study.store_intermediate(self._record.trial_id, int(step), float(value)):
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
        return self._study.should_prune(
            replace(self._record, intermediate=dict(self._intermediate))
        )

    def set_user_attr(self, key: str, value: Any) -> None:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise TypeError(f"user attribute {key!r}: {value!r} cannot be stored as JSON") from None
        self._user_attrs[key] = value
        self._study.store_user_attrs(self._record.trial_id, self._user_attrs)

    def set_constraints(self, values: Sequence[float]) -> None:
        """The trial's constraint values, stored with its outcome: it is feasible when
        every one is <= 0. Samplers prefer feasible points; the best trial and the
        Pareto front count feasible trials only."""
        checked: list[float] = []
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
                raise InvalidValueError(f"constraint {i} must be a number, got {value!r}")
            checked.append(float(value))
        self._constraints = checked

    @property
    def constraints(self) -> list[float] | None:
        return None if self._constraints is None else list(self._constraints)


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


def as_objective_value(result: Any, source: str = "objective returned") -> float:
    """Check what an objective returned: a finite number, else ValueError.

    Anything float() takes that is not text or a boolean counts as a number:
    NumPy and PyTorch scalars, 0-d arrays, Decimal. An integer too large for a
    float (10**400) is an error, not a crash. `source` begins the message.
    """
    if isinstance(result, bool | str | bytes) or not hasattr(result, "__float__"):
        raise ValueError(f"{source} {_describe(result)}, expected a number")
    try:
        value = float(result)
    except OverflowError:
        raise ValueError(
            f"{source} {_describe(result)}, too large for a floating-point number"
        ) from None
    except (TypeError, ValueError):
        raise ValueError(f"{source} {_describe(result)}, expected a single number") from None
    if not math.isfinite(value):
        raise ValueError(f"{source} {value}, expected a finite number")
    return value


def as_objective_values(result: Any, n: int, source: str = "objective returned") -> list[float]:
    """What an objective of a study of `n` objectives returned: a sequence of `n`
    finite numbers (a tuple, a list, a 1-d array), else ValueError."""
    if isinstance(result, str | bytes) or not hasattr(result, "__len__"):
        raise ValueError(f"{source} {_describe(result)}, expected {n} values, one per objective")
    items = list(result)
    if len(items) != n:
        raise ValueError(f"{source} {len(items)} values, expected {n} (one per objective)")
    return [
        as_objective_value(item, f"{source}, as objective {i},") for i, item in enumerate(items)
    ]


def _describe(result: Any) -> str:
    """'type repr' cut to 80 characters; an integer of thousands of digits has no repr."""
    if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > 256:
        return f"an integer of about {int(result.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(result)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real problem
        text = "<unprintable>"
    return f"{type(result).__name__} {text:.80}"


def create_trial(
    *,
    state: TrialState | str = TrialState.COMPLETE,
    value: float | None = None,
    values: Sequence[float] | None = None,
    params: Mapping[str, Any] | None = None,
    distributions: Mapping[str, Any] | None = None,
    user_attrs: Mapping[str, Any] | None = None,
    system_attrs: Mapping[str, Any] | None = None,
    intermediate_values: Mapping[int, float] | None = None,
    constraints: Sequence[float] | None = None,
) -> FrozenTrial:
    """A finished trial made by hand (Optuna's `create_trial`), for `study.add_trial`:
    a result known from elsewhere. `distributions`: each parameter's definition
    (`hpo.distributions`, or spec dicts); the study learns those it does not know.
    `values`: one per objective (for a study of several); `constraints`: as
    `trial.set_constraints` takes them (feasible when all <= 0)."""
    from hpo.distributions import named

    several = None
    if values is not None:
        if value is not None or not len(values):
            raise ValueError(f"give value or values (one per objective), got {value!r}, {values!r}")
        if len(values) == 1:
            value = values[0]
        else:
            several = [float(v) for v in values]
    now = time.time()
    return FrozenTrial(
        trial_id=-1,
        number=-1,
        state=TrialState(str(state).upper()),
        params=dict(params or {}),
        value=None if value is None else float(value),
        intermediate={int(k): float(v) for k, v in (intermediate_values or {}).items()},
        started_at=now,
        finished_at=now,
        user_attrs=dict(user_attrs or {}),
        system_attrs=dict(system_attrs or {}),
        param_defs=named(distributions or {}),
        objective_values=several,
        constraints=None if constraints is None else [float(c) for c in constraints],
    )
