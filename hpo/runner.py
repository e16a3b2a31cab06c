"""What `hpo run` and `hpo resume` do, as Python functions of the same names.

Everything is validated — study file, space, sampler, objective, storage —
before the study is created or changed, so bad input leaves the database as
it was.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.catalog import create_study, load_study
from hpo.checks import check_count
from hpo.connection import choose_storage, is_memory_url, parse_url
from hpo.errors import (
    DuplicateStudyError,
    HpoError,
    ObjectiveError,
    StudyConfigError,
    StudyFileError,
)
from hpo.objectives import Objective, load_objective
from hpo.pruners import NopPruner, make_pruner
from hpo.records import TrialState
from hpo.remote import is_server_url
from hpo.samplers import make_sampler
from hpo.storage import Storage
from hpo.study import Callback, Study
from hpo.studyfile import StudyConfig, load_study_file
from hpo.workers import run_workers

if TYPE_CHECKING:
    from hpo.cluster import Session
    from hpo.remote import RemoteStudy

log = logging.getLogger("hpo")


def run(
    study: str | Path | StudyConfig,
    *,
    name: str | None = None,
    sampler: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    storage: str | Storage | None = None,
    pruner: str | None = None,
    workers: int | None = 1,
    callbacks: Iterable[Callback] = (),
    cluster: Any = None,
) -> Study:
    """Create the study a study file describes and run it to its budget.

    Keyword arguments override the file, as the CLI flags do. `workers` > 1
    runs that many worker processes on this machine (see `hpo.workers`);
    with `cluster` ("local", a Dask scheduler address, a Client or a cluster
    object), that many tasks on the Dask cluster (None: one per thread of
    the cluster; see `hpo.cluster`).
    """
    config = _config(study, name, sampler, trials, timeout, seed, pruner)
    if config.objective is None:
        raise StudyFileError(
            f"{config.source}: 'objective' is missing (a built-in name such as 'branin', "
            "or module:function, or path/file.py:function); a study whose trials run "
            "elsewhere, by ask and tell, is made with `hpo create`"
        )
    if config.trials is None and config.timeout is None and config.sampler != "grid":
        raise StudyFileError(
            f"study {config.name!r} has no budget: set trials (or timeout) "
            "in the study file, or pass --trials / --timeout"
        )
    objective = load_objective(config.objective, config.objective_options, config.base_dir)
    store = storage if isinstance(storage, Storage) else choose_storage(storage, config.storage)
    _check_workers(workers, store, cluster)
    with _session(cluster, workers, objective, config.objective_options) as session:
        created = _create(config, store, objective)
        _optimize(created, objective, store, workers, config.timeout, callbacks, session)
    return created


def create(
    study: str | Path | StudyConfig,
    *,
    name: str | None = None,
    sampler: str | None = None,
    trials: int | None = None,
    seed: int | None = None,
    storage: str | Storage | None = None,
    pruner: str | None = None,
) -> Study:
    """Create the study a study file describes, and run nothing: its trials are asked
    for and told (`hpo ask`, `hpo tell`, `study.ask()`), or run later by workers.
    The file's objective is optional here."""
    config = _config(study, name, sampler, trials, None, seed, pruner)
    objective = (
        None
        if config.objective is None
        else load_objective(config.objective, config.objective_options, config.base_dir)
    )
    store = storage if isinstance(storage, Storage) else choose_storage(storage, config.storage)
    return _create(config, store, objective)


def _config(
    study: str | Path | StudyConfig,
    name: str | None,
    sampler: str | None,
    trials: int | None,
    timeout: float | None,
    seed: int | None,
    pruner: str | None,
) -> StudyConfig:
    config = study if isinstance(study, StudyConfig) else load_study_file(study)
    return config.with_overrides(
        name=name, sampler=sampler, trials=trials, timeout=timeout, seed=seed, pruner=pruner
    )


def _create(config: StudyConfig, store: str | Storage, objective: Objective | None) -> Study:
    """The study of a config (create_study validates everything before it writes)."""
    try:
        return create_study(
            config.name,
            store,
            config.space,
            config.sampler,
            config.seed,
            None if config.directions else config.direction,
            sampler_options=config.sampler_options,
            objective=objective,
            objective_options=config.objective_options,
            budget=config.trials,
            pruner=config.pruner,
            pruner_options=config.pruner_options,
            directions=config.directions,
            objective_names=config.objective_names,
        )
    except DuplicateStudyError as exc:
        raise DuplicateStudyError(
            f"{exc}; continue it with `hpo resume {config.name}`, or "
            "choose another name with --name"
        ) from None


def resume(
    name: str,
    storage: str | Storage | None = None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    sampler: str | None = None,
    pruner: str | None = None,
    workers: int | None = 1,
    callbacks: Iterable[Callback] = (),
    cluster: Any = None,
) -> Study:
    """Continue a stored study until its budget is met.

    `trials` raises the budget (the total number of trials); `sampler`
    switches sampler for the trials to come. Trials whose worker died are
    marked FAIL and their points evaluated first. `workers`, `cluster`: as
    for `run`.
    """
    store = storage if isinstance(storage, Storage) else choose_storage(storage)
    _check_workers(workers, store, cluster)
    study = load_study(name, store)
    objective = _stored_objective(study)
    _check_resume(study, trials, timeout, sampler, pruner)
    with _session(cluster, workers, objective, study.info.objective_options) as session:
        if sampler is not None and sampler != study.info.sampler:
            study.set_sampler(sampler)
        if pruner is not None and pruner != study.info.pruner:
            study.set_pruner(pruner)
        if trials is not None:
            study.set_budget(trials)
        _optimize(study, objective, store, workers, timeout, callbacks, session)
    return study


def _check_resume(
    study: Study,
    trials: int | None,
    timeout: float | None,
    sampler: str | None,
    pruner: str | None,
) -> None:
    """What resume is asked to change is valid (before anything is changed)."""
    name = study.name
    if sampler is not None:
        make_sampler(sampler).check(study.space)
    if pruner is not None:
        make_pruner(pruner)
    if trials is not None and trials < study.n_counted:
        raise HpoError(
            f"study {name!r} already has {study.n_counted} trials; --trials is the "
            f"total budget and cannot be below that"
        )
    budget = trials if trials is not None else study.budget
    if budget is None and timeout is None and (sampler or study.info.sampler) != "grid":
        raise HpoError(f"study {name!r} has no budget: pass --trials or --timeout")


def worker(
    name: str,
    storage: str | Storage | None = None,
    *,
    timeout: float | None = None,
    callbacks: Iterable[Callback] = (),
    objective_file: str | Path | None = None,
) -> Study | RemoteStudy:
    """Join study NAME as one more worker until its budget is met (or `timeout`).

    From any machine that reaches the storage; the study's settings are
    left as they are. `storage` may be an hpo server's URL (http:// or
    https://, `hpo serve`): the token is then $HPO_TOKEN. `objective_file`:
    where the study's objective file is on this machine, when not at the
    path stored (a copy of the same file, say one a Dask cluster uploaded).
    """
    chosen = storage if isinstance(storage, Storage) else choose_storage(storage)
    if is_server_url(chosen):  # an hpo server (hpo serve): trials run here, stored there
        return _remote_worker(name, str(chosen), timeout, callbacks)
    study = load_study(name, chosen)
    objective = _stored_objective(study, objective_file)
    if study.budget is None and timeout is None and study.info.sampler != "grid":
        raise HpoError(
            f"study {name!r} has no budget: pass --timeout, or set one with "
            f"`hpo resume {name} --trials N`"
        )
    study.optimize(objective, timeout=timeout, callbacks=callbacks)
    return study


def _remote_worker(
    name: str, url: str, timeout: float | None, callbacks: Iterable[Callback]
) -> RemoteStudy:
    from hpo.remote import connect

    study = connect(url, name)
    if study.budget is None and timeout is None:
        raise HpoError(f"study {name!r} has no budget: pass --timeout")
    study.optimize(None, timeout=timeout, callbacks=callbacks)
    return study


def _stored_objective(study: Study, objective_file: str | Path | None = None) -> Objective:
    """The objective the study was created with; a clear error for a study made from a
    Python function (none is stored: only Python can run it again)."""
    ref = study.info.objective
    if ref is None:
        raise HpoError(
            f"study {study.name!r} was created without a stored objective (from a "
            "Python function); continue it from Python with "
            "study.optimize(objective)"
        )
    if objective_file is not None:
        ref = _moved_objective(ref, Path(objective_file))
    return load_objective(ref, study.info.objective_options)


def _moved_objective(ref: str, path: Path) -> str:
    """The stored file objective `ref` ("/abs/file.py:fn") loaded from `path`, a copy of
    the same file elsewhere: only a file of the same name takes its place."""
    location, _, function = ref.rpartition(":")
    if not location.endswith(".py") or Path(location).name != path.name:
        raise ObjectiveError(
            f"--objective-file {str(path)!r} cannot stand for the study's objective "
            f"{ref!r}: it must be a copy of that file, of the same name"
        )
    return f"{path.resolve()}:{function}"


def _check_workers(workers: int | None, storage: str | Storage, cluster: Any = None) -> None:
    if cluster is not None:
        from hpo.cluster import check_storage

        if workers is not None:
            check_count(workers, "workers")
        check_storage(storage.identity if isinstance(storage, Storage) else storage, cluster)
        return
    if workers is None:
        raise StudyConfigError("workers must be a positive integer, got None")
    check_count(workers, "workers")
    if workers > 1 and (isinstance(storage, Storage) or is_memory_url(parse_url(storage))):
        what = "a Storage object" if isinstance(storage, Storage) else "an in-memory database"
        raise StudyConfigError(
            f"--workers {workers} needs the storage as a URL or file path "
            f"that worker processes can open, not {what}"
        )


@contextlib.contextmanager
def _session(
    cluster: Any, workers: int | None, objective: Objective, options: dict[str, Any] | None
) -> Iterator[Session | None]:
    """A session on the Dask cluster, its workers checked (they can load the objective)
    before anything is written; None without a cluster."""
    if cluster is None:
        yield None
        return
    from hpo.cluster import check_workers, connect

    with connect(cluster, workers) as session:
        check_workers(session, objective.ref, dict(options or {}))
        yield session


def _optimize(
    study: Study,
    objective: Objective,
    storage: str | Storage,
    workers: int | None,
    timeout: float | None,
    callbacks: Iterable[Callback],
    session: Session | None = None,
) -> None:
    try:
        if session is not None:
            _run_on_cluster(study, session, timeout, callbacks)
        else:
            assert workers is not None
            _run(study, objective, storage, workers, timeout, callbacks)
    finally:
        _warn_if_the_pruner_judged_nothing(study)


def _warn_if_the_pruner_judged_nothing(study: Study) -> None:
    """A pruner on an objective that never reports judges nothing: say so (once per
    run or resume, whatever the number of workers)."""
    if isinstance(study.pruner, NopPruner):
        return
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if completed and not any(t.intermediate for t in completed):
        log.warning(
            "study %s: the %s pruner judged no trial: the objective reports no "
            "intermediate values (call trial.report(value, step), then "
            "trial.should_prune(), in its loop)",
            study.name,
            study.info.pruner,
        )


def _run_on_cluster(
    study: Study, session: Session, timeout: float | None, callbacks: Iterable[Callback]
) -> None:
    results = session.optimize(study, timeout, callbacks)
    failed = [r for r in results if r.code != 0 and not r.stopped]
    if failed and not study.budget_met():
        raise HpoError(
            f"{len(failed)} of {len(results)} cluster tasks failed ({failed[0].describe()}); "
            f"the study has {study.n_counted} of its {study.budget} trials"
        )


def _run(
    study: Study,
    objective: Objective,
    storage: str | Storage,
    workers: int,
    timeout: float | None,
    callbacks: Iterable[Callback],
) -> None:
    if workers == 1:
        study.optimize(objective, timeout=timeout, callbacks=callbacks)
    else:
        assert isinstance(storage, str)
        codes = run_workers(study, storage, workers, timeout, callbacks)
        failed = [code for code in codes if code != 0]
        if failed and not study.budget_met():
            raise HpoError(
                f"{len(failed)} of {workers} workers failed (exit codes "
                f"{', '.join(map(str, failed))}; their messages are above); "
                f"the study has {study.n_counted} of its {study.budget} trials"
            )
