"""Studies: create, load, run trials, read results.

A study is one search: a space, a direction, a sampler, a budget and, once
it runs, its trials in storage. `Study.optimize` is the runner loop:

    refresh trials -> reap lost ones -> budget met? -> claim an enqueued
    trial or ask the sampler -> run the objective -> store the outcome (one
    transaction)

Many workers (processes, machines) can run one study: each claims or
creates its trial in a transaction that also checks the budget, so together
they run exactly the budget. When the rest of the budget is running in
other workers, a worker waits for those trials to finish (or to be found
lost, and re-queued) rather than stopping short or running more.

Reproducibility: the n-th sampled trial of a study draws from the study's
sampling stream n (`hpo.streams`), so the same seed, sampler and objective
give the same points, across stops and resumes too; the objective's own
randomness (`trial.rng`) comes from another stream.
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
import time
import traceback
import uuid
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from hpo import recovery
from hpo.checks import check_count, check_name, check_seed, check_timeout
from hpo.direction import Direction
from hpo.errors import (
    BudgetMet,
    DuplicateStudyError,
    HpoError,
    NoCompletedTrialsError,
    SamplerExhausted,
    SpaceError,
    StorageError,
    StudyConfigError,
    TrialNotFoundError,
    is_pruned,
)
from hpo.heartbeat import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, Heartbeat, is_lost, worker_id
from hpo.objectives import Objective, load_objective
from hpo.pruners import NopPruner, Pruner, make_pruner
from hpo.records import (
    ASK_SECONDS,
    SAMPLE_INDEX,
    SEED_INDEX,
    FrozenTrial,
    TrialState,
    value_of,
)
from hpo.samplers import Sampler, make_sampler
from hpo.samplers.grid import GridSampler
from hpo.samplers.random import RandomSampler
from hpo.space import Branch, Param, Space
from hpo.storage import Recovered, Storage, StudyInfo, StudySummary, TrialPage
from hpo.streams import Purpose, stream
from hpo.trial import Trial, as_objective_value

POLL_INTERVAL_S = 0.25
PAGE_SORTS = ("number", "value", "duration")  # the orders of Study.trials_page
# Workers that collide on a trial number would collide again in lockstep;
# a random pause (not seeded: it affects timing only) breaks the tie.
_CONFLICT_PAUSE_S = 0.005
_JITTER = random.Random()

log = logging.getLogger("hpo")

Callback = Callable[["Study", FrozenTrial], None]


class _TrialCache:
    """The study's trials as last read, indexed by number, refreshed incrementally.

    Finished trials never change, so a refresh reads only trials numbered
    above the last one seen plus those seen unfinished: its cost follows the
    trials that changed, not the size of the study.
    """

    def __init__(self) -> None:
        self.records: list[FrozenTrial] = []  # records[number]
        self.unfinished: set[int] = set()
        self.finished: list[int] = []  # numbers, in the order they were seen finished
        self.n_counted = 0  # trials that count toward the budget
        self.n_sampled = 0  # trials whose point came from the sampler

    def refresh(self, storage: Storage, study_id: int) -> None:
        if self.records:
            fresh = storage.load_trials(study_id, len(self.records) - 1, self.unfinished)
        else:
            fresh = storage.load_trials(study_id)
        for record in fresh:  # by number: updates first, then new trials
            if record.number > len(self.records):
                break  # a number below it is not committed yet: read on, next time
            self.put(record)

    def put(self, record: FrozenTrial) -> None:
        """Add the next trial, or replace a known one with a newer record of it."""
        number = record.number
        if number == len(self.records):
            self.records.append(record)
            old = None
        else:
            old = self.records[number]
            self.records[number] = record
        self.n_counted += record.counts_toward_budget - bool(old and old.counts_toward_budget)
        self.n_sampled += (SAMPLE_INDEX in record.system_attrs) - bool(
            old and SAMPLE_INDEX in old.system_attrs
        )
        if record.state.is_finished:
            if old is None or not old.state.is_finished:
                self.finished.append(number)
            self.unfinished.discard(number)
        else:
            self.unfinished.add(number)

    def in_state(self, state: TrialState) -> list[FrozenTrial]:
        return [self.records[n] for n in sorted(self.unfinished) if self.records[n].state == state]


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
        self._cache = _TrialCache()
        self.heartbeat_interval = HEARTBEAT_INTERVAL_S
        self.grace_period = GRACE_PERIOD_S
        self.poll_interval = POLL_INTERVAL_S  # waiting for other workers' trials
        self._running: set[int] = set()  # trial ids this process is evaluating
        self._proposals: dict[int, dict[str, Any]] = {}  # trial id -> suggested params drawn
        self._joint_space: tuple[tuple[Any, ...], Space] = ((), self.space)

    # -- what the study is ---------------------------------------------------

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def direction(self) -> Direction:
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
        check_count(budget, "budget")
        self._storage.update_study(self._info.study_id, budget=budget)
        self._info = replace(self._info, budget=budget)

    def set_sampler(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        """Switch sampler (for the trials to come); the past trials stay."""
        self.sampler = make_sampler(name, options, self.seed)
        options = dict(options or {})
        self._storage.update_study(self._info.study_id, sampler=name, sampler_options=options)
        self._info = replace(self._info, sampler=name, sampler_options=options)

    def set_pruner(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        """Switch pruner (for the trials to come)."""
        self.pruner = make_pruner(name, options)
        options = dict(options or {})
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
        self._refresh()
        return list(self._cache.records)

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
        if sort not in PAGE_SORTS:
            raise StudyConfigError(f"sort must be one of {', '.join(PAGE_SORTS)}, got {sort!r}")
        check_count(limit, "limit")
        if not (isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0):
            raise StudyConfigError(f"offset must be a non-negative integer, got {offset!r}")
        try:
            wanted = [TrialState(str(s).upper()) for s in states]
        except ValueError:
            raise StudyConfigError(
                f"states must be among {', '.join(TrialState)}, got {list(states)!r}"
            ) from None
        best_is_high = sort == "value" and self.direction.sign < 0
        return self._storage.trials_page(
            self._info.study_id, wanted, sort, descending != best_is_high, limit, offset
        )

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
            raise HpoError(
                f"study {self.name!r} has no trial {number} (it has trials 0..{len(trials) - 1})"
                if trials
                else f"study {self.name!r} has no trials yet"
            )
        return trials[number]

    @property
    def best_trial(self) -> FrozenTrial:
        complete = [t for t in self.trials if t.state == TrialState.COMPLETE]
        if not complete:
            raise NoCompletedTrialsError(f"study {self.name!r} has no completed trial yet")
        return self.direction.best_of(complete, key=value_of)

    @property
    def best_params(self) -> dict[str, Any]:
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        return value_of(self.best_trial)

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
        record = self._storage.create_trial(
            self._info.study_id, TrialState.WAITING, checked, system_attrs={"enqueued": True}
        )
        self._refresh()
        return record

    # -- the runner ------------------------------------------------------------

    def optimize(
        self,
        objective: Callable[[Trial], Any] | Objective | str | None = None,
        n_trials: int | None = None,
        timeout: float | None = None,
        catch: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        callbacks: Iterable[Callback] = (),
    ) -> None:
        """Run trials until `n_trials` more have run, `timeout` seconds have
        passed, the study's budget is met, or the sampler is exhausted.

        `objective`: a function of a Trial, a loaded Objective, a reference
        string, or None for the objective the study was created with.
        Exceptions of the `catch` types mark the trial FAIL and the study goes
        on; any other propagates after the trial is stored as FAIL. Ctrl-C
        stores the running trial as FAIL ("interrupted"), re-queues its point
        and re-raises KeyboardInterrupt. Results this machine could not store
        earlier (see `hpo.recovery`) are stored first.
        """
        fn = self._objective_function(objective)
        check_count(n_trials, "n_trials")
        check_timeout(timeout)
        catch = catch if isinstance(catch, tuple) else (catch,)
        self.sampler.check(self.space)
        deadline = None if timeout is None else time.monotonic() + timeout
        self._store_recovered()
        ran, told_waiting = 0, False
        with Heartbeat(self._storage, lambda: list(self._running), self.heartbeat_interval):
            while n_trials is None or ran < n_trials:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.reap_lost_trials()
                if self._budget is not None and self._cache.n_counted >= self._budget:
                    break
                try:
                    record = self._next_trial()
                except SamplerExhausted as exc:
                    log.info("study %s: %s", self.name, exc)
                    break
                except BudgetMet:
                    if not told_waiting:
                        log.info(
                            "study %s: the rest of the budget is running in other "
                            "workers; waiting for those trials",
                            self.name,
                        )
                        told_waiting = True
                    left = None if deadline is None else deadline - time.monotonic()
                    time.sleep(max(0.0, min(self.poll_interval, left or self.poll_interval)))
                    continue
                finished = self._run_trial(fn, record, catch)
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
    def _budget(self) -> int | None:
        return self._info.budget

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

    def _next_trial(self) -> FrozenTrial:
        """Claim the first enqueued trial, or create one at a point the sampler asks."""
        me, study_id = worker_id(), self._info.study_id
        for waiting in self._cache.in_state(TrialState.WAITING):
            params = self._complete_enqueued(waiting)
            claimed = self._storage.claim_trial(study_id, waiting, me, params, self._budget)
            if claimed is not None:
                self._cache.put(claimed)
                return claimed
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
                self.direction,
            )
            attrs = {SAMPLE_INDEX: index, ASK_SECONDS: round(time.perf_counter() - asked, 6)}
            params = {k: v for k, v in point.items() if k not in self._suggested}
            record = self._storage.create_trial(
                study_id, TrialState.RUNNING, params, me, attrs, number, self._budget
            )
            if record is not None:
                self._cache.put(record)
                self._proposals[record.trial_id] = {
                    k: v for k, v in point.items() if k in self._suggested
                }
                return record
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

    def _run_trial(
        self,
        fn: Callable[[Trial], Any],
        record: FrozenTrial,
        catch: tuple[type[BaseException], ...],
    ) -> FrozenTrial:
        trial = Trial(self, record)
        self._running.add(record.trial_id)  # the heartbeat thread reads this set
        try:
            result = fn(trial)
        except KeyboardInterrupt:
            self._interrupt(trial, record)
            raise
        except BaseException as exc:
            if is_pruned(exc):  # hpo's TrialPruned, or Optuna's
                return self._finish(trial, record, TrialState.PRUNED)
            failed = self._finish(trial, record, TrialState.FAIL, error=traceback.format_exc())
            if isinstance(exc, catch):
                return failed
            raise
        finally:
            self._running.discard(record.trial_id)
            self._proposals.pop(record.trial_id, None)
        try:
            value = as_objective_value(result)
        except ValueError as exc:
            return self._finish(trial, record, TrialState.FAIL, error=str(exc))
        return self._finish(trial, record, TrialState.COMPLETE, value=value)

    def _finish(
        self,
        trial: Trial,
        record: FrozenTrial,
        state: TrialState,
        value: float | None = None,
        error: str | None = None,
    ) -> FrozenTrial:
        """Store the outcome in one transaction and return the finished record."""
        intermediate = trial.intermediate_values
        if state == TrialState.PRUNED and intermediate:
            value = intermediate[max(intermediate)]  # a pruned trial keeps its last value
        finished_at = time.time()
        try:
            stored = self._storage.finish_trial(
                record.trial_id, state, trial.params, finished_at, value=value, error=error
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
            error=error,
            params=trial.params,
            finished_at=finished_at,
            intermediate=intermediate,
            user_attrs=trial.user_attrs,
        )
        self._cache.put(finished)
        return finished

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

    def _interrupt(self, trial: Trial, record: FrozenTrial) -> None:
        self._storage.fail_and_requeue(
            self._info.study_id,
            record,
            "interrupted (Ctrl-C or SIGTERM)",
            requeue=True,
            params=trial.params,
            retry_attrs={SEED_INDEX: record.seed_index},
        )
        self._refresh()

    # -- what a live Trial asks of its study (hpo.trial.TrialHost) -------------

    def store_params(self, trial_id: int, params: dict[str, Any]) -> None:
        """Persist a running trial's parameters as they grow (define-by-run), so that a
        retry after a crash evaluates the same point."""
        self._storage.set_params(trial_id, params)

    def store_intermediate(self, trial_id: int, step: int, value: float) -> bool:
        """Persist one intermediate value; False if that step was already reported."""
        return self._storage.add_intermediate(trial_id, step, value)

    def store_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        self._storage.set_user_attrs(trial_id, attrs)

    def sample_new_param(self, spec: dict[str, Any], record: FrozenTrial) -> Any:
        """A value for a parameter met in `trial.suggest_*`; register its first definition.

        Known parameters were drawn jointly when the trial started; a new one
        (or one asked with another range) is drawn on its own.

        An objective may change a parameter's range from trial to trial (Optuna
        allows it): the trial then samples within the range it asked for, and
        the sampler learns from the trials whose value lies inside it.
        """
        param = _param_from_spec(spec)
        if param.name not in self._suggested:
            stored = self._storage.add_suggested(self._info.study_id, param.to_spec())
            self._suggested[param.name] = _param_from_spec(stored)
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
        return sampler.ask(Space((param,)), history, rng, self.direction)[param.name]

    def check_suggest_kind(self, name: str, kind: str) -> None:
        params = [dim.param for dim in self.space.dims if dim.param.name == name]
        params += [self._suggested[name]] if name in self._suggested else []
        for param in params:
            actual = "categorical" if isinstance(param, Branch) else param.type
            if actual != kind:
                raise SpaceError(
                    f"parameter {name!r} is a {actual} parameter in this study; "
                    f"suggest_{kind} cannot ask for it"
                )

    def should_prune(self, trial: FrozenTrial) -> bool:
        """The pruner's decision on `trial` (its values so far) against everybody's."""
        if isinstance(self.pruner, NopPruner):
            return False
        self._refresh()  # other workers' values too
        others = [t for t in self._cache.records if t.number != trial.number]
        return self.pruner.prune(trial, others, self.direction)

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, storage={self._storage.display_url!r})"


# -- module-level API ----------------------------------------------------------------


def create_study(
    name: str | None = None,
    storage: str | Storage | None = None,
    space: Sequence[Mapping[str, Any]] | Space | None = None,
    sampler: str = "random",
    seed: int | None = None,
    direction: str | Direction = "minimize",
    load_if_exists: bool = False,
    *,
    sampler_options: Mapping[str, Any] | None = None,
    objective: str | Objective | None = None,
    objective_options: Mapping[str, Any] | None = None,
    budget: int | None = None,
    user_attrs: Mapping[str, Any] | None = None,
    pruner: str = "none",
    pruner_options: Mapping[str, Any] | None = None,
) -> Study:
    """Create a study (validated in full before anything is written).

    `storage`: an SQLAlchemy URL, an SQLite file path, a Storage, or None for
    an in-memory database. `objective`: a built-in name or reference stored
    with the study so that `hpo resume` can run it; a built-in objective also
    supplies the space when none is given. `budget`: the total number of
    trials the study aims for. `seed`: None draws one, which is stored, so
    every study can be replayed. `pruner`: see `hpo.pruners`.
    """
    direction = Direction.parse(direction)
    check_count(budget, "budget")
    if name is not None:
        check_name(name)
    check_seed(seed)
    loaded = (
        objective
        if isinstance(objective, Objective) or objective is None
        else load_objective(objective, objective_options)
    )
    if space is None and loaded is not None:
        space = loaded.space
    space = space if isinstance(space, Space) else Space.from_spec(space)
    if loaded is not None and loaded.space is not None:
        _check_builtin_names(loaded, space)
    make_sampler(sampler, sampler_options, seed or 0).check(space)  # before writing anything
    make_pruner(pruner, pruner_options)
    info = StudyInfo(
        study_id=-1,
        name=name or f"study-{uuid.uuid4().hex[:8]}",
        direction=direction,
        space=space.to_spec(),
        sampler=sampler,
        sampler_options=dict(sampler_options or {}),
        objective=loaded.ref if loaded else None,
        objective_options=dict(objective_options or {}),
        budget=budget,
        seed=secrets.randbits(31) if seed is None else int(seed),
        created_at=time.time(),
        user_attrs=dict(user_attrs or {}),
        pruner=pruner,
        pruner_options=dict(pruner_options or {}),
    )
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
    with borrowed(storage) as store:
        store.delete_study(name)


def studies(storage: str | Storage) -> list[StudySummary]:
    """Every study in the storage with its trial counts and best value."""
    with borrowed(storage) as store:
        return store.list_studies()


@contextmanager
def borrowed(storage: str | Storage, create: bool = False) -> Iterator[Storage]:
    """A Storage for one call: opened (and closed) here unless the caller gave one."""
    store = open_storage(storage, create=create)
    try:
        yield store
    finally:
        if store is not storage:
            store.close()


def open_storage(storage: str | Storage | None, create: bool = True) -> Storage:
    return storage if isinstance(storage, Storage) else Storage(storage, create=create)


_RECOVERED_NOTES = {
    Recovered.TRIAL: "",
    Recovered.RETRY: "; it had been found lost, and its queued retry {retry} takes the "
    "result instead of running",
    Recovered.ATTRIBUTE: "; its point had already run again, so the result is kept in the "
    "trial's system attribute recovered_result",
}


def _param_from_spec(spec: Mapping[str, Any]) -> Param:
    return Space.from_spec([spec]).params[0]


def _check_builtin_names(objective: Objective, space: Space) -> None:
    """A built-in objective reads its own parameter names: the space must have them."""
    needed = {dim.param.name for dim in Space.from_spec(objective.space).dims}
    missing = sorted(needed - {dim.param.name for dim in space.dims})
    if missing:
        raise StudyConfigError(
            f"objective {objective.ref!r} reads parameters "
            f"{sorted(needed)}; the space lacks {missing}"
        )
