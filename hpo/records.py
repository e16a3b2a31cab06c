"""Stored trials: their states and the FrozenTrial record.

Every read of a study — `study.trials`, samplers, pruners, the CLI, reports —
sees `FrozenTrial` records, plain data loaded from storage. The live handle an
objective receives is `hpo.trial.Trial`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.direction import Direction
    from hpo.space import Param

SAMPLE_INDEX = "sample"  # system attribute: a sampled trial's index among sampled trials
ASK_SECONDS = "ask_s"  # system attribute: how long the sampler took to propose the point
SEED_INDEX = "seed_index"  # system attribute of a retry: the seed index of its original
ENQUEUED_SEED_BASE = 1 << 32  # seed indices of trials enqueued by hand: this plus the number
LEASE_S = "lease_s"  # system attribute: seconds without a heartbeat before the trial is lost


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
    # the values of a study of several objectives, in their order (`value` is then None)
    objective_values: list[float] | None = None
    constraints: list[float] | None = None  # as the objective set them; feasible: all <= 0
    # the study's parameter definitions (one mapping shared by its records; a Study
    # attaches it), for `distributions`
    param_defs: Mapping[str, Param] = field(default_factory=dict, repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (Optuna's is a timedelta)."""
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
    def seed_index(self) -> int:
        """What keys this trial's random streams (hpo.streams): its sample index, a
        retry's original's, or for a trial enqueued by hand 2**32 plus its number."""
        if SAMPLE_INDEX in self.system_attrs:
            return int(self.system_attrs[SAMPLE_INDEX])
        return int(self.system_attrs.get(SEED_INDEX, ENQUEUED_SEED_BASE + self.number))

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

    # -- Optuna's names for the same data ---------------------------------------------

    @property
    def datetime_start(self) -> dt.datetime | None:
        """When it started, as a local naive datetime (as Optuna gives it)."""
        return None if self.started_at is None else dt.datetime.fromtimestamp(self.started_at)

    @property
    def datetime_complete(self) -> dt.datetime | None:
        return None if self.finished_at is None else dt.datetime.fromtimestamp(self.finished_at)

    @property
    def values(self) -> list[float] | None:
        """The objective values, one per objective ([value] for a study of one)."""
        if self.objective_values is not None:
            return list(self.objective_values)
        return None if self.value is None else [self.value]

    @property
    def feasible(self) -> bool:
        """Whether its constraints (if it has any) are all met: every value <= 0."""
        return self.constraints is None or all(c <= 0 for c in self.constraints)

    @property
    def intermediate_values(self) -> dict[int, float]:
        return dict(self.intermediate)

    @property
    def distributions(self) -> dict[str, Param]:
        """Each parameter's definition in the study (an `hpo.space` parameter: what
        Optuna calls its distribution)."""
        return {name: self.param_defs[name] for name in self.params if name in self.param_defs}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for --json output and export)."""
        return {
            "number": self.number,
            "state": str(self.state),
            "value": self.value,
            **({"values": self.objective_values} if self.objective_values is not None else {}),
            **({"constraints": self.constraints} if self.constraints is not None else {}),
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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], trial_id: int | None = None) -> FrozenTrial:
        """The record `to_dict` gave (as a client of `hpo serve` receives it); its
        trial_id, which to_dict leaves out, is `trial_id` or else the number."""
        number = int(data["number"])
        return cls(
            trial_id=number if trial_id is None else trial_id,
            number=number,
            state=TrialState(data["state"]),
            params=dict(data.get("params") or {}),
            value=data.get("value"),
            intermediate={
                int(k): math.nan if v is None else float(v)
                for k, v in (data.get("intermediate") or {}).items()
            },
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            heartbeat_at=data.get("heartbeat_at"),
            worker=data.get("worker"),
            error=data.get("error"),
            user_attrs=dict(data.get("user_attrs") or {}),
            system_attrs=dict(data.get("system_attrs") or {}),
            objective_values=data.get("values"),
            constraints=data.get("constraints"),
        )


def value_of(trial: FrozenTrial) -> float:
    """The value of a trial selected for having one (completed_finite, a COMPLETE or
    PRUNED trial with a value): what the type checker cannot see from the selection."""
    if trial.value is None:
        raise ValueError(f"trial {trial.number} ({trial.state}) has no value")
    return trial.value


def completed_finite(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The completed trials whose value is a finite number, in their order (what plots
    and importance can place on an axis; a diverged network may score inf or NaN)."""
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]


def error_summary(error: str | None) -> str:
    """The last line of a stored traceback: what went wrong, in one line."""
    if not error:
        return ""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def param_names(trials: Sequence[FrozenTrial]) -> list[str]:
    """Every parameter name seen, in first-seen order."""
    names: dict[str, None] = {}
    for trial in trials:
        names.update(dict.fromkeys(trial.params))
    return list(names)


OBJECTIVE_NAMES_ATTR = "objective_names"  # the study user attribute that names its objectives
# a study's own reference point for its hypervolume, in its values (comparisons set it)
REFERENCE_POINT_ATTR = "reference_point"


@dataclass(frozen=True)
class StudyInfo:
    """A study's definition as stored."""

    study_id: int
    name: str
    directions: tuple[Direction, ...]  # one per objective
    space: list[dict[str, Any]]  # the neutral spec of the declared space
    sampler: str
    sampler_options: dict[str, Any]
    objective: str | None  # a built-in name or "module:function" / "file.py:function"
    objective_options: dict[str, Any]
    budget: int | None  # total trials the study aims for; None: no limit
    seed: int
    created_at: float
    user_attrs: dict[str, Any] = field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> Direction:
        """The direction of a study of one objective."""
        if len(self.directions) != 1:
            from hpo.errors import StudyConfigError

            raise StudyConfigError(
                f"study {self.name!r} has {len(self.directions)} objectives "
                f"({', '.join(self.directions)}): it has directions, not one direction"
            )
        return self.directions[0]

    @property
    def n_objectives(self) -> int:
        return len(self.directions)

    @property
    def directions_text(self) -> str:
        """'minimize', or 'minimize, maximize' for a study of several objectives."""
        return ", ".join(self.directions)

    @property
    def objective_names(self) -> list[str] | None:
        """The objectives' names, if the study was given them (create_study's
        `objective_names`, kept in the user attribute of that name)."""
        names = self.user_attrs.get(OBJECTIVE_NAMES_ATTR)
        if isinstance(names, list) and len(names) == self.n_objectives:
            return [str(n) for n in names]
        return None

    def objective_label(self, index: int) -> str:
        """What figures and tables call objective `index`: 'error (minimize)', or
        'objective 0 (minimize)' when the study did not name its objectives."""
        names = self.objective_names
        name = names[index] if names else f"objective {index}"
        return f"{name} ({self.directions[index]})"


@dataclass(frozen=True)
class StudySummary:
    """A study with its trial counts per state, its best value and its last activity."""

    info: StudyInfo
    counts: dict[str, int]
    best_value: float | None
    last_activity: float | None = None  # when a trial last started or finished


@dataclass(frozen=True)
class TrialPage:
    """A page of a study's trials (Storage.trials_page) and how many the filter keeps."""

    trials: list[FrozenTrial]
    total: int
