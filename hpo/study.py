"""A study: its definition, its trials, and the life of a trial from ask to tell.

A study is one search: a space, a direction, a sampler, a budget and, once
it runs, its trials in storage. A trial's life:

    ask: refresh trials -> reap lost ones -> budget met? -> claim an enqueued
         trial or ask the sampler (the trial is RUNNING, its heartbeat kept)
    the objective (or a client elsewhere) evaluates the point: suggest_*,
         report, should_prune
    tell: store the outcome in one transaction

`Study.optimize` runs that loop around an objective (`hpo.optimize`);
`Study.ask` / `Study.tell` hand it to the caller. Many workers (threads,
processes, machines) can run one study: each claims or creates its trial in
a transaction that also takes its place in the budget, so together they run
exactly the budget.

Reproducibility: the n-th sampled trial of a study draws from the study's
sampling stream n (`hpo.streams`), so the same seed, sampler and objective
give the same points, across stops and resumes too; the objective's own
randomness (`trial.rng`) comes from another stream.

Optuna's names for the same things (`study_name`, `get_trials`,
`enqueue_trial`, `add_trial`, `trials_dataframe`, `stop`, `best_trials`,
`optimize(n_jobs=...)`) are here too, so that a driver written for Optuna
runs unchanged; docs/optuna.md lists them and where hpo differs.
"""

from __future__ import annotations

import copy
import itertools
import logging
import random
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hpo import recovery
from hpo.checks import check_count, check_timeout
from hpo.direction import Direction
from hpo.distributions import named
from hpo.errors import (
    BudgetMet,
    HpoError,
    InvalidValueError,
    NoCompletedTrialsError,
    SpaceError,
    StorageError,
    StudyConfigError,
    TrialNotFoundError,
    TrialStateError,
    did_you_mean,
    is_pruned,
)
from hpo.heartbeat import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, Heartbeat, is_lost, worker_id
from hpo.interrupts import held_interrupts
from hpo.objectives import Objective, load_objective
from hpo.optimize import Loop
from hpo.pareto import pareto_front
from hpo.pruners import PRUNERS, NopPruner, Pruner, check_pruner_objectives, make_pruner
from hpo.records import (
    ASK_SECONDS,
    LEASE_S,
    SAMPLE_INDEX,
    SEED_INDEX,
    FrozenTrial,
    StudyInfo,
    TrialPage,
    TrialState,
    value_of,
)
from hpo.samplers import SAMPLERS, Sampler, check_objectives, make_sampler
from hpo.samplers.grid import GridSampler
from hpo.samplers.random import RandomSampler
from hpo.space import Param, Space, check_suggest_kind
from hpo.storage import Recovered, Storage
from hpo.streams import Purpose, stream
from hpo.trial import Trial, as_objective_value, as_objective_values
from hpo.trial_cache import TrialCache

if TYPE_CHECKING:
    import pandas

POLL_INTERVAL_S = 0.25
CLIENT_LEASE_S = 600.0  # a trial asked for by a client elsewhere: lost after this without a beat
TELL_STATES = {
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "fail": TrialState.FAIL,
}
# Workers that collide on a trial number would collide again in lockstep;
# a random pause (not seeded: it affects timing only) breaks the tie.
_CONFLICT_PAUSE_S = 0.005
_JITTER = random.Random()

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"  # the error of a trial stopped by Ctrl-C
log = logging.getLogger("hpo")

Callback = Callable[["Study", FrozenTrial], None]


class Study:
    """A study bound to its storage. Get one from `create_study` or `load_study`."""

    def __init__(self, storage: Storage, info: StudyInfo) -> None:
        self._storage = storage
        self._info = info
        self.space = Space.from_spec(info.space)
        self.sampler: Sampler = make_sampler(info.sampler, info.sampler_options, info.seed)
        self.pruner: Pruner = make_pruner(info.pruner, info.pruner_options)
        self._suggested: dict[str, Param] = {
            name: _param_from_spec(spec)
            for name, spec in storage.load_suggested(info.study_id).items()
        }
        # every parameter's definition by name, shared with the trial records
        self._param_defs: dict[str, Param] = {d.param.name: d.param for d in self.space.dims}
        self._param_defs.update(self._suggested)
        self._cache = TrialCache(self._param_defs)
        self.heartbeat_interval = HEARTBEAT_INTERVAL_S
        self.grace_period = GRACE_PERIOD_S
        self.poll_interval = POLL_INTERVAL_S  # waiting for other workers' trials
        self._lock = threading.RLock()  # threads of optimize(n_jobs), and ask/tell
        self._stop = threading.Event()
        self._running: set[int] = set()  # trial ids this process is evaluating
        self._live: dict[int, Trial] = {}  # number -> the live handle ask gave out
        self._proposals: dict[int, dict[str, Any]] = {}  # trial id -> suggested params drawn
        self._joint_space: tuple[tuple[Any, ...], Space] = ((), self.space)
        self._heartbeat: Heartbeat | None = None
        self._prepared = False

    # -- what the study is ---------------------------------------------------

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def study_name(self) -> str:
        """Optuna's name for `name`."""
        return self._info.name

    @property
    def direction(self) -> Direction:
        return self._info.direction

    @property
    def directions(self) -> list[Direction]:
        """One direction per objective."""
        return list(self._info.directions)

    @property
    def n_objectives(self) -> int:
        return self._info.n_objectives

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
        check_count(budget, "budget")
        self._storage.update_study(self._info.study_id, budget=budget)
        self._info = replace(self._info, budget=budget)

    def set_sampler(self, sampler: Any, options: Mapping[str, Any] | None = None) -> None:
        """Switch sampler (for the trials to come): a name with options, or an object
        such as `hpo.samplers.TPESampler(gamma=0.2)`; the past trials stay."""
        name, options, _ = SAMPLERS.resolve(sampler, options)
        built = make_sampler(name, options, self.seed)
        check_objectives(built, name, self.n_objectives)
        self.sampler = built
        self._storage.update_study(self._info.study_id, sampler=name, sampler_options=options)
        self._info = replace(self._info, sampler=name, sampler_options=options)

    def set_pruner(self, pruner: Any, options: Mapping[str, Any] | None = None) -> None:
        """Switch pruner (for the trials to come): a name with options, or an object."""
        name, options, _ = PRUNERS.resolve(pruner, options)
        check_pruner_objectives(name, self.n_objectives)
        self.pruner = make_pruner(name, options)
        self._storage.update_study(self._info.study_id, pruner=name, pruner_options=options)
        self._info = replace(self._info, pruner=name, pruner_options=options)

    def set_user_attr(self, key: str, value: Any) -> None:
        attrs = {**self._info.user_attrs, key: value}
        self._storage.update_study(self._info.study_id, user_attrs=attrs)
        self._info = replace(self._info, user_attrs=attrs)

    # -- results ---------------------------------------------------------------

    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials, by number, as stored now."""
        with self._lock:
            self._refresh()
            return list(self._cache.records)

    def get_trials(
        self, deepcopy: bool = True, states: Collection[TrialState | str] | None = None
    ) -> list[FrozenTrial]:
        """Optuna's: the trials (in these states), by number. The records are frozen;
        `deepcopy` also copies their parameter and attribute dicts."""
        trials = self.trials
        if states is not None:
            wanted = {TrialState(str(s).upper()) for s in states}
            trials = [t for t in trials if t.state in wanted]
        return copy.deepcopy(trials) if deepcopy else trials

    def trials_page(
        self,
        states: Collection[TrialState | str] = (),
        sort: str = "number",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> TrialPage:
        """One page of the trials as stored now, filtered, sorted and cut by the database
        (so its cost does not grow with the study the way `trials` does).

        `states`: only trials in these (none: all). `sort`: "number"; "value",
        best first (lowest when minimizing); or "duration", shortest first.
        `descending` reverses the order (the worst or the longest first).
        Trials without a value or a duration come last either way; ties go by
        number. The page's `total` counts every trial the filter keeps.
        """
        return self._storage.page(self._info, states, sort, descending, limit, offset)

    def finished_since(self, position: int) -> tuple[list[FrozenTrial], int]:
        """The trials this Study object saw finish after the first `position` of them,
        in the order it saw them, and the position after them (refreshed first).

        A watcher keeps the position and asks again: each call costs what changed
        since, not the size of the study. Position 0 gives every finished trial.
        """
        self._refresh()
        numbers = self._cache.finished[position:]
        return [self._cache.records[n] for n in numbers], position + len(numbers)

    def trial(self, number: int) -> FrozenTrial:
        trials = self.trials
        if not 0 <= number < len(trials):
            raise TrialNotFoundError(
                f"study {self.name!r} has no trial {number} (it has trials 0..{len(trials) - 1})"
                if trials
                else f"study {self.name!r} has no trials yet"
            )
        return trials[number]

    @property
    def best_trial(self) -> FrozenTrial:
        """The completed trial with the best value, among those that meet their
        constraints (a study of several objectives has `best_trials` instead)."""
        if self.n_objectives > 1:
            raise StudyConfigError(
                f"study {self.name!r} has {self.n_objectives} objectives: its best trials "
                "are a Pareto front, study.best_trials"
            )
        return self.direction.best_of(self._completed_feasible(), key=value_of)

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The Pareto front: the completed trials meeting their constraints that no other
        dominates (better or equal in every objective, better in one), by number. With
        one objective, the best trial."""
        if self.n_objectives == 1:
            return [self.best_trial]
        return pareto_front(self._completed_feasible(), self._info.directions)

    def _completed_feasible(self) -> list[FrozenTrial]:
        complete = [t for t in self.trials if t.state == TrialState.COMPLETE]
        if not complete:
            raise NoCompletedTrialsError(f"study {self.name!r} has no completed trial yet")
        feasible = [t for t in complete if t.feasible]
        if not feasible:
            raise NoCompletedTrialsError(
                f"study {self.name!r}: no completed trial meets its constraints yet"
            )
        return feasible

    @property
    def best_params(self) -> dict[str, Any]:
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        return value_of(self.best_trial)

    @property
    def n_counted(self) -> int:
        """Trials that count toward the budget (finished, and not re-queued)."""
        with self._lock:
            self._refresh()
            return self._cache.n_counted

    def budget_met(self) -> bool:
        with self._lock:
            self._refresh()
            return self._budget_met()

    def trials_dataframe(
        self, attrs: Sequence[str] | None = None, multi_index: bool = False
    ) -> pandas.DataFrame:
        """Optuna's table of the trials, one row each (pip install pandas)."""
        from hpo.dataframe import trials_dataframe

        return trials_dataframe(self.trials, attrs, multi_index)

    # -- adding trials ------------------------------------------------------

    def enqueue(
        self,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
    ) -> FrozenTrial:
        """Queue a point chosen by hand; queued points are evaluated first, in order.

        Declared parameters left out are drawn at random when the trial starts.
        A parameter the study does not know yet (one the objective will ask for
        with suggest_*) is kept and given to the objective when it asks.
        `skip_if_exists`: enqueue nothing if a trial has these parameters already
        (the existing one is returned).
        """
        checked = self._checked_point(params)
        with self._lock:
            self._refresh()
            if skip_if_exists:
                for trial in self._cache.records:
                    if all(trial.params.get(k, _MISSING) == v for k, v in checked.items()):
                        return trial
            record = self._storage.create_trial(
                self._info.study_id,
                TrialState.WAITING,
                checked,
                system_attrs={"enqueued": True},
                user_attrs=dict(user_attrs or {}),
            )
            self._refresh()
            return record

    def enqueue_trial(
        self,
        params: Mapping[str, Any],
        user_attrs: Mapping[str, Any] | None = None,
        skip_if_exists: bool = False,
    ) -> None:
        """Optuna's name for `enqueue`."""
        self.enqueue(params, user_attrs, skip_if_exists)

    def add_trial(self, trial: FrozenTrial) -> FrozenTrial:
        """Store a finished trial made elsewhere (`hpo.create_trial`, another study's
        record): it takes the next number, and counts toward the budget."""
        return self.add_trials([trial])[0]

    def add_trials(self, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        """Store finished trials made elsewhere, in one transaction."""
        for trial in trials:
            if not trial.state.is_finished:
                raise TrialStateError(
                    f"add_trial takes finished trials (COMPLETE, PRUNED or FAIL), got a "
                    f"{trial.state} one; queue a point to run with enqueue_trial"
                )
            if trial.state == TrialState.COMPLETE:
                several = self.n_objectives > 1 or trial.objective_values is not None
                self._result(trial.values if several else trial.value, "added")
            for definition in trial.distributions.values():
                self.define_param(definition)
            self._checked_point(trial.params)
        with self._lock:
            added = self._storage.add_trials(self._info.study_id, list(trials))
            self._refresh()
            return added

    # -- ask and tell -----------------------------------------------------------

    def ask(
        self,
        fixed_distributions: Mapping[str, Any] | None = None,
        *,
        worker: str | None = None,
        lease: float | None = None,
    ) -> Trial:
        """Start the next trial and hand it over: RUNNING, its heartbeat kept by this
        process until it is told, its point sampled (or an enqueued one).

        Everything `optimize` does before the objective runs happens here too: lost
        trials are reaped, the budget is taken in the same transaction that starts
        the trial (BudgetMet when it is taken), queued points go first, the
        sampler sees every worker's trials. The trial's `suggest_*`, `report` and
        `should_prune` work as in an objective. `fixed_distributions` (Optuna's):
        parameters to suggest at once, name -> definition.

        `worker`: the trial is run by a client elsewhere (`hpo ask`, an HTTP
        client), named so: this process keeps no heartbeat for it; the client
        keeps it alive (`heartbeat`, `report`) or it is lost after `lease`
        seconds (default CLIENT_LEASE_S) without one, and its point asked again.
        """
        if worker is not None:
            lease = CLIENT_LEASE_S if lease is None else lease
            check_timeout(lease)
            return Trial(self, self.start_trial(worker, lease))
        if lease is not None:
            check_timeout(lease)
        record = self.start_trial(lease=lease)
        trial = self._open(record)
        self._live[record.number] = trial
        for param in named(fixed_distributions or {}).values():
            trial.suggest(param)
        return trial

    def tell(
        self,
        trial: Trial | FrozenTrial | int,
        value: Any = None,
        state: TrialState | str | None = None,
        *,
        values: Sequence[Any] | None = None,
        error: str | None = None,
        constraints: Sequence[float] | None = None,
        skip_if_finished: bool = False,
    ) -> FrozenTrial:
        """Finish a trial: `value` (COMPLETE; `values`, one per objective, in a study of
        several), or `state="pruned"` (its last reported value is kept) or `"fail"`
        (with `error`); `constraints`, as trial.set_constraints sets them. `trial`:
        the handle ask gave, a record, or a trial number (a trial asked for
        elsewhere, say by `hpo ask`).

        Telling a trial again what it was told is harmless (a client that retries
        after a lost answer); telling it something else raises TrialStateError,
        unless `skip_if_finished`. A value that is not a finite number raises
        ValueError. Either way nothing is changed.
        """
        number = trial if isinstance(trial, int) else trial.number
        state = _tell_state(state, value if values is None else values)
        told, value, told_values = _told_result(value, values, self.n_objectives), None, None
        if state == TrialState.COMPLETE:
            try:
                value, told_values = self._result(told, "told")
            except ValueError as exc:
                raise InvalidValueError(str(exc)) from None
        with self._lock:
            record = self._told_trial(number)
            if record.state.is_finished:
                if skip_if_finished or _same_outcome(record, state, value, told_values):
                    return record
                raise TrialStateError(
                    f"trial {number} of study {self.name!r} is {record.state} already"
                    + (f" (value {record.value})" if record.value is not None else "")
                    + f"; it cannot be told {state.value.lower()}"
                )
            live = self._live.pop(number, None) or Trial(self, record)
            if constraints is not None:
                live.set_constraints(constraints)
            error = error or ("told FAIL" if state == TrialState.FAIL else None)
            finished = self._finish(
                live, record, state, value=value, error=error, values=told_values
            )
            self._close(record)
            return finished

    def interrupt(self, trial: Trial | FrozenTrial | int) -> FrozenTrial:
        """Give a running trial back without a result (Ctrl-C or SIGTERM where it ran):
        FAIL "interrupted" and its point queued to run again, as for a worker stopped
        mid-trial. A trial finished already is left as it is, so a retried request is
        harmless. Returns the trial as stored."""
        number = trial if isinstance(trial, int) else trial.number
        with self._lock:
            record = self._told_trial(number)
            if record.state.is_finished:
                return record
            live = self._live.pop(number, None) or Trial(self, record)
            self._interrupt(record, live.params)
            self._close(record)
            return self._cache.records[number]

    def heartbeat(self, trial: Trial | FrozenTrial | int) -> FrozenTrial:
        """Keep a running trial alive (a client that runs it elsewhere beats while it
        works); TrialStateError if it is no longer running."""
        number = trial if isinstance(trial, int) else trial.number
        with self._lock:
            record = self._told_trial(number)
            if record.state != TrialState.RUNNING:
                raise TrialStateError(
                    f"trial {number} of study {self.name!r} is {record.state}, not running"
                )
            self._storage.heartbeat([record.trial_id])
            self._refresh()
            return self._cache.records[number]

    def report(self, trial: Trial | FrozenTrial | int, value: float, step: int) -> bool:
        """Store an intermediate value of a running trial (which also keeps it alive)
        and return the pruner's decision: True means stop it (tell it "pruned")."""
        number = trial if isinstance(trial, int) else trial.number
        with self._lock:
            live = self._live.get(number)
            if live is None:
                record = self.heartbeat(number)
                live = Trial(self, record)
            live.report(value, step)
            return live.should_prune()

    # -- the runner ------------------------------------------------------------

    def optimize(
        self,
        objective: Callable[[Trial], Any] | Objective | str | None = None,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_jobs: int = 1,
        catch: type[BaseException] | Sequence[type[BaseException]] = (Exception,),
        callbacks: Iterable[Callback] | None = None,
        gc_after_trial: bool = False,
        show_progress_bar: bool = False,
    ) -> None:
        """Run trials until `n_trials` more have run, `timeout` seconds have
        passed, the study's budget is met, the sampler is exhausted, or `stop()`.

        `objective`: a function of a Trial, a loaded Objective, a reference
        string, or None for the objective the study was created with.
        Exceptions of the `catch` types mark the trial FAIL and the study goes
        on (unlike Optuna, every Exception by default); any other propagates
        after the trial is stored as FAIL. Ctrl-C stores the running trial as
        FAIL ("interrupted"), re-queues its point and re-raises
        KeyboardInterrupt. `n_jobs` threads run trials at once (-1: one per
        core; see `hpo.optimize`). Results this machine could not store earlier
        (see `hpo.recovery`) are stored first.
        """
        fn = self._objective_function(objective)
        check_count(n_trials, "n_trials")
        check_timeout(timeout)
        if n_jobs != -1:
            check_count(n_jobs, "n_jobs")
        catch = tuple(catch) if isinstance(catch, Sequence) else (catch,)
        callbacks = list(callbacks or ())
        if show_progress_bar:
            from hpo.display import Progress

            callbacks.append(Progress())
        self._stop.clear()
        deadline = None if timeout is None else time.monotonic() + timeout
        loop = Loop(self, fn, n_trials, deadline, catch, callbacks, gc_after_trial)
        try:
            loop.run(n_jobs)
        finally:
            for callback in callbacks:
                if hasattr(callback, "close"):
                    callback.close()

    def stop(self) -> None:
        """End `optimize` after the trials running now (from a callback, say)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def start_trial(self, worker: str | None = None, lease: float | None = None) -> FrozenTrial:
        """The next trial, started (RUNNING in storage, counted in the budget): what
        ask and each round of optimize begin with. BudgetMet when the budget is
        taken (met, or the rest running elsewhere); SamplerExhausted after a grid.
        `worker` and `lease`: see `ask`. A Ctrl-C while it starts is held until the
        trial is stored (hpo.interrupts), which then is stored as interrupted."""
        with held_interrupts() as held, self._lock:
            self._prepare()
            self.reap_lost_trials()
            budget = self._info.budget
            if budget is not None and self._cache.n_counted >= budget:
                raise BudgetMet(f"study {self.name!r} has met its budget of {budget} trials")
            try:
                record = self._next_trial(worker, lease)
            except BudgetMet:
                raise BudgetMet(
                    f"study {self.name!r}: the rest of its budget of {budget} trials is "
                    "running in other workers"
                ) from None
            if held.received:  # its KeyboardInterrupt comes as the block ends
                self._interrupt(record, record.params)
            return record

    def run_trial(
        self,
        fn: Callable[[Trial], Any],
        record: FrozenTrial,
        catch: tuple[type[BaseException], ...] = (Exception,),
    ) -> FrozenTrial:
        """Evaluate a started trial with `fn` and store its outcome."""
        with held_interrupts() as held:
            trial = self._open(record)
            if held.received:  # stored as interrupted before its KeyboardInterrupt comes
                self._interrupt(record, trial.params)
                self._close(record)
        try:
            result = fn(trial)
        except KeyboardInterrupt:
            self._interrupt(record, trial.params)
            raise
        except BaseException as exc:
            if is_pruned(exc):  # hpo's TrialPruned, or Optuna's
                return self._finish(trial, record, TrialState.PRUNED)
            failed = self._finish(trial, record, TrialState.FAIL, error=traceback.format_exc())
            if isinstance(exc, catch):
                return failed
            raise
        finally:
            self._close(record)
        try:
            value, values = self._result(result)
        except ValueError as exc:
            return self._finish(trial, record, TrialState.FAIL, error=str(exc))
        return self._finish(trial, record, TrialState.COMPLETE, value=value, values=values)

    def _result(
        self, result: Any, source: str = "objective returned"
    ) -> tuple[float | None, list[float] | None]:
        """What an objective returned (or a client told) as (value, values): one number
        for a study of one objective, a sequence of one per objective otherwise."""
        if self.n_objectives == 1:
            return as_objective_value(result, source), None
        return None, as_objective_values(result, self.n_objectives, source)

    def reap_lost_trials(self) -> list[FrozenTrial]:
        """Mark RUNNING trials whose worker died FAIL and re-queue their points.

        A point is re-queued once: a retry that is lost again (a point that
        crashes its worker, say by exhausting memory) stays failed.
        """
        self._refresh()
        now = time.time()
        lost = [
            t
            for t in self._cache.in_state(TrialState.RUNNING)
            if t.trial_id not in self._running and is_lost(t, now, self.grace_period)
        ]
        for trial in lost:
            age = now - (trial.heartbeat_at or now)
            reason = f"worker lost ({trial.worker}, last heartbeat {age:.0f} s ago)"
            requeue = not str(trial.system_attrs.get("retry_reason", "")).startswith("worker lost")
            self._storage.fail_and_requeue(
                self._info.study_id,
                trial,
                reason,
                requeue,
                expect_heartbeat=trial.heartbeat_at,
                retry_attrs={SEED_INDEX: trial.seed_index},
            )
            log.warning(
                "study %s: trial %d %s%s",
                self.name,
                trial.number,
                reason,
                "; its point is queued again" if requeue else "",
            )
        if lost:
            self._refresh()
        return lost

    def _objective_function(
        self, objective: Callable[[Trial], Any] | Objective | str | None
    ) -> Callable[[Trial], Any]:
        if objective is None:
            if self._info.objective is None:
                raise HpoError(
                    f"study {self.name!r} has no stored objective; pass one to optimize()"
                )
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

    @property
    def _goal(self) -> Any:
        """What a sampler is told to aim for: the direction of a study of one objective,
        the tuple of directions of a study of several (only samplers made for several,
        `multi_objective`, are given one)."""
        directions = self._info.directions
        return directions[0] if len(directions) == 1 else directions

    @property
    def _budget(self) -> int | None:
        return self._info.budget

    def _prepare(self) -> None:
        """Once per Study object, before its first trial: the sampler accepts the
        space, and results kept while the database was unreachable are stored."""
        if self._prepared:
            return
        self.sampler.check(self.space)
        self._store_recovered()
        self._prepared = True

    def _open(self, record: FrozenTrial) -> Trial:
        """A live handle on a started trial, whose heartbeat this process now keeps."""
        with self._lock:
            self._running.add(record.trial_id)  # the heartbeat thread reads this set
            if self._heartbeat is None:
                self._heartbeat = Heartbeat(
                    self._storage, lambda: list(self._running), self.heartbeat_interval
                ).start()
        return Trial(self, record)

    def _close(self, record: FrozenTrial) -> None:
        """The trial ended (told, finished, interrupted): no more heartbeats for it."""
        with self._lock:
            self._running.discard(record.trial_id)
            self._proposals.pop(record.trial_id, None)
            if not self._running and self._heartbeat is not None:
                self._heartbeat.stop()
                self._heartbeat = None

    def _told_trial(self, number: int) -> FrozenTrial:
        """The trial a tell names, as stored now; it must have been started."""
        self._refresh()
        if not (isinstance(number, int) and 0 <= number < len(self._cache.records)):
            raise TrialNotFoundError(f"study {self.name!r} has no trial {number!r}")
        record = self._cache.records[number]
        if record.state == TrialState.WAITING:
            raise TrialStateError(
                f"trial {number} of study {self.name!r} is waiting: it was never asked for"
            )
        return record

    def _checked_point(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A point for enqueue: declared parameters checked against the space, known
        define-by-run ones against their definitions, unknown names kept as given
        (the objective will define them with suggest_*)."""
        declared = {k: v for k, v in params.items() if k in self.space}
        checked = self.space.validate(declared, partial=True)
        for name, value in params.items():
            if name in self.space:
                continue
            if name in self._suggested:
                if not self._suggested[name].contains(value):
                    raise SpaceError(f"parameter {name!r}: {value!r} is out of its range")
            elif hint := did_you_mean(name, self._param_defs):  # a typo, not a new parameter
                raise SpaceError(
                    f"unknown parameter {name!r}{hint} (a new parameter, defined by the "
                    "objective's suggest_*, needs a name unlike the known ones)"
                )
            checked[name] = value
        return checked

    def _store_recovered(self) -> None:
        """Store the results this machine kept when the database was unreachable."""
        if self._storage.is_memory:
            return
        for path, outcome in recovery.claim(self._storage.identity, self.name):
            try:
                where, retry = self._storage.store_recovered(
                    self._info.study_id,
                    outcome.trial_id,
                    TrialState(outcome.state),
                    outcome.params,
                    outcome.finished_at,
                    outcome.value,
                    outcome.error,
                    outcome.values,
                    outcome.constraints,
                )
            except TrialNotFoundError:
                log.warning(
                    "study %s: trial %d of a kept result is no longer in the study; "
                    "the result is left in %s",
                    self.name,
                    outcome.number,
                    recovery.set_aside(path),
                )
                continue
            path.unlink(missing_ok=True)
            log.warning(
                "study %s: stored the %s result of trial %d, kept in %s when the "
                "database was unreachable%s",
                self.name,
                outcome.state,
                outcome.number,
                path,
                _RECOVERED_NOTES[where].format(retry=retry),
            )

    def _budget_met(self) -> bool:
        if self._info.budget is None:
            return False
        running_elsewhere = sum(
            1 for t in self._cache.in_state(TrialState.RUNNING) if t.trial_id not in self._running
        )
        return self._cache.n_counted + running_elsewhere >= self._info.budget

    def _next_trial(self, worker: str | None = None, lease: float | None = None) -> FrozenTrial:
        """Claim the first enqueued trial, or create one at a point the sampler asks.

        `worker` (with its `lease`): a client elsewhere runs the trial, not this
        process; it gets every parameter drawn, define-by-run ones included.
        """
        me, study_id = worker or worker_id(), self._info.study_id
        extra = {} if lease is None else {LEASE_S: lease}
        for waiting in self._cache.in_state(TrialState.WAITING):
            params = self._complete_enqueued(waiting)
            claimed = self._storage.claim_trial(study_id, waiting, me, params, self._budget, extra)
            if claimed is not None:
                return self._cache.put(claimed)
        for attempt in itertools.count():
            if attempt:  # another worker took the number: step aside a random moment
                time.sleep(_JITTER.uniform(0, _CONFLICT_PAUSE_S * min(attempt, 8)))
                self._refresh()  # look again, ask again
            index, number = self._cache.n_sampled, len(self._cache.records)
            asked = time.perf_counter()
            point = self.sampler.ask(
                self._sampling_space(),
                self._cache.records,
                stream(self.seed, Purpose.SAMPLING, index),
                self._goal,
            )
            attrs = {SAMPLE_INDEX: index, ASK_SECONDS: round(time.perf_counter() - asked, 6)}
            attrs.update(extra)
            params = {k: v for k, v in point.items() if worker or k not in self._suggested}
            record = self._storage.create_trial(
                study_id, TrialState.RUNNING, params, me, attrs, number, self._budget
            )
            if record is not None:
                self._proposals[record.trial_id] = {
                    k: v for k, v in point.items() if k in self._suggested
                }
                return self._cache.put(record)
        raise AssertionError("unreachable")

    def _sampling_space(self) -> Space:
        """The declared space plus the parameters met in suggest_* so far.

        Sampling them together when a trial starts lets a model see how they
        interact (Optuna's "relative" sampling); a suggested parameter the
        objective does not ask for in this trial is simply not used. The grid
        sampler keeps to the declared space.
        """
        if not self._suggested or isinstance(self.sampler, GridSampler):
            return self.space
        key = tuple(self._suggested.items())
        if self._joint_space[0] != key:
            self._joint_space = (key, Space(self.space.params + tuple(self._suggested.values())))
        return self._joint_space[1]

    def _complete_enqueued(self, waiting: FrozenTrial) -> dict[str, Any]:
        """An enqueued point with its missing declared parameters drawn at random."""
        declared = {k: v for k, v in waiting.params.items() if k not in self._suggested}
        rng = stream(self.seed, Purpose.ENQUEUED, waiting.number)
        filled = self.space.decode(rng.random(len(self.space)), fixed=declared)
        return {**filled, **waiting.params}

    def _finish(
        self,
        trial: Trial,
        record: FrozenTrial,
        state: TrialState,
        value: float | None = None,
        error: str | None = None,
        values: list[float] | None = None,
    ) -> FrozenTrial:
        """Store the outcome in one transaction and return the finished record (a
        Ctrl-C meanwhile comes after it: hpo.interrupts)."""
        with held_interrupts(), self._lock:
            intermediate = trial.intermediate_values
            if state == TrialState.PRUNED and intermediate and self.n_objectives == 1:
                value = intermediate[max(intermediate)]  # a pruned trial keeps its last value
            constraints = trial.constraints
            finished_at = time.time()
            try:
                stored = self._storage.finish_trial(
                    record.trial_id,
                    state,
                    trial.params,
                    finished_at,
                    value=value,
                    error=error,
                    values=values,
                    constraints=constraints,
                )
            except StorageError as exc:
                self._keep_for_later(
                    record,
                    recovery.Outcome(
                        record.trial_id,
                        record.number,
                        state.value,
                        trial.params,
                        finished_at,
                        value,
                        error,
                        values,
                        constraints,
                    ),
                    exc,
                )
                raise
            if not stored:
                log.warning(
                    "study %s: trial %d was marked lost by another worker while it ran; "
                    "its result (%s) was not stored",
                    self.name,
                    record.number,
                    state,
                )
                self._refresh()
                return self._cache.records[record.number]
            finished = replace(
                record,
                state=state,
                value=value,
                objective_values=values,
                constraints=constraints,
                error=error,
                params=trial.params,
                finished_at=finished_at,
                intermediate=intermediate,
                user_attrs=trial.user_attrs,
            )
            return self._cache.put(finished)

    def _keep_for_later(
        self, record: FrozenTrial, outcome: recovery.Outcome, exc: StorageError
    ) -> None:
        if self._storage.is_memory:
            return
        path = recovery.save(self._storage.identity, self.name, outcome)
        log.error(
            "study %s: could not store the result of trial %d (%s); it is kept in %s "
            "and will be stored the next time this study runs on this machine",
            self.name,
            record.number,
            exc,
            path,
        )

    def _interrupt(self, record: FrozenTrial, params: dict[str, Any]) -> None:
        """Store a started trial as interrupted, its point (`params` so far) queued again."""
        with held_interrupts(), self._lock:  # a second Ctrl-C must not cut this short
            self._storage.fail_and_requeue(
                self._info.study_id,
                record,
                INTERRUPTED,
                requeue=True,
                params=params,
                retry_attrs={SEED_INDEX: record.seed_index},
            )
            self._refresh()

        # -- what a live Trial asks of its study (hpo.trial.TrialHost) -------------

    def store_params(self, trial_id: int, params: dict[str, Any]) -> None:
        """Persist a running trial's parameters as they grow (define-by-run), so that a
        retry after a crash evaluates the same point."""
        with self._lock:
            self._storage.set_params(trial_id, params)

    def store_intermediate(self, trial_id: int, step: int, value: float) -> bool:
        """Persist one intermediate value; False if that step was already reported."""
        with self._lock:
            return self._storage.add_intermediate(trial_id, step, value)

    def store_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        with self._lock:
            self._storage.set_user_attrs(trial_id, attrs)

    def define_param(self, param: Param) -> Param:
        """The study's definition of a parameter met in suggest_* (or in an added trial):
        declared, or added to the study (persisted, for every worker) the first time it
        is met, after which that first definition stays."""
        with self._lock:
            for dim in self.space.dims:
                if dim.param.name == param.name:
                    return dim.param
            if param.name not in self._suggested:
                stored = _param_from_spec(
                    self._storage.add_suggested(self._info.study_id, param.to_spec())
                )
                self._suggested[param.name] = self._param_defs[param.name] = stored
            return self._suggested[param.name]

    def sample_new_param(self, spec: dict[str, Any], record: FrozenTrial) -> Any:
        """A value for a parameter met in `trial.suggest_*`; register its first definition.

        Known parameters were drawn jointly when the trial started; a new one
        (or one asked with another range) is drawn on its own.

        An objective may change a parameter's range from trial to trial (Optuna
        allows it): the trial then samples within the range it asked for, and
        the sampler learns from the trials whose value lies inside it.
        """
        with self._lock:
            param = _param_from_spec(spec)
            self.define_param(param)
            proposed = self._proposals.get(record.trial_id, {})
            if param.name in proposed and self._suggested[param.name] == param:
                return proposed[param.name]  # drawn with the others when the trial started
            # the history as it was when this trial's point was asked for: without the trial
            # itself (else a start-up sequence counts it, and gives the previous trial's point)
            history = [t for t in self._cache.records if t.number != record.number]
            if self._suggested[param.name] != param:
                history = [t for t in history if param.contains(t.params.get(param.name))]
            rng = stream(
                self.seed, Purpose.DEFINE_BY_RUN, record.seed_index, zlib.crc32(param.name.encode())
            )
            sampler = RandomSampler() if isinstance(self.sampler, GridSampler) else self.sampler
            return sampler.ask(Space((param,)), history, rng, self._goal)[param.name]

    def check_suggest_kind(self, name: str, kind: str) -> None:
        params = [dim.param for dim in self.space.dims if dim.param.name == name]
        params += [self._suggested[name]] if name in self._suggested else []
        check_suggest_kind(params, name, kind)

    def should_prune(self, trial: FrozenTrial) -> bool:
        """The pruner's decision on `trial` (its values so far) against everybody's."""
        with self._lock:
            if isinstance(self.pruner, NopPruner):
                return False
            self._refresh()  # other workers' values too
            others = [t for t in self._cache.records if t.number != trial.number]
            return self.pruner.prune(trial, others, self.direction)

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, storage={self._storage.display_url!r})"


_RECOVERED_NOTES = {
    Recovered.TRIAL: "",
    Recovered.RETRY: "; it had been found lost, and its queued retry {retry} takes the "
    "result instead of running",
    Recovered.ATTRIBUTE: "; its point had already run again, so the result is kept in the "
    "trial's system attribute recovered_result",
}


_MISSING = object()


def _param_from_spec(spec: Mapping[str, Any]) -> Param:
    return Space.from_spec([spec]).params[0]


def _tell_state(state: TrialState | str | None, value: Any) -> TrialState:
    """The state a tell asks for: COMPLETE by default (a value is then needed)."""
    if state is None:
        if value is None:
            raise TrialStateError("tell needs a value, or state='pruned' or 'fail'")
        return TrialState.COMPLETE
    told = TELL_STATES.get(str(state).lower())
    if told is None:
        raise TrialStateError(f"a trial is told {', '.join(TELL_STATES)}; got state {state!r}")
    return told


def _told_result(value: Any, values: Sequence[Any] | None, n_objectives: int) -> Any:
    """What a tell gives as the result: `value`, or `values` (Optuna's spelling, also
    `values=[v]` for a study of one objective)."""
    if values is None:
        return value
    if value is not None:
        raise ValueError("give value or values, not both")
    if n_objectives > 1:
        return values
    if isinstance(values, str) or len(values) != 1:
        raise ValueError(f"this study has one objective: give one value, got values={values!r}")
    return values[0]


def _same_outcome(
    record: FrozenTrial, state: TrialState, value: float | None, values: list[float] | None
) -> bool:
    return record.state == state and (
        state != TrialState.COMPLETE
        or (record.value == value and record.objective_values == values)
    )
