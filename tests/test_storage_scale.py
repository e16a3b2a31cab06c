"""Storage at scale: every per-trial statement reads through an index, the budget's
count of taken places stays exact, trials are added in bulk and listed a page at a time.

Every test runs against a real database: an SQLite file, in-memory SQLite, and
PostgreSQL / MySQL when their URLs are set (see conftest.py). None measures time:
what keeps a trial's cost flat as a study grows is checked through the
databases' query plans.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import hpo
from hpo.errors import BudgetMet, StudyConfigError
from hpo.records import FrozenTrial, TrialState
from hpo.storage import Recovered, Storage, StudyInfo
from hpo.study import Study
from hpo.trial import Trial
from tests.conftest import drop_hpo_tables, server_url

SPACE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]
PER_TRIAL_TABLES = ("hpo_trials", "hpo_intermediate_values")
HISTORY = 3000  # trials already in the study whose per-trial statements are explained


def finished(n: int, state: TrialState = TrialState.COMPLETE, steps: int = 0) -> list[FrozenTrial]:
    """n finished trials as a study run elsewhere would have stored them."""
    now = time.time()
    return [
        FrozenTrial(
            trial_id=-1,
            number=-1,
            state=state,
            params={"x": (i % 97) / 97},
            value=None if state == TrialState.FAIL else float(i % 89),
            intermediate={step: float(i + step) for step in range(steps)},
            started_at=now - 100 + i * 0.01,
            finished_at=now - 100 + i * 0.01 + (i % 7),
            worker="elsewhere:1",
            error="boom" if state == TrialState.FAIL else None,
            system_attrs={"sample": i},
        )
        for i in range(n)
    ]


def new_study(store: Storage, name: str = "scale", **options: Any) -> Study:
    return hpo.create_study(name, store, SPACE, sampler="random", seed=1, **options)


def taken_by_the_trials(store: Storage, study_id: int) -> int:
    """The budget's taken places counted from the trials themselves (the Python form)."""
    trials = store.load_trials(study_id)
    return sum(t.state == TrialState.RUNNING or t.counts_toward_budget for t in trials)


# -- bulk add ---------------------------------------------------------------------------


def test_add_trials_numbers_them_after_the_last(storage: Storage) -> None:
    study = new_study(storage)
    sid = study.info.study_id
    storage.create_trial(sid, TrialState.WAITING, {"x": 0.5})
    added = storage.add_trials(sid, finished(3, steps=2))
    assert [t.number for t in added] == [1, 2, 3]
    loaded = storage.load_trials(sid)
    assert loaded[1:] == added
    assert loaded[2].intermediate == {0: 1.0, 1: 2.0}
    assert storage.budget_taken(sid) == 3 == taken_by_the_trials(storage, sid)
    with pytest.raises(ValueError, match="finished"):
        storage.add_trials(sid, [FrozenTrial(-1, -1, TrialState.RUNNING, {"x": 0.1})])
    assert len(storage.load_trials(sid)) == 4


# -- the count of places taken in the budget --------------------------------------------


def test_budget_taken_follows_every_change_of_state(storage: Storage) -> None:
    study = new_study(storage)
    sid = study.info.study_id

    def check() -> None:
        assert storage.budget_taken(sid) == taken_by_the_trials(storage, sid)

    storage.add_trials(sid, finished(2) + finished(1, TrialState.FAIL))
    check()
    queued = storage.create_trial(sid, TrialState.WAITING, {"x": 0.2})
    check()
    running = storage.create_trial(sid, TrialState.RUNNING, {"x": 0.3}, "w:1", budget=5)
    assert running is not None and queued is not None
    check()
    claimed = storage.claim_trial(sid, queued, "w:2", {"x": 0.2}, budget=5)
    assert claimed is not None
    check()
    assert storage.claim_trial(sid, queued, "w:3", {"x": 0.2}) is None  # taken first
    check()
    with pytest.raises(BudgetMet):  # 3 finished + 2 running fill a budget of 5
        storage.create_trial(sid, TrialState.RUNNING, {"x": 0.4}, budget=5)
    check()
    retry = storage.fail_and_requeue(sid, running, "worker lost", requeue=True)
    assert retry is not None
    check()  # the lost trial gave its place back; its retry waits
    where, number = storage.store_recovered(
        sid, running.trial_id, TrialState.COMPLETE, {"x": 0.3}, time.time(), 1.0, None
    )
    assert (where, number) == (Recovered.RETRY, retry.number)
    check()  # the retry took the result: a place again
    storage.finish_trial(claimed.trial_id, TrialState.COMPLETE, {"x": 0.2}, time.time(), 2.0)
    lost = storage.create_trial(sid, TrialState.RUNNING, {"x": 0.5}, "w:4")
    assert lost is not None
    storage.fail_and_requeue(sid, lost, "worker lost", requeue=False)
    check()  # failed without a retry: it counts
    assert storage.budget_taken(sid) == 6


def test_a_budget_is_exact_with_many_workers_racing(storage_url: str) -> None:
    """Several Storage objects (as separate workers hold) start trials against one
    budget: exactly the budget starts, and the count stays exact."""
    stores = [Storage(storage_url) for _ in range(3)]
    try:
        study = new_study(stores[0], f"race-{time.time_ns()}")
        sid, started = study.info.study_id, 0
        for _ in range(4):
            for store in stores:
                try:
                    store.create_trial(sid, TrialState.RUNNING, {"x": 0.1}, budget=7)
                    started += 1
                except BudgetMet:
                    pass
        assert started == 7
        assert stores[1].budget_taken(sid) == 7 == taken_by_the_trials(stores[2], sid)
    finally:
        for store in stores:
            store.close()


# -- paged listing ----------------------------------------------------------------------


def paged_study(store: Storage, direction: str = "minimize") -> Study:
    study = new_study(store, direction=direction)
    sid = study.info.study_id
    store.add_trials(sid, finished(6) + finished(2, TrialState.FAIL))
    store.create_trial(sid, TrialState.RUNNING, {"x": 0.9}, "w:1")
    store.create_trial(sid, TrialState.WAITING, {"x": 0.8})
    return study


def listed(study: Study, **page: Any) -> list[int]:
    return [t.number for t in study.trials_page(**page).trials]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_trials_page_matches_sorting_in_python(storage: Storage, direction: str) -> None:
    study = paged_study(storage, direction)
    trials = study.trials
    sign = 1.0 if direction == "minimize" else -1.0
    by_value = sorted(trials, key=lambda t: (t.value is None, sign * (t.value or 0.0)))
    by_duration = sorted(trials, key=lambda t: (t.duration is None, t.duration or 0.0))
    assert listed(study) == [t.number for t in trials]
    assert listed(study, sort="value") == [t.number for t in by_value]
    assert listed(study, sort="duration") == [t.number for t in by_duration]
    worst_first = sorted(trials, key=lambda t: (t.value is None, -sign * (t.value or 0.0)))
    assert listed(study, sort="value", descending=True) == [t.number for t in worst_first]
    longest = sorted(trials, key=lambda t: (t.duration is None, -(t.duration or 0.0)))
    assert listed(study, sort="duration", descending=True) == [t.number for t in longest]


def test_trials_page_filters_and_cuts(storage: Storage) -> None:
    study = paged_study(storage)
    page = study.trials_page(states=["complete", TrialState.FAIL], limit=3, offset=5)
    assert page.total == 8
    assert [t.number for t in page.trials] == [5, 6, 7]
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in page.trials)
    everything = study.trials_page(offset=9)
    assert (everything.total, [t.number for t in everything.trials]) == (10, [9])
    assert study.trials_page(offset=50).trials == []
    assert study.trials_page(states=["RUNNING"]).trials == [study.trials[8]]


def test_trials_page_refuses_bad_arguments(storage: Storage) -> None:
    study = paged_study(storage)
    for bad in ({"sort": "speed"}, {"limit": 0}, {"offset": -1}, {"states": ["DONE"]}):
        with pytest.raises(StudyConfigError):
            study.trials_page(**bad)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])
def test_a_whole_study_and_large_pages_are_listed(tmp_path: Path, backend: str) -> None:
    """Pages above what a statement can bind, one parameter per trial (SQLite's
    default limit is 32,766, PostgreSQL's 65,535), and the whole study."""
    if backend == "postgres":
        url, n = server_url("postgres"), 65_600
        drop_hpo_tables(url)
    else:
        url, n = str(tmp_path / "large.db"), 33_000
    with Storage(url) as store:
        study = new_study(store)
        store.add_trials(study.info.study_id, finished(n, steps=1))
        whole = study.trials_page(sort="value")
        assert whole.total == len(whole.trials) == n
        assert [t.value for t in whole.trials] == sorted(t.value for t in study.trials)
        assert all(t.intermediate == {0: float(t.number)} for t in whole.trials)
        large = study.trials_page(limit=n - 150, offset=100)
        assert [t.number for t in large.trials] == list(range(100, n - 50))


def test_trials_page_carries_intermediate_values(storage: Storage) -> None:
    study = new_study(storage)
    storage.add_trials(study.info.study_id, finished(4, steps=3))
    page = study.trials_page(sort="value", limit=2)
    assert [t.intermediate for t in page.trials] == [
        {0: 0.0, 1: 1.0, 2: 2.0},
        {0: 1.0, 1: 2.0, 2: 3.0},
    ]


# -- what a watcher reads ---------------------------------------------------------------


def test_finished_since_gives_each_finished_trial_once(storage: Storage) -> None:
    study = new_study(storage)
    sid = study.info.study_id
    storage.add_trials(sid, finished(2))
    first, position = study.finished_since(0)
    assert ([t.number for t in first], position) == ([0, 1], 2)
    running = storage.create_trial(sid, TrialState.RUNNING, {"x": 0.5}, "w:1")
    assert running is not None
    assert study.finished_since(position) == ([], 2)
    storage.finish_trial(running.trial_id, TrialState.COMPLETE, {"x": 0.5}, time.time(), 1.0)
    storage.add_trials(sid, finished(1))
    later, position = study.finished_since(position)
    assert ([t.number for t in later], position) == ([2, 3], 4)


# -- query plans: per-trial statements read through an index ----------------------------


def per_trial_statements(store: Storage) -> list[tuple[str, Any]]:
    """Every statement a worker sends once its study is loaded, captured from a real
    run on a study of HISTORY trials: sampled trials that report values, set an
    attribute and suggest a parameter; a budget; an enqueued point; a lost trial
    reaped and its point re-queued; heartbeats; a kept result recovered."""
    study = new_study(store, "plans", pruner="median")
    sid = study.info.study_id
    store.create_study(StudyInfo(**{**study.info.__dict__, "name": "neighbour"}))
    store.add_trials(sid, finished(HISTORY, steps=3))
    analyze(store)
    study.set_budget(HISTORY + 6)
    study.heartbeat_interval, study.grace_period = 0.01, 0.0
    study.trials  # the whole study, loaded once: not a per-trial statement  # noqa: B018
    with captured(store) as statements:
        study.enqueue({"x": 0.25})
        store.create_trial(sid, TrialState.RUNNING, {"x": 0.5}, f"{socket.gethostname()}:1")
        study.optimize(objective, n_trials=4)
        recover_a_kept_result(store, sid)
    return statements


def objective(trial: Trial) -> float:
    extra = trial.suggest_float("extra", 0.0, 1.0)
    for step in range(2):
        trial.report(trial.params["x"] + extra, step)
        trial.should_prune()
    trial.set_user_attr("note", "x")
    time.sleep(0.03)  # long enough for a heartbeat
    return trial.params["x"]


def recover_a_kept_result(store: Storage, sid: int) -> None:
    lost = store.create_trial(sid, TrialState.RUNNING, {"x": 0.7}, "w:9")
    assert lost is not None
    store.fail_and_requeue(sid, lost, "worker lost", requeue=True)
    where, _ = store.store_recovered(
        sid, lost.trial_id, TrialState.COMPLETE, {"x": 0.7}, time.time(), 1.0, None
    )
    assert where == Recovered.RETRY


@contextmanager
def captured(store: Storage) -> Iterator[list[tuple[str, Any]]]:
    """The (statement, parameters) sent on tables of trials, each statement once."""
    statements: dict[str, Any] = {}

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        words = statement.split()
        reads = words[0].upper() in ("SELECT", "UPDATE", "DELETE")
        if reads and any(table in statement for table in PER_TRIAL_TABLES):
            statements.setdefault(statement, parameters)

    sa.event.listen(store._engine, "before_cursor_execute", record)
    found: list[tuple[str, Any]] = []
    try:
        yield found
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    found.extend(statements.items())


def analyze(store: Storage) -> None:
    """Table statistics, as a database that has run for a while has them."""
    with store._engine.begin() as conn:
        if store._engine.dialect.name == "postgresql":
            for table in PER_TRIAL_TABLES:
                conn.exec_driver_sql(f"ANALYZE {table}")
        elif store._engine.dialect.name in ("mysql", "mariadb"):
            conn.exec_driver_sql(f"ANALYZE TABLE {', '.join(PER_TRIAL_TABLES)}")


def unbounded_reads(store: Storage, statement: str, parameters: Any) -> list[str]:
    """The accesses of the statement's plan to a table of trials that are not bounded
    (see _BOUNDED): a full scan, or a walk through the whole study by an index.
    A `LIMIT` bounds a walk too."""
    raw = store._engine.raw_connection()
    try:
        cursor = raw.cursor()
        dialect = store._engine.dialect.name
        if dialect == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            accesses = [_sqlite_access(row[3]) for row in cursor.fetchall()]
        elif dialect == "postgresql":
            cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            (plan,) = cursor.fetchall()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            accesses = list(_postgres_accesses(plan[0]["Plan"]))
        else:
            cursor.execute(f"EXPLAIN {statement}", parameters)
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            accesses = [_mysql_access(row) for row in rows]
    finally:
        raw.close()
    limited = re.search(r"\bLIMIT\b", statement) is not None
    return [
        f"{table}: {how}"
        for table, how, bounded in filter(None, accesses)
        if table in PER_TRIAL_TABLES and not (bounded or (limited and how != "full scan"))
    ]


# A read is bounded by a primary key, a trial number, the numbers above one, or an
# unfinished state: a study has as few WAITING and RUNNING trials as it has queued
# points and workers. (SQLite's plans do not show the state asked for: not bounded.)
_BOUNDED = re.compile(r"\b(trial_id|rowid|number) ?(=|>)|state\)?(::text)? = '(WAITING|RUNNING)'")


def _sqlite_access(detail: str) -> tuple[str, str, bool] | None:
    """'SEARCH hpo_trials USING INDEX x (study_id=? AND number>?)' -> its table and bounds."""
    match = re.match(r"(SCAN|SEARCH) (\w+)(.*)", detail)
    if match is None:
        return None
    kind, table, how = match.groups()
    if kind == "SCAN":
        return table, "full scan", False
    return table, how.strip(), _BOUNDED.search(how) is not None


def _postgres_accesses(node: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    children = node.get("Plans", [])
    if "Relation Name" in node:
        if node["Node Type"] == "Seq Scan":
            yield node["Relation Name"], "full scan", False
        else:
            conditions = [node.get("Index Cond", ""), node.get("Recheck Cond", "")]
            conditions += [child.get("Index Cond", "") for child in children]
            how = " ".join(c for c in conditions if c)
            yield node["Relation Name"], how, _BOUNDED.search(how) is not None
    for child in children:
        yield from _postgres_accesses(child)


def _mysql_access(row: dict[str, Any]) -> tuple[str, str, bool] | None:
    if not row.get("table"):
        return None
    full = row["type"] in ("ALL", "index")
    return row["table"], "full scan" if full else f"{row['type']} {row['key']}", not full


def test_every_per_trial_statement_reads_through_an_index(storage: Storage) -> None:
    statements = per_trial_statements(storage)
    kinds = {statement.split()[0].upper() for statement, _ in statements}
    assert {"SELECT", "UPDATE"} <= kinds and len(statements) >= 10  # the capture works
    problems = {
        statement: unbounded
        for statement, parameters in statements
        if (unbounded := unbounded_reads(storage, statement, parameters))
    }
    assert not problems, "\n\n".join(f"{s}\n  -> {p}" for s, p in problems.items())


def test_the_plan_check_finds_a_scan(storage: Storage) -> None:
    """The check itself: an OR across two index ranges is planned as a scan."""
    study = new_study(storage)
    storage.add_trials(study.info.study_id, finished(HISTORY))
    analyze(storage)
    with captured(storage) as statements, storage._read() as conn:
        conn.execute(
            sa.text(
                "SELECT trial_id FROM hpo_trials WHERE study_id = :s "
                "AND (number > :n OR value < :v)"
            ),
            {"s": study.info.study_id, "n": HISTORY - 2, "v": 0.5},
        )
    ((statement, parameters),) = statements
    assert unbounded_reads(storage, statement, parameters)
