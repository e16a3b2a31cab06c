"""hpo studies to Optuna: `export_optuna` writes an hpo study as an Optuna study (the
reverse of `hpo.optuna_io.import_optuna`), through Optuna's public API
(`create_study`, `FrozenTrial`, `Study.add_trials`).

The mapping (docs/optuna.md says the same for users):

- the study: its name (or `name`), direction and user attributes;
- each trial's distributions: those of the parameters it used, from the
  declared space (a branch is a categorical choice of its labels, the
  parameters under it only in the trials that chose it) or the study's
  define-by-run parameters; a value outside its parameter's range (an
  objective that changed a range) widens the distribution that trial gets;
- COMPLETE, PRUNED (with its last value) and FAIL as they are; WAITING as
  Optuna's enqueued trials (system attribute "fixed_params"), which Optuna
  runs first; RUNNING as FAIL, as nothing in Optuna will finish it;
- times as Optuna keeps them (naive local datetimes); hpo's number, error,
  worker and system attributes under the system attribute "hpo"; a trial
  imported from Optuna gets its original system attributes back.

The trials are added only once all of them have been built and checked;
if adding fails, the new Optuna study is deleted.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import DuplicateStudyError, StorageError
from hpo.optuna_io import (
    IMPORT_ATTR,
    OPTUNA_ATTR,
    SQLITE_HEADER,
    close_storage,
    jsonable,
    require_optuna,
)
from hpo.records import FrozenTrial, TrialState
from hpo.space import Branch, Categorical, Numeric, Param

if TYPE_CHECKING:
    from hpo.study import Study

HPO_ATTR = "hpo"  # system attribute of an exported trial: what hpo knew of it
RUNNING_ERROR = "running in hpo when exported"


def export_optuna(study: Study, url: str, name: str | None = None) -> str:
    """Write `study` as a new Optuna study in `url`; a line saying what was written.

    `url`: an SQLAlchemy URL (an Optuna RDB database, created if need be), an
    existing Optuna SQLite file's path, or a journal file's path (created if
    need be). `name`: the Optuna study's name [default: the hpo study's].
    """
    optuna = require_optuna()
    name = name or study.name
    trials = study.trials
    built = [_frozen_trial(optuna, study, trial, time.time()) for trial in trials]
    target, shown = open_target(optuna, url)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # (not its "A new study created")
    try:
        if name in optuna.get_all_study_names(target):
            raise DuplicateStudyError(
                f"an Optuna study named {name!r} already exists in {shown}; write to "
                "another database or journal file, give export_optuna another name, or "
                f"delete it first (optuna delete-study --study-name {name} --storage ...)"
            )
        created = optuna.create_study(
            study_name=name, storage=target, direction=str(study.direction)
        )
        try:
            for key, value in study.user_attrs.items():
                if key != IMPORT_ATTR:  # (where an imported study came from: not Optuna's)
                    created.set_user_attr(key, value)
            created.add_trials(built)
        except BaseException:
            optuna.delete_study(study_name=name, storage=target)
            raise
    finally:
        optuna.logging.set_verbosity(verbosity)
        close_storage(target)
    return f"wrote Optuna study {name!r} ({len(built)} trials) to {shown}"


def open_target(optuna: Any, url: str) -> tuple[Any, str]:
    """An Optuna storage to write to: a URL with '://' is an RDB database (Optuna creates
    its tables), an existing SQLite file too, any other path a journal file."""
    from optuna.storages.journal import JournalFileBackend

    try:
        if "://" in url:
            from hpo.connection import parse_url

            shown = parse_url(url).render_as_string(hide_password=True)
            return optuna.storages.RDBStorage(url), shown
        path = Path(url)
        if path.is_file() and path.read_bytes()[: len(SQLITE_HEADER)] == SQLITE_HEADER:
            return optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}"), url
        return optuna.storages.JournalStorage(JournalFileBackend(str(path))), url
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the driver or file raises, in one line
        raise StorageError(f"cannot write an Optuna study to {url}: {exc}") from None


def _frozen_trial(optuna: Any, study: Study, trial: FrozenTrial, now: float) -> Any:
    """Optuna's FrozenTrial for one hpo trial (checked by Optuna here, before writing)."""
    state, params = trial.state, dict(trial.params)
    attrs = _system_attrs(trial)
    if state == TrialState.WAITING:  # enqueued: Optuna runs fixed_params first
        attrs["fixed_params"] = params
        params = {}
    if state == TrialState.RUNNING:
        attrs[HPO_ATTR]["error"] = RUNNING_ERROR
    optuna_state = {
        TrialState.WAITING: "WAITING",
        TrialState.COMPLETE: "COMPLETE",
        TrialState.PRUNED: "PRUNED",
    }.get(state, "FAIL")
    finished = trial.finished_at if trial.state.is_finished else now
    started = trial.started_at or finished
    frozen = optuna.trial.FrozenTrial(
        number=0,  # (numbered by Optuna as they are added)
        trial_id=0,
        state=optuna.trial.TrialState[optuna_state],
        value=trial.value if optuna_state in ("COMPLETE", "PRUNED") else None,
        values=None,
        datetime_start=None if optuna_state == "WAITING" else _datetime(started),
        datetime_complete=None if optuna_state == "WAITING" else _datetime(finished),
        params=params,
        distributions={
            n: distribution(optuna, _param(study, trial, n), v) for n, v in params.items()
        },
        user_attrs=trial.user_attrs,
        system_attrs=attrs,
        intermediate_values=trial.intermediate,
    )
    frozen._validate()  # (add_trials would: here, before the study is created)
    return frozen


def _system_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """Optuna's own attributes back for a trial imported from Optuna, and hpo's record."""
    ours = {k: v for k, v in trial.system_attrs.items() if k != OPTUNA_ATTR}
    original = trial.system_attrs.get(OPTUNA_ATTR, {}).get("system_attrs", {})
    return {
        **original,
        HPO_ATTR: jsonable(
            {
                "number": trial.number,
                "state": trial.state.value,
                "error": trial.error,
                "worker": trial.worker,
                "system_attrs": ours,
            }
        ),
    }


def _datetime(epoch: float | None) -> dt.datetime | None:
    """As Optuna keeps times: naive local datetimes (its datetime.now())."""
    return None if epoch is None else dt.datetime.fromtimestamp(epoch)


def _param(study: Study, trial: FrozenTrial, name: str) -> Param | None:
    """The definition of parameter `name` in this trial: the declared one whose branch
    choices the trial made, else the define-by-run one."""
    for dim in study.space.dims:
        if dim.param.name == name and all(
            trial.params.get(branch) == label for branch, label in dim.conditions
        ):
            return dim.param
    return study.suggested_params.get(name)


def distribution(optuna: Any, param: Param | None, value: Any) -> Any:
    """Optuna's distribution for a parameter, widened to hold `value` if it does not (a
    trial of an objective that asked another range); a lone categorical without one."""
    d = optuna.distributions
    if isinstance(param, Numeric) and isinstance(value, int | float):
        low, high = min(param.low, value), max(param.high, value)
        fits = param.contains(value)
        if param.type == "int":
            step = int(param.step or 1) if fits else 1
            return d.IntDistribution(int(low), int(high), log=param.log, step=step)
        return d.FloatDistribution(low, high, log=param.log, step=param.step if fits else None)
    if isinstance(param, Categorical | Branch):
        choices = list(param.choices)
        return d.CategoricalDistribution(choices if param.contains(value) else [*choices, value])
    return d.CategoricalDistribution([value])
