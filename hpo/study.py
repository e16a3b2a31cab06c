"""Studies: create, load, run trials, read results.

A study is one search: a space, a direction, a sampler, a budget and, once
it runs, its trials in storage. `Study.optimize` is the runner loop:

    refresh trials -> budget met? -> claim an enqueued trial or ask the
    sampler -> run the objective -> store the outcome (one transaction)

Reproducibility: the n-th sampled trial of a study draws from
``numpy.random.default_rng([seed, n])``, so the same seed, sampler and
objective give the same points, across stops and resumes too.
"""

from __future__ import annotations

import logging
import numbers
import secrets
import time
import traceback
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from hpo.errors import (
    DuplicateStudyError,
    HpoError,
    NoCompletedTrialsError,
    SamplerError,
    SamplerExhausted,
    SpaceError,
    StudyConfigError,
    TrialPruned,
)
from hpo.heartbeat import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, Heartbeat, is_lost, worker_id
from hpo.objectives import Objective, load_objective
from hpo.samplers import Sampler, make_sampler
from hpo.samplers.grid import GridSampler
from hpo.samplers.random import RandomSampler
from hpo.space import Branch, Param, Space
from hpo.storage import Storage, StudyInfo, StudySummary
from hpo.trial import FrozenTrial, Trial, TrialState, as_objective_value

DIRECTIONS = ("minimize", "maximize")
_SAMPLED = "sample"  # system attribute: the index of a sampled trial among sampled ones

log = logging.getLogger("hpo")

Callback = Callable[["Study", FrozenTrial], None]


class _TrialCache:
    """The study's trials as last read, indexed by number, refreshed incrementally.

    Finished trials never change, so a refresh reads only trials numbered
    above the last one seen plus those seen unfinished.
    """

    def __init__(self) -> None:
        self.records: list[FrozenTrial] = []  # records[number]
        self.unfinished: set[int] = set()
        self.n_counted = 0  # trials that count toward the budget
        self.n_sampled = 0  # trials whose point came from the sampler

    def refresh(self, storage: Storage, study_id: int) -> None:
        if self.records:
            fresh = storage.load_trials(study_id, len(self.records) - 1, self.unfinished)
        else:
            fresh = storage.load_trials(study_id)
        for record in fresh:
            self.put(record)

    def put(self, record: FrozenTrial) -> None:
        number = record.number
        while len(self.records) <= number:
            # Numbers are gapless once committed; a hole seen mid-commit stays
            # "unfinished" so that the next refresh reads it.
            self.unfinished.add(len(self.records))
            self.records.append(FrozenTrial(-1, len(self.records), TrialState.WAITING, {}))
        old = self.records[number]
        self.n_counted += record.counts_toward_budget - old.counts_toward_budget
        self.n_sampled += (_SAMPLED in record.system_attrs) - (_SAMPLED in old.system_attrs)
        self.records[number] = record
        if record.state.is_finished:
            self.unfinished.discard(number)
        else:
            self.unfinished.add(number)

    def in_state(self, state: TrialState) -> list[FrozenTrial]:
        return [self.records[n] for n in sorted(self.unfinished)
                if self.records[n].state == state]


class Study:
    """A study bound to its storage. Get one from `create_study` or `load_study`."""

    def __init__(self, storage: Storage, info: StudyInfo) -> None:
        self._storage = storage
        self._info = info
        self.space = Space.from_spec(info.space)
        self.sampler: Sampler = make_sampler(info.sampler, info.sampler_options)
        self._suggested: dict[str, Param] = {
            name: _param_from_spec(spec)
            for name, spec in storage.load_suggested(info.study_id).items()}
        self._cache = _TrialCache()
        self.heartbeat_interval = HEARTBEAT_INTERVAL_S
        self.grace_period = GRACE_PERIOD_S
        self._running: set[int] = set()  # trial ids this process is evaluating

    # -- what the study is ---------------------------------------------------

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def direction(self) -> str:
        return self._info.direction

    @property
    def budget(self) -> int | None:
        return self._info.budget

    @property
    def seed(self) -> int:
        return self._info.seed

    @property
    def info(self) -> StudyInfo:
        return self._info

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._info.user_attrs)

    @property
    def suggested_params(self) -> dict[str, Param]:
        """Parameters added by `trial.suggest_*` rather than declared."""
        return dict(self._suggested)

    def set_budget(self, budget: int | None) -> None:
        _check_budget(budget)
        self._storage.update_study(self._info.study_id, budget=budget)
        self._info = replace(self._info, budget=budget)

    def set_sampler(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        """Switch sampler (for the trials to come); the past trials stay."""
        self.sampler = make_sampler(name, options)
        options = dict(options or {})
        self._storage.update_study(self._info.study_id, sampler=name, sampler_options=options)
        self._info = replace(self._info, sampler=name, sampler_options=options)

    def set_user_attr(self, key: str, value: Any) -> None:
        attrs = {**self._info.user_attrs, key: value}
        self._storage.update_study(self._info.study_id, user_attrs=attrs)
        self._info = replace(self._info, user_attrs=attrs)

    # -- results ---------------------------------------------------------------

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials, by number, as stored now."""
        self._refresh()
        return list(self._cache.records)

    def trial(self, number: int) -> FrozenTrial:
        trials = self.trials
        if not 0 <= number < len(trials):
            raise HpoError(f"study {self.name!r} has no trial {number} "
                           f"(it has trials 0..{len(trials) - 1})" if trials else
                           f"study {self.name!r} has no trials yet")
        return trials[number]

    @property
    def best_trial(self) -> FrozenTrial:
        complete = [t for t in self.trials if t.state == TrialState.COMPLETE]
        if not complete:
            raise NoCompletedTrialsError(f"study {self.name!r} has no completed trial yet")
        pick = min if self.direction == "minimize" else max
        return pick(complete, key=lambda t: t.value)

    @property
    def best_params(self) -> dict[str, Any]:
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        return self.best_trial.value

    @property
    def n_counted(self) -> int:
        """Trials that count toward the budget (finished, and not re-queued)."""
        self._refresh()
        return self._cache.n_counted

    def budget_met(self) -> bool:
        self._refresh()
        return self._budget_met()

    # -- enqueue -----------------------------------------------------------

    def enqueue(self, params: Mapping[str, Any]) -> FrozenTrial:
        """Queue a point chosen by hand; queued points are evaluated first, in order.

        Parameters left out are drawn at random when the trial starts.
        """
        declared = {k: v for k, v in params.items() if k not in self._suggested}
        checked = self.space.validate(declared, partial=True)
        for name, value in params.items():
            if name in self._suggested:
                if not self._suggested[name].contains(value):
                    raise SpaceError(f"parameter {name!r}: {value!r} is out of its range")
                checked[name] = value
        record = self._storage.create_trial(self._info.study_id, TrialState.WAITING, checked,
                                            system_attrs={"enqueued": True})
        self._refresh()
        return record

    # -- the runner ------------------------------------------------------------

    def optimize(self, objective: Callable[[Trial], Any] | Objective | str | None = None,
                 n_trials: int | None = None, timeout: float | None = None,
                 catch: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
                 callbacks: Iterable[Callback] = ()) -> None:
        """Run trials until `n_trials` more have run, `timeout` seconds have
        passed, the study's budget is met, or the sampler is exhausted.

        `objective`: a function of a Trial, a loaded Objective, a reference
        string, or None for the objective the study was created with.
        Exceptions of the `catch` types mark the trial FAIL and the study goes
        on; any other propagates after the trial is stored as FAIL. Ctrl-C
        stores the running trial as FAIL ("interrupted"), re-queues its point
        and re-raises KeyboardInterrupt.
        """
        fn = self._objective_function(objective)
        _check_count(n_trials, "n_trials")
        if timeout is not None and (not isinstance(timeout, numbers.Real) or timeout <= 0):
            raise StudyConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        catch = catch if isinstance(catch, tuple) else (catch,)
        if isinstance(self.sampler, GridSampler) and len(self.space) == 0:
            raise SamplerError("the grid sampler needs a declared space")
        deadline = None if timeout is None else time.monotonic() + timeout
        self.reap_lost_trials()
        ran = 0
        with Heartbeat(self._storage, self.heartbeat_interval) as heartbeat:
            while n_trials is None or ran < n_trials:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._refresh()
                if self._budget_met():
                    break
                try:
                    record = self._next_trial()
                except SamplerExhausted as exc:
                    log.info("study %s: %s", self.name, exc)
                    break
                finished = self._run_trial(fn, record, catch, heartbeat)
                ran += 1
                for callback in callbacks:
                    callback(self, finished)

    def reap_lost_trials(self) -> list[FrozenTrial]:
        """Mark RUNNING trials whose worker died FAIL and re-queue their points.

        A point is re-queued once: a retry that is lost again (a point that
        crashes its worker, say by exhausting memory) stays failed.
        """
        self._refresh()
        now = time.time()
        lost = [t for t in self._cache.in_state(TrialState.RUNNING)
                if t.trial_id not in self._running and is_lost(t, now, self.grace_period)]
        for trial in lost:
            age = now - (trial.heartbeat_at or now)
            reason = f"worker lost ({trial.worker}, last heartbeat {age:.0f} s ago)"
            requeue = not str(trial.system_attrs.get("retry_reason", "")).startswith(
                "worker lost")
            self._storage.fail_and_requeue(self._info.study_id, trial, reason, requeue,
                                           expect_heartbeat=trial.heartbeat_at)
            log.warning("study %s: trial %d %s%s", self.name, trial.number, reason,
                        "; its point is queued again" if requeue else "")
        if lost:
            self._refresh()
        return lost

    def _objective_function(self, objective: Callable[[Trial], Any] | Objective | str | None
                            ) -> Callable[[Trial], Any]:
        if objective is None:
            if self._info.objective is None:
                raise HpoError(f"study {self.name!r} has no stored objective; pass one to "
                               "optimize()")
            objective = load_objective(self._info.objective, self._info.objective_options)
        elif isinstance(objective, str):
            objective = load_objective(objective)
        if isinstance(objective, Objective):
            return objective.fn
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        return objective

    def _refresh(self) -> None:
        self._cache.refresh(self._storage, self._info.study_id)

    def _budget_met(self) -> bool:
        if self._info.budget is None:
            return False
        running_elsewhere = sum(1 for t in self._cache.in_state(TrialState.RUNNING)
                                if t.trial_id not in self._running)
        return self._cache.n_counted + running_elsewhere >= self._info.budget

    def _next_trial(self) -> FrozenTrial:
        """Claim the first enqueued trial, or create one at a point the sampler asks."""
        me = worker_id()
        for waiting in self._cache.in_state(TrialState.WAITING):
            params = self._complete_enqueued(waiting)
            claimed = self._storage.claim_trial(waiting, me, params)
            if claimed is not None:
                self._cache.put(claimed)
                return claimed
        while True:
            index, number = self._cache.n_sampled, len(self._cache.records)
            params = self.sampler.ask(self.space, self._cache.records,
                                      np.random.default_rng([self.seed, index]),
                                      self.direction)
            record = self._storage.create_trial(self._info.study_id, TrialState.RUNNING,
                                                params, me, {_SAMPLED: index}, number=number)
            if record is not None:
                self._cache.put(record)
                return record
            self._refresh()  # another worker took that number: look again, ask again

    def _complete_enqueued(self, waiting: FrozenTrial) -> dict[str, Any]:
        """An enqueued point with its missing declared parameters drawn at random."""
        declared = {k: v for k, v in waiting.params.items() if k not in self._suggested}
        rng = np.random.default_rng([self.seed, 1 << 32, waiting.number])
        filled = self.space.decode(rng.random(len(self.space)), fixed=declared)
        return {**filled, **waiting.params}

    def _run_trial(self, fn: Callable[[Trial], Any], record: FrozenTrial,
                   catch: tuple[type[BaseException], ...], heartbeat: Heartbeat) -> FrozenTrial:
        trial = Trial(self, record)
        self._running.add(record.trial_id)
        heartbeat.watch(record.trial_id)
        try:
            result = fn(trial)
        except TrialPruned:
            return self._finish(trial, record, TrialState.PRUNED)
        except KeyboardInterrupt:
            self._interrupt(trial, record)
            raise
        except catch:
            return self._finish(trial, record, TrialState.FAIL, error=traceback.format_exc())
        except BaseException:
            self._finish(trial, record, TrialState.FAIL, error=traceback.format_exc())
            raise
        finally:
            heartbeat.unwatch(record.trial_id)
            self._running.discard(record.trial_id)
        try:
            value = as_objective_value(result)
        except ValueError as exc:
            return self._finish(trial, record, TrialState.FAIL, error=str(exc))
        return self._finish(trial, record, TrialState.COMPLETE, value=value)

    def _finish(self, trial: Trial, record: FrozenTrial, state: TrialState,
                value: float | None = None, error: str | None = None) -> FrozenTrial:
        """Store the outcome in one transaction and return the finished record."""
        intermediate = trial.intermediate_values
        if state == TrialState.PRUNED and intermediate:
            value = intermediate[max(intermediate)]  # a pruned trial keeps its last value
        finished_at = time.time()
        stored = self._storage.finish_trial(record.trial_id, state, trial.params, finished_at,
                                            value=value, error=error)
        if not stored:
            log.warning("study %s: trial %d was marked lost by another worker while it ran; "
                        "its result (%s) was not stored", self.name, record.number, state)
            self._refresh()
            return self._cache.records[record.number]
        finished = replace(record, state=state, value=value, error=error, params=trial.params,
                           finished_at=finished_at, intermediate=intermediate,
                           user_attrs=trial.user_attrs)
        self._cache.put(finished)
        return finished

    def _interrupt(self, trial: Trial, record: FrozenTrial) -> None:
        self._storage.fail_and_requeue(self._info.study_id, record, "interrupted (Ctrl-C)",
                                       requeue=True, params=trial.params)
        self._refresh()

    # -- define-by-run support for Trial ---------------------------------------

    def _sample_new_param(self, spec: dict[str, Any], record: FrozenTrial) -> Any:
        """Sample a parameter first met in `trial.suggest_*`; register it in storage."""
        param = _param_from_spec(spec)
        known = self._suggested.get(param.name)
        if known is None:
            stored = self._storage.add_suggested(self._info.study_id, param.to_spec())
            known = self._suggested[param.name] = _param_from_spec(stored)
        if known != param:
            raise SpaceError(f"parameter {param.name!r} was first suggested as "
                             f"{known.to_spec()}, now as {param.to_spec()}; a parameter "
                             "keeps one definition in a study")
        seed = [self.seed, record.system_attrs.get(_SAMPLED, (1 << 32) + record.number),
                zlib.crc32(param.name.encode())]
        sampler = RandomSampler() if isinstance(self.sampler, GridSampler) else self.sampler
        return sampler.ask(Space((known,)), self._cache.records, np.random.default_rng(seed),
                           self.direction)[param.name]

    def _check_suggest_kind(self, name: str, kind: str) -> None:
        params = [dim.param for dim in self.space.dims if dim.param.name == name]
        params += [self._suggested[name]] if name in self._suggested else []
        for param in params:
            actual = "categorical" if isinstance(param, Branch) else param.type
            if actual != kind:
                raise SpaceError(f"parameter {name!r} is a {actual} parameter in this study; "
                                 f"suggest_{kind} cannot ask for it")

    def _should_prune(self, trial_id: int) -> bool:
        return False  # no pruner yet: every trial runs to the end

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, storage={self._storage.display_url!r})"


# -- module-level API ----------------------------------------------------------------


def create_study(name: str | None = None, storage: str | Storage | None = None,
                 space: Sequence[Mapping[str, Any]] | Space | None = None,
                 sampler: str = "random", seed: int | None = None,
                 direction: str = "minimize", load_if_exists: bool = False, *,
                 sampler_options: Mapping[str, Any] | None = None,
                 objective: str | Objective | None = None,
                 objective_options: Mapping[str, Any] | None = None,
                 budget: int | None = None,
                 user_attrs: Mapping[str, Any] | None = None) -> Study:
    """Create a study (validated in full before anything is written).

    `storage`: an SQLAlchemy URL, an SQLite file path, a Storage, or None for
    an in-memory database. `objective`: a built-in name or reference stored
    with the study so that `hpo resume` can run it; a built-in objective also
    supplies the space when none is given. `budget`: the total number of
    trials the study aims for. `seed`: None draws one, which is stored, so
    every study can be replayed.
    """
    if direction not in DIRECTIONS:
        raise StudyConfigError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    _check_budget(budget)
    if name is not None and (not isinstance(name, str) or not name.strip()
                             or name != name.strip() or len(name) > 255):
        raise StudyConfigError(f"study name must be a non-empty string of at most 255 characters "
                         f"without outer whitespace, got {name!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not 0 <= seed < 2**63):
        raise StudyConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    loaded = (objective if isinstance(objective, Objective) or objective is None
              else load_objective(objective, objective_options))
    if space is None and loaded is not None:
        space = loaded.space
    space = space if isinstance(space, Space) else Space.from_spec(space)
    make_sampler(sampler, sampler_options)  # fail before writing anything
    info = StudyInfo(
        study_id=-1, name=name or f"study-{uuid.uuid4().hex[:8]}", direction=direction,
        space=space.to_spec(), sampler=sampler, sampler_options=dict(sampler_options or {}),
        objective=loaded.ref if loaded else None,
        objective_options=dict(objective_options or {}), budget=budget,
        seed=secrets.randbits(31) if seed is None else int(seed), created_at=time.time(),
        user_attrs=dict(user_attrs or {}))
    store = open_storage(storage)
    try:
        return Study(store, store.create_study(info))
    except DuplicateStudyError:
        if load_if_exists:
            return load_study(info.name, store)
        raise


def load_study(name: str, storage: str | Storage) -> Study:
    store = open_storage(storage, create=False)
    return Study(store, store.get_study(name))


def delete_study(name: str, storage: str | Storage) -> None:
    open_storage(storage, create=False).delete_study(name)


def studies(storage: str | Storage) -> list[StudySummary]:
    """Every study in the storage with its trial counts and best value."""
    return open_storage(storage, create=False).list_studies()


def open_storage(storage: str | Storage | None, create: bool = True) -> Storage:
    return storage if isinstance(storage, Storage) else Storage(storage, create=create)


def _param_from_spec(spec: Mapping[str, Any]) -> Param:
    return Space.from_spec([spec]).params[0]


def _check_budget(budget: int | None) -> None:
    _check_count(budget, "budget")


def _check_count(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                              or value < 1):
        raise StudyConfigError(f"{what} must be a positive integer, got {value!r}")


