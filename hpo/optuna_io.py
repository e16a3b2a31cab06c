"""Studies from Optuna: `import_optuna` copies Optuna studies into an hpo database, so
that `hpo resume` (or `study.optimize`) continues a study Optuna started.

The Optuna side is read through Optuna's public API only (`RDBStorage`,
`JournalStorage` with `journal.JournalFileBackend`, `get_all_study_names`,
`load_study`, `Study.get_trials`); Optuna is an optional dependency, imported
here when an import runs. The mapping (docs/optuna.md says the same for users):

- the study: its name (or `name`), direction and user attributes; a study
  with several objectives is refused (issue 21's multi-objective studies);
- distributions -> the study's define-by-run ("suggested") parameters, the
  first definition met per name in trial order (FloatDistribution -> float,
  IntDistribution -> int, CategoricalDistribution -> categorical); a later
  trial that used another range is kept as it is, with a warning. A range
  of one value is no parameter (hpo's `suggest_*` does not register it
  either). No declared space;
- trials, in number order, renumbered 0, 1, ... (Optuna's number is kept):
  COMPLETE with its value; PRUNED with its last intermediate value, as hpo
  stores a pruned trial; FAIL, its error saying it failed in Optuna;
  WAITING (enqueued) with its fixed parameters; RUNNING, which no live
  worker can finish, as FAIL "running in Optuna when imported" with its
  point queued again as a new WAITING trial, as hpo does for a lost trial.
  Parameters, intermediate values, user attributes and times (epoch seconds)
  are kept; Optuna's system attributes and trial number go under the
  trial's system attribute "optuna".

Each study is imported in one transaction (`Storage.import_study`): all of
it or nothing. Everything is checked before the first one is written.
"""

from __future__ import annotations

import inspect
import math
import secrets
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpo.checks import check_count, check_name, check_seed
from hpo.connection import choose_storage, parse_url
from hpo.direction import Direction
from hpo.errors import (
    DuplicateStudyError,
    HpoError,
    SpaceError,
    StorageError,
    StudyConfigError,
    StudyNotFoundError,
    did_you_mean,
)
from hpo.records import SEED_INDEX, FrozenTrial, StudyInfo, TrialState, completed_finite, value_of
from hpo.space import Space
from hpo.storage import Storage

OPTUNA_ATTR = "optuna"  # system attribute of an imported trial: Optuna's number and attributes
IMPORT_ATTR = "imported_from_optuna"  # user attribute of an imported study: where from
RUNNING_ERROR = "running in Optuna when imported"
SQLITE_HEADER = b"SQLite format 3\x00"
_INSTALL = "pip install optuna"


@dataclass(frozen=True)
class ImportedStudy:
    """What one study became: its hpo name, trial counts per state, and how to go on."""

    name: str
    optuna_name: str
    source: str  # the Optuna storage, as shown (no password)
    counts: dict[str, int]  # hpo trials per state
    requeued: int  # trials RUNNING in Optuna: FAIL now, their points queued again
    params: list[str]  # the define-by-run parameters, in first-seen order
    best: tuple[int, float] | None  # (number, value) of the best completed trial
    objective: str | None
    sampler: str
    budget: int | None
    counted: int  # trials that take a place in the budget
    notes: list[str] = field(default_factory=list)  # the warnings given

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "optuna_name": self.optuna_name,
            "source": self.source,
            "counts": self.counts,
            "requeued": self.requeued,
            "params": self.params,
            "best_trial": None if self.best is None else self.best[0],
            "best_value": None if self.best is None else self.best[1],
            "objective": self.objective,
            "sampler": self.sampler,
            "budget": self.budget,
            "counted": self.counted,
            "warnings": self.notes,
        }


@dataclass(frozen=True)
class _Plan:
    """One study, mapped and checked, ready to be written."""

    info: StudyInfo
    suggested: list[dict[str, Any]]
    trials: list[FrozenTrial]
    optuna_name: str
    notes: list[str]


def import_optuna(
    url: str,
    studies: str | Sequence[str] | None = None,
    storage: str | Storage | None = None,
    *,
    all_studies: bool = False,
    name: str | None = None,
    objective: str | None = None,
    sampler: str | None = None,
    trials: int | None = None,
    seed: int | None = None,
) -> list[ImportedStudy]:
    """Copy Optuna studies from `url` into the hpo database `storage`.

    `url`: an SQLAlchemy URL of an Optuna RDB database (SQLite, PostgreSQL,
    MySQL), the path of an Optuna SQLite file, or the path of an Optuna
    journal file. `studies`: the Optuna study names to copy; none: the only
    study there (or every one, with `all_studies`). `name`: the hpo name of
    the one study copied [default: Optuna's]. `objective`: a reference
    ("module:function" or "file.py:function") stored so that `hpo resume` can
    run it (Optuna's database holds none). `sampler`: for the trials to come
    [default: create_study's]. `trials`: the budget, a total that counts the
    imported trials. `storage`: as for the CLI, $HPO_STORAGE or ./hpo.db by
    default.
    """
    optuna = require_optuna()
    check_count(trials, "trials")
    check_seed(seed)
    ref = _objective_ref(objective)
    chosen_sampler = sampler if sampler is not None else _default_sampler()
    _check_sampler(chosen_sampler, seed)
    source, shown = open_source(optuna, url)
    try:
        wanted = _choose(optuna, source, shown, studies, all_studies, name)
        now = time.time()
        plans = [
            _plan(
                optuna.load_study(study_name=study_name, storage=source),
                shown,
                name or study_name,
                _Settings(ref, chosen_sampler, trials, seed, now),
            )
            for study_name in wanted
        ]
    finally:
        close_storage(source)
    store = storage if isinstance(storage, Storage) else Storage(choose_storage(storage))
    try:
        _check_free(store, [plan.info.name for plan in plans])
        return [_write(store, plan, shown) for plan in plans]
    finally:
        if store is not storage:
            store.close()


# -- Optuna, and its storage ------------------------------------------------------------


def require_optuna() -> Any:
    """The optuna module, or one error that says how to install it."""
    try:
        import optuna
    except ImportError:
        raise HpoError(
            f"importing Optuna studies needs Optuna, which is not installed: {_INSTALL}"
        ) from None
    try:  # journal.JournalFileBackend: Optuna 4.0 on (before: JournalFileStorage)
        from optuna.storages.journal import JournalFileBackend  # noqa: F401
    except ImportError:
        raise HpoError(
            f"importing Optuna studies needs Optuna 4.0 or newer (found "
            f"{optuna.__version__}): {_INSTALL} --upgrade"
        ) from None
    return optuna


def open_source(optuna: Any, url: str) -> tuple[Any, str]:
    """An Optuna storage for `url` and how to name it in messages.

    A URL with '://' is an RDB database; else a path: an SQLite file if it
    starts with SQLite's header, otherwise a journal file. Nothing is created
    or written: a missing SQLite file is an error, not a new empty database.
    """
    if url.startswith(("redis://", "rediss://")):
        raise StorageError(
            "an Optuna journal in Redis is not read here: copy the study into an RDB "
            "database or a journal file with Optuna (optuna.copy_study), then import that"
        )
    if "://" in url:
        parsed = parse_url(url)
        shown = parsed.render_as_string(hide_password=True)
        if parsed.get_backend_name() == "sqlite":
            _check_file(Path(parsed.database or ""), shown)
        return _rdb(optuna, url, shown), shown
    path = Path(url)
    _check_file(path, url)
    with path.open("rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head == SQLITE_HEADER:
        return _rdb(optuna, f"sqlite:///{path.resolve()}", url), url
    return _journal(optuna, path), url


def _check_file(path: Path, shown: str) -> None:
    if not path.name or not path.exists():
        raise StorageError(
            f"no such file: {shown} (give an Optuna journal file, an Optuna SQLite file, "
            "or the SQLAlchemy URL of an Optuna database)"
        )
    if not path.is_file():
        raise StorageError(f"{shown} is not a file")


def _rdb(optuna: Any, url: str, shown: str) -> Any:
    """RDBStorage without creating tables: a database without Optuna's fails on reading
    its version table, before anything is written."""
    try:
        return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, said in one line
        causes = _causes(exc)
        if any("version_info" in str(cause) for cause in causes):
            raise StorageError(f"{shown} is not an Optuna database (no Optuna tables)") from None
        raise StorageError(
            f"cannot read Optuna database {shown}: {_first_line(causes[-1])}"
        ) from None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from (Optuna wraps the driver's error)."""
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 10:
        chain.append(chain[-1].__cause__)
    return chain


def _journal(optuna: Any, path: Path) -> Any:
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # noqa: BLE001 - a file of any content: said in one line
        raise StorageError(
            f"{path} is neither an Optuna database nor an Optuna journal file "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def close_storage(source: Any) -> None:
    """Let an RDBStorage's connections go (a journal holds none open)."""
    engine = getattr(source, "engine", None)
    if engine is not None:
        source.remove_session()
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _choose(
    optuna: Any,
    source: Any,
    shown: str,
    studies: str | Sequence[str] | None,
    all_studies: bool,
    name: str | None,
) -> list[str]:
    """The Optuna study names to import, checked against those in the source."""
    available = list(optuna.get_all_study_names(source))
    given = [studies] if isinstance(studies, str) else list(studies or [])
    if given and all_studies:
        raise StudyConfigError("give study names or all_studies (--all), not both")
    for study in given:
        if study not in available:
            listed = f"; it has: {', '.join(available)}" if available else ""
            raise StudyNotFoundError(
                f"no Optuna study named {study!r} in {shown}"
                f"{did_you_mean(study, available)}{listed}"
            )
    if not available:
        raise StudyNotFoundError(f"{shown} holds no Optuna studies")
    wanted = list(dict.fromkeys(given)) or available
    if not given and not all_studies and len(available) > 1:
        raise StudyConfigError(
            f"{shown} holds {len(available)} Optuna studies ({', '.join(available)}): "
            "choose with --study NAME (repeatable), or --all"
        )
    if name is not None and len(wanted) > 1:
        raise StudyConfigError(f"--name renames one study; {len(wanted)} were chosen")
    return wanted


# -- the hpo side: settings --------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    objective: str | None
    sampler: str
    budget: int | None
    seed: int | None
    now: float


def _default_sampler() -> str:
    """The sampler `hpo.create_study` uses when given none (read, so the two never differ)."""
    import hpo

    default = inspect.signature(hpo.create_study).parameters["sampler"].default
    if not isinstance(default, str):
        raise TypeError(f"create_study's default sampler is not a name: {default!r}")
    return default


def _check_sampler(sampler: str, seed: int | None) -> None:
    from hpo.samplers import make_sampler

    make_sampler(sampler, None, seed or 0).check(Space())  # no declared space: define-by-run


def _objective_ref(objective: str | None) -> str | None:
    """The reference to store: loaded now, so a wrong one fails before anything is written."""
    if objective is None:
        return None
    from hpo.objectives import load_objective

    return load_objective(objective).ref


def _check_free(store: Storage, names: Sequence[str]) -> None:
    taken = {summary.info.name for summary in store.list_studies()}
    for study in names:
        if study in taken:
            raise DuplicateStudyError(
                f"a study named {study!r} already exists in {store.display_url}; "
                "import under another name with --name, or delete it first (hpo delete)"
            )


# -- the mapping ---------------------------------------------------------------------


def _plan(study: Any, shown: str, hpo_name: str, settings: _Settings) -> _Plan:
    """One Optuna study as an hpo study, its parameters and its trials (nothing written)."""
    check_name(hpo_name)
    if len(study.directions) != 1:
        raise StudyConfigError(
            f"Optuna study {study.study_name!r} has {len(study.directions)} objectives; "
            "studies of several objectives are not available in hpo yet (issue 21: "
            "several objectives at once). Nothing was imported"
        )
    optuna_trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    specs, notes = suggested_specs(optuna_trials)
    trials = hpo_trials(optuna_trials, settings.now)
    counted = sum(t.counts_toward_budget for t in trials)
    if settings.budget is not None and settings.budget < counted:
        raise StudyConfigError(
            f"Optuna study {study.study_name!r} has {counted} trials that count toward a "
            f"budget; --trials is the total and cannot be below that"
        )
    starts = [t.started_at for t in trials if t.started_at is not None]
    info = StudyInfo(
        study_id=-1,
        name=hpo_name,
        directions=(Direction(study.direction.name.lower()),),
        space=[],
        sampler=settings.sampler,
        sampler_options={},
        objective=settings.objective,
        objective_options={},
        budget=settings.budget,
        seed=secrets.randbits(31) if settings.seed is None else settings.seed,
        created_at=min(starts, default=settings.now),
        user_attrs={
            **jsonable(study.user_attrs),
            IMPORT_ATTR: {"source": shown, "study": study.study_name, "at": settings.now},
        },
    )
    return _Plan(info, list(specs.values()), trials, study.study_name, notes)


def spec_of(name: str, distribution: Any) -> dict[str, Any] | None:
    """hpo's spec of an Optuna distribution; None for a range of one value."""
    kind = type(distribution).__name__
    if kind == "CategoricalDistribution":
        return {"name": name, "type": "categorical", "choices": list(distribution.choices)}
    if kind not in ("FloatDistribution", "IntDistribution"):
        raise SpaceError(f"parameter {name!r}: unknown Optuna distribution {distribution!r}")
    if distribution.low == distribution.high:
        return None
    is_int = kind == "IntDistribution"
    spec: dict[str, Any] = {
        "name": name,
        "type": "int" if is_int else "float",
        "low": distribution.low,
        "high": distribution.high,
        "log": bool(distribution.log),
    }
    if distribution.step is not None and not (is_int and distribution.step == 1):
        spec["step"] = distribution.step
    return spec


def suggested_specs(
    optuna_trials: Sequence[Any],
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The first definition of each parameter in trial order, and a warning for each
    parameter a later trial used with another range."""
    specs: dict[str, dict[str, Any]] = {}
    first: dict[str, int] = {}
    changed: dict[str, list[int]] = {}
    for trial in optuna_trials:
        for name, distribution in trial.distributions.items():
            spec = spec_of(name, distribution)
            if spec is None:
                continue
            if name not in specs:
                Space.from_spec([spec])  # (hpo's checks: a SpaceError names the parameter)
                specs[name], first[name] = spec, trial.number
            elif spec != specs[name]:
                changed.setdefault(name, []).append(trial.number)
    notes = [
        f"parameter {name!r} changed its range in Optuna: trial {first[name]} defined it "
        f"first, trial(s) {_numbers(numbers)} used another; the study keeps the first "
        "(the other trials are kept as they ran)"
        for name, numbers in changed.items()
    ]
    return specs, notes


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    return shown + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")


def hpo_trials(optuna_trials: Sequence[Any], now: float) -> list[FrozenTrial]:
    """The trials in order, numbered 0, 1, ..., then a WAITING retry for each trial that
    was RUNNING in Optuna (stored FAIL, as a lost trial: see Storage.fail_and_requeue)."""
    records = [_record(trial, number, now) for number, trial in enumerate(optuna_trials)]
    retries: list[FrozenTrial] = []
    for position, (trial, record) in enumerate(zip(optuna_trials, records, strict=True)):
        if trial.state.name != "RUNNING":
            continue
        retry_number = len(records) + len(retries)
        retries.append(
            FrozenTrial(
                trial_id=-1,
                number=retry_number,
                state=TrialState.WAITING,
                params=record.params,
                system_attrs={
                    "retry_of": record.number,
                    "retry_reason": RUNNING_ERROR,
                    SEED_INDEX: record.seed_index,
                },
            )
        )
        attrs = {**record.system_attrs, "requeued_as": retry_number}
        records[position] = replace(record, system_attrs=attrs)
    return records + retries


_STATES = {  # Optuna's state name -> hpo's state of the imported trial
    "COMPLETE": TrialState.COMPLETE,
    "PRUNED": TrialState.PRUNED,
    "FAIL": TrialState.FAIL,
    "WAITING": TrialState.WAITING,
    "RUNNING": TrialState.FAIL,  # no live worker can finish it: re-queued (hpo_trials)
}


def _record(trial: Any, number: int, now: float) -> FrozenTrial:
    """One Optuna FrozenTrial as hpo's record (a RUNNING one as the FAIL it becomes)."""
    kind = trial.state.name
    intermediate = {int(step): float(v) for step, v in sorted(trial.intermediate_values.items())}
    params = dict(trial.params)
    value, error = None, None
    if kind == "COMPLETE":
        value = trial.value
    elif kind == "PRUNED":  # as hpo stores a pruned trial: its last reported value
        value = intermediate[max(intermediate)] if intermediate else trial.value
    elif kind == "FAIL":
        reason = trial.system_attrs.get("fail_reason")
        error = "failed in Optuna" + (f": {reason}" if reason else "")
    elif kind == "RUNNING":
        error = RUNNING_ERROR
    system_attrs: dict[str, Any] = {
        OPTUNA_ATTR: {"number": trial.number, "system_attrs": jsonable(trial.system_attrs)}
    }
    if kind == "WAITING":  # enqueued: its point is the fixed parameters
        params = {**jsonable(trial.system_attrs.get("fixed_params", {})), **params}
        system_attrs["enqueued"] = True
    started = _epoch(trial.datetime_start)
    finished = now if kind == "RUNNING" else _epoch(trial.datetime_complete)
    return FrozenTrial(
        trial_id=-1,
        number=number,
        state=_STATES[kind],
        params=params,
        value=None if value is None else float(value),
        intermediate=intermediate,
        started_at=started,
        finished_at=finished,
        error=error,
        user_attrs=jsonable(trial.user_attrs),
        system_attrs=system_attrs,
    )


def _epoch(moment: Any) -> float | None:
    """Optuna's naive local datetimes (datetime.now()) as seconds since the epoch."""
    return None if moment is None else moment.timestamp()


def jsonable(value: Any) -> Any:
    """Attributes as hpo stores them (strict JSON): a non-finite float as its name, a
    tuple as a list."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# -- writing ---------------------------------------------------------------------------


def _write(store: Storage, plan: _Plan, shown: str) -> ImportedStudy:
    info = store.import_study(plan.info, plan.suggested, plan.trials)
    for note in plan.notes:  # (once written: a refused import says only why)
        warnings.warn(f"study {info.name!r}: {note}", stacklevel=3)
    counts = {
        state.value: n
        for state in sorted(TrialState, key=lambda s: not s.is_finished)  # finished first
        if (n := sum(t.state == state for t in plan.trials))
    }
    complete = completed_finite(plan.trials)
    best = info.direction.best_of(complete, key=value_of) if complete else None
    return ImportedStudy(
        name=info.name,
        optuna_name=plan.optuna_name,
        source=shown,
        counts=counts,
        requeued=sum("requeued_as" in t.system_attrs for t in plan.trials),
        params=[spec["name"] for spec in plan.suggested],
        best=None if best is None else (best.number, value_of(best)),
        objective=info.objective,
        sampler=info.sampler,
        budget=info.budget,
        counted=sum(t.counts_toward_budget for t in plan.trials),
        notes=plan.notes,
    )
