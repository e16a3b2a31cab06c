"""Persistence of studies and trials through SQLAlchemy, with `hpo.schema` (the tables)
and `hpo.queries` (the statements): the only modules with SQL.

Any SQLAlchemy URL works; a bare path means an SQLite file and None an
in-memory database. Everything is stored as JSON text, never pickle.

Durability: every state change of a trial is one committed transaction.
SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction
survives the process being killed at any instant (it is in the WAL file,
which the OS writes back); only a power cut can lose the last few.
Write transactions on SQLite start with ``BEGIN IMMEDIATE`` and wait for the
lock (see `hpo.connection`).

Transient errors (SQLite locked past its busy timeout, a connection the
server dropped) are retried with backoff, the whole transaction again, for
up to `retry_seconds`; then TransientStorageError reaches the caller.

Concurrency: a transaction that adds or starts a trial first locks the
study's row (``SELECT ... FOR UPDATE``; on SQLite ``BEGIN IMMEDIATE`` already
serializes writers), so trial numbers are allocated without races and a
study's budget is checked and taken in the same transaction: however many
workers, no more trials start than the budget allows.

Loading a study costs one query per table, however many trials it has; a
running study refreshes only the trials it has not seen finish.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hpo.checks import check_count
from hpo.connection import (
    BUSY_TIMEOUT_S,
    check_sqlite_file,
    is_memory_url,
    make_engine,
    parse_url,
    translated_errors,
)
from hpo.errors import (
    DroppedConnectionError,
    DuplicateStudyError,
    SchemaVersionError,
    StorageError,
    StudyConfigError,
    StudyNotFoundError,
    TransientStorageError,
    TrialNotFoundError,
)
from hpo.queries import (
    INSERT_TRIAL,
    MAX_NUMBER,
    PAGE_BY_IDS,
    PAGE_KEYS,
    TRIAL_COLUMNS,
    TRIALS_AFTER,
    TRIALS_ALL,
    TRIALS_SINCE,
    VALUE_COLUMNS,
    finish,
    insert_trial,
    lock_study,
    page_by_ids,
    paged,
    row_of,
    same_value,
    study_from_row,
    take_places,
    trials_from_rows,
)
from hpo.records import FrozenTrial, StudyInfo, StudySummary, TrialPage, TrialState
from hpo.schema import (
    SCHEMA_VERSION,
    STATE_COLUMNS,
    create_schema,
    migrate,
    schema_version,
    studies_table,
    suggested_table,
    trials_table,
    values_table,
)

COMPARISON_ATTR = "comparison"  # the user attribute naming a member study's comparison
PAGE_SORTS = ("number", "value", "duration")  # the orders of a page of trials
RETRY_SECONDS = 60.0  # how long transient errors are retried
_FIRST_DELAY_S, _MAX_DELAY_S = 0.05, 2.0
_NUMBER_RETRIES = 20  # concurrent inserts racing for the next trial number

log = logging.getLogger("hpo")

_t, _v, _s = trials_table, values_table, studies_table


def comparison_of(info: StudyInfo) -> str | None:
    """The comparison a study was run for (`hpo compare`), if any: its user attribute."""
    return info.user_attrs.get(COMPARISON_ATTR)


def _retried(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a storage method again, with exponential backoff, on a transient error.

    Each method is one or more whole transactions, so running it again is
    safe: what did not commit is rolled back, and the methods are written so
    that one which did commit before its answer was lost is recognized.
    """

    @functools.wraps(method)
    def again(self: Storage, *args: Any, **kwargs: Any) -> Any:
        return _with_backoff(
            lambda: method(self, *args, **kwargs), TransientStorageError, self.retry_seconds
        )

    return again


def _with_backoff(call: Callable[[], Any], retry_on: type[StorageError], seconds: float) -> Any:
    """call(), again after 50 ms, 100 ms, ... (at most 2 s apart) while it raises
    `retry_on`, for up to `seconds`; then the last error."""
    deadline = time.monotonic() + seconds
    delay = _FIRST_DELAY_S
    while True:
        try:
            return call()
        except retry_on as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s; retrying in %.2f s", exc, delay)
            time.sleep(delay)
            delay = min(2 * delay, _MAX_DELAY_S)


def _insert_study(conn: Connection, info: StudyInfo) -> int:
    """Insert a study's row (its study_id is ignored); its new id."""
    named = set(STATE_COLUMNS) | {"direction", "directions"}
    row = {c.name: getattr(info, c.name) for c in studies_table.c if c.name not in named}
    row["direction"] = info.directions[0]
    row["directions"] = list(info.directions) if len(info.directions) > 1 else None
    key = conn.execute(sa.insert(studies_table).values(**row)).inserted_primary_key
    assert key is not None  # (a plain INSERT of one row always has it)
    return int(key[0])


def _insert_trials(
    conn: Connection, study_id: int, trials: Sequence[FrozenTrial], first: int
) -> list[FrozenTrial]:
    """Insert trials numbered from `first` with their intermediate values (budget places are
    the caller's); the trials with their new ids and numbers."""
    rows = [row_of(t, study_id, first + i) for i, t in enumerate(trials)]
    if rows:
        conn.execute(INSERT_TRIAL, rows)
    numbered = sa.select(_t.c.number, _t.c.trial_id).where(
        _t.c.study_id == study_id, _t.c.number >= first
    )
    ids = {number: trial_id for number, trial_id in conn.execute(numbered)}
    steps = [
        {"trial_id": ids[first + i], "step": step, "value": value}
        for i, t in enumerate(trials)
        for step, value in t.intermediate.items()
    ]
    if steps:
        conn.execute(sa.insert(_v), steps)
    return [replace(t, trial_id=ids[first + i], number=first + i) for i, t in enumerate(trials)]


class Recovered(StrEnum):
    """Where Storage.store_recovered put a result kept while the database was unreachable.

    TRIAL: the trial was still RUNNING and now has it. RETRY: the trial had
    been reaped as lost; its queued retry, not yet started, takes the result
    instead of running again. ATTRIBUTE: its point had already run again; the
    result is kept in the trial's system attribute "recovered_result".
    """

    TRIAL = "trial"
    RETRY = "retry"
    ATTRIBUTE = "attribute"


class Storage:
    """A database of studies. `url`: SQLAlchemy URL, SQLite path, or None (memory).

    With `create=False` a missing SQLite file or an empty database is an
    error instead of being initialized (commands that only read).
    `busy_timeout`: how long SQLite waits for another writer's lock;
    `retry_seconds`: how long transient errors are retried (on opening, only
    a connection the server dropped: a wrong URL fails at once).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        create: bool = True,
        busy_timeout: float = BUSY_TIMEOUT_S,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.retry_seconds = retry_seconds
        self._engine = make_engine(parse_url(url), busy_timeout)
        try:
            check_sqlite_file(self._engine, create)
            self._open(create)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def url(self) -> sa.URL:
        """The database's URL, password included: never print it (see display_url)."""
        return self._engine.url

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def identity(self) -> str:
        """The database, named alike from any working directory (keys hpo.recovery files)."""
        url = self._engine.url
        database = url.database or ""
        if self.is_sqlite and not self.is_memory and not database.startswith("file:"):
            url = url.set(database=os.path.abspath(database))
        return url.render_as_string(hide_password=False)

    @property
    def is_sqlite(self) -> bool:
        return self._engine.dialect.name == "sqlite"

    @property
    def is_memory(self) -> bool:
        return is_memory_url(self._engine.url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translated_errors(self.display_url), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One transaction: commit on success, roll back on error, always close."""
        with translated_errors(self.display_url), self._engine.connect() as conn:
            conn.execution_options(hpo_write=True)
            with conn.begin():
                yield conn

    def _open(self, create: bool) -> None:
        """Read (or create) the schema; a connection the server drops meanwhile is retried.

        A server that refuses the connection, or a wrong URL, fails at once.
        """
        _with_backoff(lambda: self._init_schema(create), DroppedConnectionError, self.retry_seconds)

    def _init_schema(self, create: bool) -> None:
        with self._read() as conn:
            version = schema_version(conn)
            tables = set(sa.inspect(conn).get_table_names())
        if version is not None:
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.display_url} was written by a newer hpo (schema version "
                    f"{version}; this hpo reads up to {SCHEMA_VERSION}); upgrade hpo to use "
                    "it. The database was not modified."
                )
            if version < SCHEMA_VERSION:
                with self._write() as conn:
                    migrate(conn)
            return
        if not create:
            raise StorageError(f"{self.display_url} holds no hpo studies")
        if self.is_sqlite and tables:
            raise StorageError(
                f"{self.display_url} is an SQLite database of another "
                f"application (tables: {', '.join(sorted(tables)[:5])}); "
                "refusing to write hpo tables into it"
            )
        try:
            with self._write() as conn:
                create_schema(conn)
        except (IntegrityError, StorageError):
            if not self._has_schema():  # else another process created it at the same moment
                raise
        if self.is_sqlite and not self.is_memory:
            self._set_wal()

    def _has_schema(self) -> bool:
        with self._read() as conn:
            return "hpo_meta" in sa.inspect(conn).get_table_names()

    def _set_wal(self) -> None:
        """WAL is a property of the file: set once, outside any transaction."""
        with translated_errors(self.display_url):
            raw = self._engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA journal_mode=WAL")
            finally:
                raw.close()

    # -- studies -------------------------------------------------------------

    @_retried
    def create_study(self, info: StudyInfo) -> StudyInfo:
        """Insert a study (its study_id is ignored); return it with its new id."""
        try:
            with self._write() as conn:
                study_id = _insert_study(conn, info)
        except IntegrityError:
            raise self._duplicate(info.name) from None
        return replace(info, study_id=study_id)

    def _duplicate(self, name: str) -> DuplicateStudyError:
        return DuplicateStudyError(f"a study named {name!r} already exists in {self.display_url}")

    def import_study(
        self, info: StudyInfo, suggested: Sequence[dict[str, Any]], trials: Sequence[FrozenTrial]
    ) -> StudyInfo:
        """Create a study with its define-by-run parameters (specs) and its trials, all in
        one transaction: an import (`hpo.optuna_io`) is all there or not at all.

        The trials are finished or WAITING and take the numbers 0, 1, ... in their
        order; a FAIL with "requeued_as" in its system attributes is stored as
        re-queued. The study's budget_taken is set from them in the same transaction.
        Not retried, like add_trials; DuplicateStudyError if the name is taken.
        """
        if any(t.state == TrialState.RUNNING for t in trials):
            raise ValueError("an imported trial is finished or WAITING, not RUNNING")
        try:
            with self._write() as conn:
                study_id = _insert_study(conn, info)
                if suggested:
                    conn.execute(
                        sa.insert(suggested_table),
                        [{"study_id": study_id, "name": s["name"], "spec": s} for s in suggested],
                    )
                take_places(conn, study_id, sum(t.counts_toward_budget for t in trials))
                _insert_trials(conn, study_id, trials, first=0)
        except IntegrityError:
            raise self._duplicate(info.name) from None
        return replace(info, study_id=study_id)

    @_retried
    def get_study(self, name: str) -> StudyInfo:
        with self._read() as conn:
            row = (
                conn.execute(sa.select(studies_table).where(studies_table.c.name == name))
                .mappings()
                .first()
            )
        if row is None:
            raise StudyNotFoundError(
                f"no study named {name!r} in {self.display_url}{self._near_names(name)}"
            )
        return study_from_row(row)

    def _near_names(self, name: str) -> str:
        from hpo.errors import did_you_mean

        infos = [s.info for s in self.list_studies()]
        members = sum(comparison_of(info) == name for info in infos)
        if members:
            return (
                f" ({name!r} is a comparison of {members} studies: `hpo studies --all` "
                f"lists them, `hpo report {name}` sums them up)"
            )
        return did_you_mean(name, [info.name for info in infos])

    @_retried
    def list_studies(self) -> list[StudySummary]:
        """Every study with its counts per state: two queries in all."""
        t = trials_table
        with self._read() as conn:
            infos = [
                study_from_row(row)
                for row in conn.execute(
                    sa.select(studies_table).order_by(studies_table.c.study_id)
                ).mappings()
            ]
            stats = conn.execute(
                sa.select(
                    t.c.study_id,
                    t.c.state,
                    sa.func.count(),
                    sa.func.min(t.c.value),
                    sa.func.max(t.c.value),
                    sa.func.max(sa.func.coalesce(t.c.finished_at, t.c.started_at)),
                ).group_by(t.c.study_id, t.c.state)
            ).all()
        summaries = []
        for info in infos:
            counts, best, last = {}, None, None
            for study_id, state, count, low, high, latest in stats:
                if study_id != info.study_id:
                    continue
                counts[state] = count
                if state == TrialState.COMPLETE and info.n_objectives == 1:  # (else: a front)
                    best = info.directions[0].best((low, high))  # of the min and max
                if latest is not None and (last is None or latest > last):
                    last = latest
            summaries.append(StudySummary(info, counts, best, last))
        return summaries

    @_retried
    def update_study(self, study_id: int, **values: Any) -> None:
        """Change stored fields of a study (budget, sampler, sampler_options)."""
        with self._write() as conn:
            conn.execute(
                sa.update(studies_table)
                .where(studies_table.c.study_id == study_id)
                .values(**values)
            )

    @_retried
    def delete_study(self, name: str) -> None:
        """Remove a study and all its trials in one transaction."""
        study_id = self.get_study(name).study_id
        trial_ids = (
            sa.select(trials_table.c.trial_id)
            .where(trials_table.c.study_id == study_id)
            .scalar_subquery()
        )
        with self._write() as conn:
            conn.execute(sa.delete(values_table).where(values_table.c.trial_id.in_(trial_ids)))
            for table in (trials_table, suggested_table, studies_table):
                conn.execute(sa.delete(table).where(table.c.study_id == study_id))

    @_retried
    def load_suggested(self, study_id: int) -> dict[str, dict[str, Any]]:
        """Parameters added by `trial.suggest_*`: name -> spec."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(suggested_table.c.name, suggested_table.c.spec).where(
                    suggested_table.c.study_id == study_id
                )
            )
            return {name: spec for name, spec in rows}

    @_retried
    def add_suggested(self, study_id: int, spec: dict[str, Any]) -> dict[str, Any]:
        """Persist a new parameter's spec; if another worker added it first, return theirs."""
        try:
            with self._write() as conn:
                conn.execute(
                    sa.insert(suggested_table).values(
                        study_id=study_id, name=spec["name"], spec=spec
                    )
                )
            return spec
        except IntegrityError:
            return self.load_suggested(study_id)[spec["name"]]

    # -- trials ----------------------------------------------------------------

    @_retried
    def load_trials(
        self,
        study_id: int,
        after: int = -1,
        numbers: Collection[int] = (),
        param_defs: Mapping[str, Any] | None = None,
    ) -> list[FrozenTrial]:
        """Trials numbered above `after` or listed in `numbers`, by number.

        The defaults load the whole study: one query for trials, one for
        intermediate values. `param_defs` (the study's parameter definitions)
        is attached to each record, for FrozenTrial.distributions.
        """
        listed = sorted(n for n in numbers if n <= after)  # (the others are above it)
        query = TRIALS_SINCE if listed else TRIALS_AFTER if after >= 0 else TRIALS_ALL
        binds = {"b_study_id": study_id, "b_after": after, "b_numbers": listed}
        with self._read() as conn:
            rows = conn.execute(query[0], binds).all()
            values = conn.execute(query[1], binds).all() if rows else []
        return trials_from_rows(rows, values, param_defs)

    def page(
        self,
        info: StudyInfo,
        states: Collection[TrialState | str] = (),
        sort: str = "number",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> TrialPage:
        """`Study.trials_page` of the study `info`: its arguments checked, "value" best
        first for the study's (first) direction."""
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
        best_is_high = sort == "value" and info.directions[0].sign < 0
        return self.trials_page(
            info.study_id, wanted, sort, descending != best_is_high, limit, offset
        )

    @_retried
    def trials_page(
        self,
        study_id: int,
        states: Collection[TrialState] = (),
        order: str = "number",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> TrialPage:
        """One page of a study's trials, filtered, sorted and cut in the database.

        `states`: only these (none: all). `order`: "number", "value" or "duration"
        (finished_at - started_at); trials without one come last either way, ties
        by number. `total` counts every trial the filter keeps.
        """
        where = _t.c.study_id == study_id
        if states:
            where = sa.and_(where, _t.c.state.in_([TrialState(s).value for s in states]))
        key = PAGE_KEYS[order]
        ordered = (key.is_(None), key.desc() if descending else key, _t.c.number)
        rows: Sequence[Any]
        values: Sequence[Any]
        with self._read() as conn:
            if limit is not None and limit <= PAGE_BY_IDS:
                rows, values = page_by_ids(conn, where, ordered, limit, offset)
            else:  # (all the filter's intermediate values: too many ids to bind)
                rows = conn.execute(
                    paged(sa.select(*TRIAL_COLUMNS).where(where).order_by(*ordered), limit, offset)
                ).all()
                values = conn.execute(
                    sa.select(*VALUE_COLUMNS)
                    .join(_t, _t.c.trial_id == _v.c.trial_id)
                    .where(where)
                    .order_by(_v.c.trial_id, _v.c.step)
                ).all()
            total = conn.execute(sa.select(sa.func.count()).select_from(_t).where(where)).scalar()
        return TrialPage(trials_from_rows(rows, values), total or 0)

    @_retried
    def budget_taken(self, study_id: int) -> int:
        """Places taken in the study's budget: trials neither WAITING nor re-queued."""
        with self._read() as conn:
            taken = conn.execute(
                sa.select(_s.c.budget_taken).where(_s.c.study_id == study_id)
            ).scalar()
        if taken is None:
            raise StudyNotFoundError(f"study id {study_id} is not in {self.display_url}")
        return int(taken)

    def add_trials(self, study_id: int, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        """Insert finished trials in bulk (an import, a copy, a benchmark's history).

        One transaction, numbered on from the study's last trial in their order;
        their trial_id and number are given here. Not retried: a retry after a
        commit whose answer was lost would add them twice.
        """
        if not all(t.state.is_finished for t in trials):
            raise ValueError("only finished trials can be added in bulk")
        with self._write() as conn:
            take_places(conn, study_id, sum(t.counts_toward_budget for t in trials))
            last = conn.execute(MAX_NUMBER, {"b_sid": study_id}).scalar()
            first = 0 if last is None else last + 1
            return _insert_trials(conn, study_id, trials, first)

    @_retried
    def create_trial(
        self,
        study_id: int,
        state: TrialState,
        params: dict[str, Any],
        worker: str | None = None,
        system_attrs: dict[str, Any] | None = None,
        number: int | None = None,
        budget: int | None = None,
        user_attrs: dict[str, Any] | None = None,
    ) -> FrozenTrial | None:
        """Insert a WAITING or RUNNING trial.

        With `number`, the trial takes exactly that number, or None is returned
        when another worker took it first (the caller refreshes and asks
        again). Without it, the trial takes the next free number. With
        `budget`, a RUNNING trial starts only if fewer than `budget` trials
        take a place in it (see `take_places`); else BudgetMet is raised.

        A retry after a commit whose answer was lost (a dropped connection)
        finds the number taken by its own first try: that RUNNING trial gets
        no heartbeat, so after the grace period it is reaped as lost and its
        point queued again. Nothing is lost; the point runs later.
        """
        for _ in range(_NUMBER_RETRIES):
            try:
                with self._write() as conn:
                    if state == TrialState.WAITING:
                        lock_study(conn, study_id)
                    else:
                        take_places(conn, study_id, 1, budget)
                    return insert_trial(
                        conn,
                        study_id,
                        state,
                        params,
                        worker,
                        system_attrs or {},
                        number,
                        user_attrs or {},
                    )
            except IntegrityError:
                if not self._study_exists(study_id):
                    raise StudyNotFoundError(
                        f"study id {study_id} is no longer in {self.display_url} (deleted?)"
                    ) from None
                if number is not None:
                    return None
                time.sleep(0.001)  # another worker took that number; take the next
        raise StorageError(
            f"could not allocate a trial number in {self.display_url} "
            f"after {_NUMBER_RETRIES} attempts"
        )

    def _study_exists(self, study_id: int) -> bool:
        with self._read() as conn:
            return (
                conn.execute(
                    sa.select(studies_table.c.study_id).where(studies_table.c.study_id == study_id)
                ).first()
                is not None
            )

    @_retried
    def claim_trial(
        self,
        study_id: int,
        trial: FrozenTrial,
        worker: str,
        params: dict[str, Any],
        budget: int | None = None,
        system_attrs: dict[str, Any] | None = None,
    ) -> FrozenTrial | None:
        """WAITING -> RUNNING with the given (completed) params; None if taken first.

        With `budget`, BudgetMet is raised instead when the budget is taken.
        `system_attrs` are added to the trial's own.
        """
        now = time.time()
        values: dict[str, Any] = {
            "state": TrialState.RUNNING,
            "started_at": now,
            "heartbeat_at": now,
            "worker": worker,
            "params": params,
        }
        if system_attrs:
            values["system_attrs"] = {**trial.system_attrs, **system_attrs}
        with self._write() as conn:
            take_places(conn, study_id, 1, budget)
            claimed = conn.execute(
                sa.update(trials_table)
                .where(
                    trials_table.c.trial_id == trial.trial_id,
                    trials_table.c.state == TrialState.WAITING,
                )
                .values(**values)
            ).rowcount
            if claimed != 1:
                take_places(conn, study_id, -1)  # another worker claimed it: give it back
        return replace(trial, **values) if claimed == 1 else None

    @_retried
    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        params: dict[str, Any],
        finished_at: float,
        value: float | None = None,
        error: str | None = None,
        values: list[float] | None = None,
        constraints: list[float] | None = None,
    ) -> bool:
        """RUNNING -> a finished state. False if the trial was no longer RUNNING.
        `values`: of a study of several objectives (`value` is then None).

        The guard on RUNNING is what keeps a finished trial from ever being
        rewritten (say, by a worker that was wrongly presumed dead). A retry
        after a commit whose answer was lost finds its own result: True.
        """
        with self._write() as conn:
            done = finish(
                conn,
                trial_id,
                state,
                params,
                finished_at,
                value,
                error,
                None,
                values,
                constraints,
            )
            if done == 1:
                return True
            stored = conn.execute(
                sa.select(trials_table.c.state, trials_table.c.finished_at).where(
                    trials_table.c.trial_id == trial_id
                )
            ).first()
            return stored is not None and tuple(stored) == (state.value, finished_at)

    @_retried
    def fail_and_requeue(
        self,
        study_id: int,
        trial: FrozenTrial,
        error: str,
        requeue: bool,
        params: dict[str, Any] | None = None,
        expect_heartbeat: float | None = None,
        retry_attrs: dict[str, Any] | None = None,
    ) -> FrozenTrial | None:
        """Mark a RUNNING trial FAIL and, with `requeue`, enqueue its point again.

        One transaction. With `expect_heartbeat`, nothing happens unless the
        heartbeat is still that value (another worker reaped it, or it came
        back to life). Returns the new WAITING trial, if any.
        """
        params = trial.params if params is None else params
        with self._write() as conn:
            lock_study(conn, study_id)  # (it allocates a number)
            changed = finish(
                conn,
                trial.trial_id,
                TrialState.FAIL,
                params,
                time.time(),
                error=error,
                heartbeat=expect_heartbeat,
            )
            if changed != 1 or not requeue:
                return None
            retry = insert_trial(
                conn,
                study_id,
                TrialState.WAITING,
                params,
                None,
                {"retry_of": trial.number, "retry_reason": error, **(retry_attrs or {})},
            )
            conn.execute(
                sa.update(trials_table)
                .where(trials_table.c.trial_id == trial.trial_id)
                .values(
                    requeued=1, system_attrs={**trial.system_attrs, "requeued_as": retry.number}
                )
            )
            take_places(conn, study_id, -1)  # its retry takes the place when it starts
            return retry

    @_retried
    def store_recovered(
        self,
        study_id: int,
        trial_id: int,
        state: TrialState,
        params: dict[str, Any],
        finished_at: float,
        value: float | None,
        error: str | None,
        values: list[float] | None = None,
        constraints: list[float] | None = None,
    ) -> tuple[Recovered, int | None]:
        """Apply a result a worker could not store at the time (see hpo.recovery).

        Returns where it went, and the number of the retry that took it (None
        unless Recovered.RETRY).
        """
        t = trials_table
        with self._write() as conn:
            lock_study(conn, study_id)
            row = conn.execute(
                sa.select(t.c.system_attrs).where(
                    t.c.trial_id == trial_id, t.c.study_id == study_id
                )
            ).first()
            if row is None:
                raise TrialNotFoundError(
                    f"trial id {trial_id} of study {study_id} is not in {self.display_url}"
                )
            done = finish(
                conn,
                trial_id,
                state,
                params,
                finished_at,
                value,
                error,
                None,
                values,
                constraints,
            )
            if done == 1:
                return Recovered.TRIAL, None
            attrs = row[0]
            retry = attrs.get("requeued_as")
            if retry is not None:
                outcome = {
                    "state": state.value,
                    "params": params,
                    "value": value,
                    "objective_values": values,
                    "constraints": constraints,
                    "error": error,
                    "finished_at": finished_at,
                }
                taken = conn.execute(
                    sa.update(t)
                    .where(
                        t.c.study_id == study_id,
                        t.c.number == retry,
                        t.c.state == TrialState.WAITING.value,
                    )
                    .values(started_at=finished_at, **outcome)
                ).rowcount
                if taken == 1:
                    take_places(conn, study_id, 1)  # the retry: WAITING -> finished
                    return Recovered.RETRY, retry
            conn.execute(
                sa.update(t)
                .where(t.c.trial_id == trial_id)
                .values(
                    system_attrs={
                        **attrs,
                        "recovered_result": {
                            "state": state.value,
                            "value": value,
                            "values": values,
                            "constraints": constraints,
                            "error": error,
                            "finished_at": finished_at,
                        },
                    }
                )
            )
            return Recovered.ATTRIBUTE, None

    @_retried
    def set_params(self, trial_id: int, params: dict[str, Any]) -> None:
        """Store a running trial's parameters as they grow (define-by-run)."""
        with self._write() as conn:
            conn.execute(
                sa.update(trials_table)
                .where(
                    trials_table.c.trial_id == trial_id, trials_table.c.state == TrialState.RUNNING
                )
                .values(params=params)
            )

    @_retried
    def add_intermediate(self, trial_id: int, step: int, value: float) -> bool:
        """Store one intermediate value; False if that step was already reported."""
        try:
            with self._write() as conn:
                conn.execute(
                    sa.insert(values_table).values(trial_id=trial_id, step=step, value=value)
                )
            return True
        except IntegrityError:  # reported before, or by the first try of a retried call
            with self._read() as conn:
                stored = conn.execute(
                    sa.select(values_table.c.value).where(
                        values_table.c.trial_id == trial_id, values_table.c.step == step
                    )
                ).first()
            return stored is not None and same_value(stored[0], value)

    @_retried
    def set_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(trials_table)
                .where(trials_table.c.trial_id == trial_id)
                .values(user_attrs=attrs)
            )

    @_retried
    def heartbeat(self, trial_ids: Sequence[int]) -> None:
        """Refresh the heartbeat of these trials while they run."""
        if not trial_ids:
            return
        with self._write() as conn:
            conn.execute(
                sa.update(trials_table)
                .where(
                    trials_table.c.trial_id.in_(list(trial_ids)),
                    trials_table.c.state == TrialState.RUNNING,
                )
                .values(heartbeat_at=time.time())
            )
