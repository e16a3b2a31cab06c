"""Storage: round trips on every backend, bulk loading, SQLite files, bad URLs.

Every test runs against a real database: an SQLite file, in-memory SQLite,
and PostgreSQL / MySQL when their URLs are set (see conftest.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import random
import sqlite3
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hpo.direction import Direction
from hpo.errors import (
    BudgetMet,
    DuplicateStudyError,
    SchemaVersionError,
    StorageError,
    StudyNotFoundError,
)
from hpo.records import FrozenTrial, TrialState
from hpo.schema import SCHEMA_VERSION, values_table
from hpo.space import Space
from hpo.storage import Recovered, Storage, StudyInfo

SPACE = [
    {"name": "lr", "type": "float", "low": 1e-5, "high": 0.1, "log": True},
    {"name": "layers", "type": "int", "low": 1, "high": 9, "log": False, "step": 2},
    {
        "name": "model",
        "type": "branch",
        "choices": {
            "mlp": [{"name": "units", "type": "int", "low": 8, "high": 256, "log": True}],
            "sofm": [{"name": "grid", "type": "categorical", "choices": [4, "8x8", None, True]}],
        },
    },
]
USER_ATTRS = {
    "note": "étude β — 学习率 🚀",
    "nested": {"list": [1, 2.5, None, True, "x"], "deep": {"empty": [], "obj": {}}},
}
PARAMS = {"lr": 0.001, "layers": 2, "model": "mlp", "units": 64}


def study_info(name: str = "mnist-mlp", direction: str = "minimize", **changes: Any) -> StudyInfo:
    """A study definition with every field set to a non-default value."""
    info = StudyInfo(
        study_id=0,
        name=name,
        directions=(Direction(direction),),
        space=SPACE,
        sampler="tpe",
        sampler_options={"n_startup": 10, "gamma": 0.25, "weights": [1.0, 0.5]},
        objective="mnist_mlp",
        objective_options={"epochs": 20, "data": "mnist", "ε": 1e-8},
        budget=50,
        seed=2**63 - 1,
        created_at=1715000000.123456,
        user_attrs=USER_ATTRS,
    )
    return replace(info, **changes)


def running(
    store: Storage, study_id: int, params: dict[str, Any] | None = None, **kwargs: Any
) -> FrozenTrial:
    trial = store.create_trial(study_id, TrialState.RUNNING, params or PARAMS, **kwargs)
    assert trial is not None
    return trial


def complete(store: Storage, study_id: int, value: float) -> FrozenTrial:
    trial = running(store, study_id)
    assert store.finish_trial(trial.trial_id, TrialState.COMPLETE, PARAMS, time.time(), value)
    return trial


def only_trial(store: Storage, study_id: int) -> FrozenTrial:
    (trial,) = store.load_trials(study_id)
    return trial


def same_floats(a: dict[int, float], b: dict[int, float]) -> bool:
    """Dict equality where NaN equals NaN (whatever object holds it)."""
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


def is_mysql(store: Storage) -> bool:
    return store._engine.dialect.name in ("mysql", "mariadb")


def test_space_fixture_is_a_valid_spec() -> None:
    assert Space.from_spec(SPACE).to_spec() == SPACE


# -- studies ---------------------------------------------------------------------


def test_study_round_trip(storage: Storage) -> None:
    created = storage.create_study(study_info())
    assert isinstance(created.study_id, int)
    assert created == replace(study_info(), study_id=created.study_id)
    assert storage.get_study("mnist-mlp") == created


def test_duplicate_study_name_is_refused(storage: Storage) -> None:
    first = storage.create_study(study_info())
    with pytest.raises(DuplicateStudyError, match="'mnist-mlp' already exists"):
        storage.create_study(study_info(budget=3))
    assert storage.get_study("mnist-mlp") == first
    assert len(storage.list_studies()) == 1


def test_unknown_study_suggests_a_close_name(storage: Storage) -> None:
    storage.create_study(study_info())
    with pytest.raises(StudyNotFoundError, match=r"did you mean 'mnist-mlp'\?") as caught:
        storage.get_study("mnist-mpl")
    assert "no study named 'mnist-mpl'" in str(caught.value)
    with pytest.raises(StudyNotFoundError) as caught:
        storage.get_study("zzz")
    assert "did you mean" not in str(caught.value)


def test_names_are_exact(storage: Storage) -> None:
    upper = storage.create_study(study_info("Foo"))
    lower = storage.create_study(study_info("foo"))
    assert upper.study_id != lower.study_id  # (names with outer spaces are refused earlier)
    with pytest.raises(StudyNotFoundError):
        storage.get_study("FOO")
    small = {"name": "lr", "type": "float", "low": 0.0, "high": 1.0, "log": False}
    big = {**small, "name": "LR", "high": 2.0}
    assert storage.add_suggested(upper.study_id, small) == small
    assert storage.add_suggested(upper.study_id, big) == big
    assert storage.load_suggested(upper.study_id) == {"lr": small, "LR": big}


def test_out_of_range_seed_is_a_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError):
        storage.create_study(study_info(seed=2**64))
    assert storage.list_studies() == []


def test_update_study(storage: Storage) -> None:
    study = storage.create_study(study_info())
    other = storage.create_study(study_info("other"))
    storage.update_study(
        study.study_id,
        budget=120,
        sampler="gp",
        sampler_options={"kernel": "matern52"},
        user_attrs={"tag": "β"},
    )
    assert storage.get_study("mnist-mlp") == replace(
        study,
        budget=120,
        sampler="gp",
        sampler_options={"kernel": "matern52"},
        user_attrs={"tag": "β"},
    )
    storage.update_study(study.study_id, budget=None)
    assert storage.get_study("mnist-mlp").budget is None
    assert storage.get_study("other") == other


def test_list_studies_counts_and_best_value(storage: Storage) -> None:
    low = storage.create_study(study_info("low", "minimize"))
    high = storage.create_study(study_info("high", "maximize"))
    empty = storage.create_study(study_info("empty"))
    for study in (low, high):
        for value in (3.0, -1.5, 2.0):
            complete(storage, study.study_id, value)
        pruned = running(storage, study.study_id)
        storage.finish_trial(pruned.trial_id, TrialState.PRUNED, PARAMS, time.time(), -9.0)
        failed = running(storage, study.study_id)
        storage.finish_trial(failed.trial_id, TrialState.FAIL, PARAMS, time.time(), error="boom")
        running(storage, study.study_id)
        storage.create_trial(study.study_id, TrialState.WAITING, PARAMS)
    summaries = storage.list_studies()
    assert [s.info for s in summaries] == [low, high, empty]
    counts = {"COMPLETE": 3, "PRUNED": 1, "FAIL": 1, "RUNNING": 1, "WAITING": 1}
    assert [s.counts for s in summaries] == [counts, counts, {}]
    assert [s.best_value for s in summaries] == [-1.5, 3.0, None]


def test_delete_study_removes_only_that_study(storage: Storage) -> None:
    doomed = storage.create_study(study_info("doomed"))
    kept = storage.create_study(study_info("kept"))
    spec = {"name": "momentum", "type": "float", "low": 0.0, "high": 0.99, "log": False}
    for study in (doomed, kept):
        for _ in range(2):
            trial = running(storage, study.study_id)
            for step in range(3):
                storage.add_intermediate(trial.trial_id, step, 0.5 * step)
        storage.add_suggested(study.study_id, spec)
    kept_trials = storage.load_trials(kept.study_id)

    storage.delete_study("doomed")

    with pytest.raises(StudyNotFoundError):
        storage.get_study("doomed")
    assert [s.info for s in storage.list_studies()] == [kept]
    assert storage.load_trials(doomed.study_id) == []
    assert storage.load_suggested(doomed.study_id) == {}
    assert storage.load_trials(kept.study_id) == kept_trials
    assert storage.load_suggested(kept.study_id) == {"momentum": spec}
    with storage._engine.connect() as conn:
        stored_values = conn.execute(sa.select(sa.func.count()).select_from(values_table))
        assert stored_values.scalar() == 6  # the kept study's only
    assert storage.create_study(study_info("doomed")).name == "doomed"


def test_suggested_params_first_spec_wins(storage: Storage) -> None:
    study = storage.create_study(study_info())
    other = storage.create_study(study_info("other"))
    first = {"name": "dropout", "type": "float", "low": 0.0, "high": 0.5, "log": False}
    second = {**first, "high": 0.9}
    act = {"name": "act", "type": "categorical", "choices": ["relu", "tanh", "σ"]}
    assert storage.load_suggested(study.study_id) == {}
    assert storage.add_suggested(study.study_id, first) == first
    assert storage.add_suggested(study.study_id, second) == first
    assert storage.add_suggested(study.study_id, act) == act
    assert storage.add_suggested(other.study_id, second) == second
    assert storage.load_suggested(study.study_id) == {"dropout": first, "act": act}
    assert storage.load_suggested(other.study_id) == {"dropout": second}


# -- trials --------------------------------------------------------------------------


def test_trial_numbers_are_gapless_per_study(storage: Storage) -> None:
    study = storage.create_study(study_info())
    other = storage.create_study(study_info("other"))
    states = [TrialState.RUNNING, TrialState.WAITING, TrialState.RUNNING, TrialState.WAITING]
    created = [
        storage.create_trial(study.study_id, state, {"i": i}, worker="host:1")
        for i, state in enumerate(states)
    ]
    assert [t.number for t in created] == [0, 1, 2, 3]
    assert [t.state for t in created] == states
    assert storage.create_trial(other.study_id, TrialState.WAITING, {}).number == 0
    assert storage.load_trials(study.study_id) == created
    for trial in created:
        assert (trial.started_at is None) == (trial.state == TrialState.WAITING)
        assert trial.heartbeat_at == trial.started_at


def test_create_trial_with_a_taken_number_returns_none(storage: Storage) -> None:
    study = storage.create_study(study_info())
    first = running(storage, study.study_id)
    assert storage.create_trial(study.study_id, TrialState.RUNNING, {"x": 1}, number=0) is None
    chosen = storage.create_trial(study.study_id, TrialState.WAITING, {"x": 2}, number=5)
    assert chosen is not None
    assert chosen.number == 5
    assert running(storage, study.study_id).number == 6
    assert [t.number for t in storage.load_trials(study.study_id)] == [0, 5, 6]
    assert storage.load_trials(study.study_id)[0] == first


def test_intermediate_values(storage: Storage) -> None:
    study = storage.create_study(study_info())
    trial = running(storage, study.study_id)
    reported = {0: 0.75, 1: math.nan, 2: -1e-300, 7: 12345.678}
    for step, value in reported.items():
        assert storage.add_intermediate(trial.trial_id, step, value)
    assert not storage.add_intermediate(trial.trial_id, 0, 99.0)
    assert not storage.add_intermediate(trial.trial_id, 1, 0.0)
    # the same value again is what a retried call finds: stored
    assert storage.add_intermediate(trial.trial_id, 0, 0.75)
    assert storage.add_intermediate(trial.trial_id, 1, math.nan)
    loaded = only_trial(storage, study.study_id).intermediate
    assert same_floats(loaded, reported)
    assert math.isnan(loaded[1])
    assert only_trial(storage, study.study_id).last_step == 7


def test_trial_round_trip(storage: Storage) -> None:
    study = storage.create_study(study_info())
    trial = running(
        storage, study.study_id, worker="host-β:4242", system_attrs={"sampled": [1, 2], "note": "✓"}
    )
    assert only_trial(storage, study.study_id) == trial
    for step, value in enumerate([0.9, math.nan, 0.4]):
        storage.add_intermediate(trial.trial_id, step, value)
    attrs = {"epochs": 3, "history": {"loss": [0.9, 0.4]}, "msg": "fin ✓"}
    storage.set_user_attrs(trial.trial_id, attrs)
    final_params = {**PARAMS, "dropout": 0.25}  # a parameter suggested while running
    finished_at = trial.started_at + 1.5
    assert storage.finish_trial(
        trial.trial_id, TrialState.COMPLETE, final_params, finished_at, value=0.123456789012345
    )

    loaded = only_trial(storage, study.study_id)
    expected = replace(
        trial,
        state=TrialState.COMPLETE,
        params=final_params,
        value=0.123456789012345,
        finished_at=finished_at,
        user_attrs=attrs,
    )
    assert replace(loaded, intermediate={}) == expected
    assert same_floats(loaded.intermediate, {0: 0.9, 1: math.nan, 2: 0.4})
    assert loaded.duration == pytest.approx(1.5)


def test_finished_trial_is_never_rewritten(storage: Storage) -> None:
    study = storage.create_study(study_info())
    trial = complete(storage, study.study_id, 1.0)
    before = only_trial(storage, study.study_id)
    for state in (TrialState.FAIL, TrialState.COMPLETE, TrialState.PRUNED):
        assert not storage.finish_trial(
            trial.trial_id, state, {"x": 0}, time.time(), value=-5.0, error="late worker"
        )
    assert only_trial(storage, study.study_id) == before


def test_waiting_trial_cannot_be_finished(storage: Storage) -> None:
    study = storage.create_study(study_info())
    waiting = storage.create_trial(study.study_id, TrialState.WAITING, PARAMS)
    assert not storage.finish_trial(waiting.trial_id, TrialState.COMPLETE, PARAMS, 1.0, 1.0)
    assert only_trial(storage, study.study_id) == waiting


def test_claim_trial_once(storage: Storage) -> None:
    study = storage.create_study(study_info())
    waiting = storage.create_trial(study.study_id, TrialState.WAITING, {"lr": 0.01})
    claimed = storage.claim_trial(study.study_id, waiting, "host:1", {**PARAMS, "lr": 0.01})
    assert claimed is not None
    assert claimed.state == TrialState.RUNNING
    assert claimed.worker == "host:1"
    assert claimed.params == {**PARAMS, "lr": 0.01}
    assert claimed.started_at == claimed.heartbeat_at is not None
    assert storage.claim_trial(study.study_id, waiting, "host:2", {"lr": 0.5}) is None
    assert only_trial(storage, study.study_id) == claimed


def test_fail_and_requeue(storage: Storage) -> None:
    study = storage.create_study(study_info())
    complete(storage, study.study_id, 1.0)
    trial = running(storage, study.study_id, system_attrs={"origin": "tpe"})
    retry = storage.fail_and_requeue(
        study.study_id, trial, "worker lost", requeue=True, expect_heartbeat=trial.heartbeat_at
    )
    assert retry is not None
    assert (retry.number, retry.state, retry.params) == (2, TrialState.WAITING, PARAMS)
    assert retry.system_attrs == {"retry_of": 1, "retry_reason": "worker lost"}

    _, failed, stored_retry = storage.load_trials(study.study_id)
    assert stored_retry == retry
    assert failed.state == TrialState.FAIL
    assert failed.error == "worker lost"
    assert failed.finished_at is not None
    assert failed.params == PARAMS
    assert failed.system_attrs == {"origin": "tpe", "requeued_as": 2}
    assert not failed.counts_toward_budget


def test_the_budget_is_checked_when_a_trial_starts(storage: Storage) -> None:
    study_id = storage.create_study(study_info()).study_id
    done = storage.create_trial(study_id, TrialState.RUNNING, PARAMS, "host:1", budget=3)
    storage.finish_trial(done.trial_id, TrialState.COMPLETE, PARAMS, time.time(), 1.0)
    lost = storage.create_trial(study_id, TrialState.RUNNING, PARAMS, "host:1", budget=3)
    retry = storage.fail_and_requeue(study_id, lost, "worker lost", requeue=True)
    storage.create_trial(study_id, TrialState.WAITING, PARAMS)  # queued points take nothing
    storage.create_trial(study_id, TrialState.RUNNING, PARAMS, "host:1", budget=3)
    # taken: one COMPLETE, one RUNNING; the re-queued failure does not count
    claimed = storage.claim_trial(study_id, retry, "host:2", PARAMS, budget=3)
    assert claimed is not None
    with pytest.raises(BudgetMet):
        storage.create_trial(study_id, TrialState.RUNNING, PARAMS, "host:1", budget=3)
    with pytest.raises(BudgetMet):
        storage.claim_trial(study_id, storage.load_trials(study_id)[3], "host:2", PARAMS, budget=3)
    assert storage.create_trial(study_id, TrialState.RUNNING, PARAMS, budget=4).number == 5


def test_finishing_twice_with_the_same_result_is_recognized(storage: Storage) -> None:
    """A retry after a commit whose answer was lost finds its own result."""
    study_id = storage.create_study(study_info()).study_id
    trial = storage.create_trial(study_id, TrialState.RUNNING, PARAMS)
    assert storage.finish_trial(trial.trial_id, TrialState.COMPLETE, PARAMS, 123.5, 1.0)
    assert storage.finish_trial(trial.trial_id, TrialState.COMPLETE, PARAMS, 123.5, 1.0)
    assert not storage.finish_trial(trial.trial_id, TrialState.COMPLETE, PARAMS, 124.0, 2.0)
    assert only_trial(storage, study_id).value == 1.0


def test_store_recovered(storage: Storage) -> None:
    study_id = storage.create_study(study_info()).study_id
    running = storage.create_trial(study_id, TrialState.RUNNING, PARAMS)
    assert storage.store_recovered(
        study_id, running.trial_id, TrialState.COMPLETE, PARAMS, 10.0, 1.5, None
    ) == (Recovered.TRIAL, None)
    reaped = storage.create_trial(study_id, TrialState.RUNNING, PARAMS)
    retry = storage.fail_and_requeue(study_id, reaped, "worker lost", requeue=True)
    assert storage.store_recovered(
        study_id, reaped.trial_id, TrialState.COMPLETE, PARAMS, 11.0, 2.5, None
    ) == (Recovered.RETRY, retry.number)
    rerun = storage.create_trial(study_id, TrialState.RUNNING, PARAMS)
    again = storage.fail_and_requeue(study_id, rerun, "worker lost", requeue=True)
    storage.claim_trial(study_id, again, "host:2", PARAMS)
    assert storage.store_recovered(
        study_id, rerun.trial_id, TrialState.PRUNED, PARAMS, 12.0, 3.5, None
    ) == (Recovered.ATTRIBUTE, None)
    trials = storage.load_trials(study_id)
    assert (trials[0].state, trials[0].value) == (TrialState.COMPLETE, 1.5)
    assert (trials[1].state, trials[2].state, trials[2].value) == (
        TrialState.FAIL,
        TrialState.COMPLETE,
        2.5,
    )
    assert trials[3].system_attrs["recovered_result"]["value"] == 3.5
    assert trials[4].state == TrialState.RUNNING


def test_fail_without_requeue(storage: Storage) -> None:
    study = storage.create_study(study_info())
    trial = running(storage, study.study_id)
    assert (
        storage.fail_and_requeue(study.study_id, trial, "Ctrl-C", requeue=False, params={"lr": 0.5})
        is None
    )
    failed = only_trial(storage, study.study_id)
    assert (failed.state, failed.error, failed.params) == (TrialState.FAIL, "Ctrl-C", {"lr": 0.5})
    assert failed.system_attrs == {}


def test_fail_and_requeue_with_a_stale_heartbeat_does_nothing(storage: Storage) -> None:
    study = storage.create_study(study_info())
    trial = running(storage, study.study_id)
    time.sleep(0.002)
    storage.heartbeat([trial.trial_id])
    refreshed = only_trial(storage, study.study_id)
    assert refreshed.heartbeat_at > trial.heartbeat_at
    assert (
        storage.fail_and_requeue(
            study.study_id, trial, "lost", requeue=True, expect_heartbeat=trial.heartbeat_at
        )
        is None
    )
    assert storage.load_trials(study.study_id) == [refreshed]


def test_fail_and_requeue_on_a_finished_trial_does_nothing(storage: Storage) -> None:
    study = storage.create_study(study_info())
    trial = complete(storage, study.study_id, 2.0)
    before = storage.load_trials(study.study_id)
    assert storage.fail_and_requeue(study.study_id, trial, "lost", requeue=True) is None
    assert storage.load_trials(study.study_id) == before


def test_incremental_load(storage: Storage) -> None:
    study = storage.create_study(study_info())
    trials = [running(storage, study.study_id, {"i": i}) for i in range(6)]
    for trial in trials:
        storage.add_intermediate(trial.trial_id, 0, float(trial.number))
    loaded = storage.load_trials(study.study_id, after=3, numbers={1})
    assert [t.number for t in loaded] == [1, 4, 5]
    assert [t.intermediate for t in loaded] == [{0: 1.0}, {0: 4.0}, {0: 5.0}]
    assert storage.load_trials(study.study_id, after=5) == []
    assert [t.number for t in storage.load_trials(study.study_id, after=9, numbers=[0, 2])] == [
        0,
        2,
    ]
    assert (
        storage.load_trials(study.study_id, after=0, numbers=[])
        == storage.load_trials(study.study_id)[1:]
    )


def count_statements(store: Storage, action: Any) -> list[str]:
    """The SQL statements `action()` runs through the engine."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.strip().split(None, 1)[0].upper())

    sa.event.listen(store._engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", record)
    return seen


def fill_study(store: Storage, name: str, n_trials: int) -> StudyInfo:
    study = store.create_study(study_info(name))
    for i in range(n_trials):
        trial = running(store, study.study_id, {"i": i})
        for step in range(3):
            store.add_intermediate(trial.trial_id, step, 1.0 / (step + 1))
        store.finish_trial(trial.trial_id, TrialState.COMPLETE, {"i": i}, time.time(), i)
    return study


def test_loading_costs_one_query_per_table(storage: Storage) -> None:
    small, large = fill_study(storage, "small", 20), fill_study(storage, "large", 200)

    def load(study: StudyInfo) -> list[str]:
        def action() -> None:
            trials = storage.load_trials(storage.get_study(study.name).study_id)
            assert all(len(t.intermediate) == 3 for t in trials)

        return count_statements(storage, action)

    assert len(storage.load_trials(large.study_id)) == 200
    small_statements, large_statements = load(small), load(large)
    assert small_statements == large_statements
    assert small_statements.count("SELECT") == 3  # study, trials, intermediate values

    def incremental() -> None:
        assert len(storage.load_trials(large.study_id, after=150, numbers=range(10))) == 59

    assert count_statements(storage, incremental).count("SELECT") == 2
    assert count_statements(storage, storage.list_studies).count("SELECT") == 2


# -- stored format -----------------------------------------------------------------


def test_rows_are_json_text(tmp_path: Path) -> None:
    path = tmp_path / "hpo.db"
    with closing(Storage(str(path))) as store:
        study = store.create_study(study_info())
        trial = running(store, study.study_id, system_attrs={"s": [1, "β"]})
        store.set_user_attrs(trial.trial_id, USER_ATTRS)
        spec = {"name": "act", "type": "categorical", "choices": ["relu", None]}
        store.add_suggested(study.study_id, spec)

    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute(
            "SELECT space, sampler_options, objective_options, user_attrs FROM hpo_studies"
        ).fetchone()
        assert all(isinstance(v, str) for v in row)  # TEXT, not a pickled BLOB
        assert [json.loads(v) for v in row] == [
            study.space,
            study.sampler_options,
            study.objective_options,
            study.user_attrs,
        ]
        row = conn.execute(
            "SELECT params, user_attrs, system_attrs, typeof(params) FROM hpo_trials"
        ).fetchone()
        assert [json.loads(v) for v in row[:3]] == [PARAMS, USER_ATTRS, {"s": [1, "β"]}]
        assert row[3] == "text"
        (stored_spec,) = conn.execute("SELECT spec FROM hpo_suggested_params").fetchone()
        assert json.loads(stored_spec) == spec


def test_rows_are_json_text_on_every_backend(storage: Storage) -> None:
    study = storage.create_study(study_info())
    running(storage, study.study_id)
    with storage._engine.connect() as conn:
        space, params = conn.exec_driver_sql(
            "SELECT s.space, t.params FROM hpo_studies s JOIN hpo_trials t "
            "ON s.study_id = t.study_id"
        ).one()
    assert isinstance(space, str)
    assert isinstance(params, str)
    assert (json.loads(space), json.loads(params)) == (SPACE, PARAMS)


# -- SQLite files ------------------------------------------------------------------


def snapshot(path: Path) -> dict[str, tuple[str, int] | None]:
    """Hash and mtime of the database file and its WAL file (None where absent)."""
    state: dict[str, tuple[str, int] | None] = {}
    for file in (path, path.with_name(path.name + "-wal")):
        state[file.name] = (
            (hashlib.sha256(file.read_bytes()).hexdigest(), file.stat().st_mtime_ns)
            if file.exists()
            else None
        )
    return state


def make_hpo_db(path: Path) -> StudyInfo:
    with closing(Storage(str(path))) as store:
        study = store.create_study(study_info())
        complete(store, study.study_id, 0.5)
    return study


def test_sqlite_file_is_in_wal_mode(db_path: Path) -> None:
    make_hpo_db(db_path)
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("keep_wal", [False, True], ids=["checkpointed", "in-wal"])
def test_newer_schema_is_refused_untouched(db_path: Path, keep_wal: bool) -> None:
    make_hpo_db(db_path)
    writer = sqlite3.connect(db_path)
    try:
        writer.execute(
            "UPDATE hpo_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
        writer.commit()
        if not keep_wal:  # else the new version stays in the -wal file of an open writer
            writer.close()
        before = snapshot(db_path)
        assert (before["hpo.db-wal"] is not None) == keep_wal
        for create in (True, False):
            with pytest.raises(SchemaVersionError) as caught:
                Storage(str(db_path), create=create)
            message = str(caught.value)
            assert f"schema version {SCHEMA_VERSION + 1}" in message
            assert f"reads up to {SCHEMA_VERSION}" in message
            assert "upgrade hpo" in message
            assert "\n" not in message
        assert snapshot(db_path) == before
    finally:
        writer.close()


def test_newer_schema_is_refused_on_every_backend(storage_url: str) -> None:
    with closing(Storage(storage_url)) as store:
        store.create_study(study_info())
        with store._engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE hpo_meta SET value = '{SCHEMA_VERSION + 1}'")
    with pytest.raises(SchemaVersionError, match="newer hpo"):
        Storage(storage_url)
    engine = sa.create_engine(storage_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT value FROM hpo_meta").scalar() == str(
                SCHEMA_VERSION + 1
            )
            assert conn.exec_driver_sql("SELECT name FROM hpo_studies").all() == [("mnist-mlp",)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("create", [True, False])
def test_random_bytes_are_not_a_database(db_path: Path, create: bool) -> None:
    db_path.write_bytes(random.Random(0).randbytes(8192))
    before = snapshot(db_path)
    with pytest.raises(StorageError, match="is not an SQLite database"):
        Storage(str(db_path), create=create)
    assert snapshot(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["hpo.db"]


@pytest.mark.parametrize(
    ("create", "message"), [(True, "another application"), (False, "holds no hpo studies")]
)
def test_database_of_another_app_is_left_alone(db_path: Path, create: bool, message: str) -> None:
    with closing(sqlite3.connect(db_path)) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
        conn.commit()
    before = snapshot(db_path)
    with pytest.raises(StorageError, match=message):
        Storage(str(db_path), create=create)
    assert snapshot(db_path) == before
    with closing(sqlite3.connect(db_path)) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert tables == [("notes",)]


@pytest.mark.parametrize("create", [True, False])
def test_directory_is_not_a_database(tmp_path: Path, create: bool) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        Storage(str(tmp_path), create=create)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        Storage(str(tmp_path / "no" / "such" / "hpo.db"))
    assert list(tmp_path.iterdir()) == []


def test_create_false_does_not_create_a_file(db_path: Path) -> None:
    with pytest.raises(StorageError, match="no hpo database at"):
        Storage(str(db_path), create=False)
    assert list(db_path.parent.iterdir()) == []


def test_bare_path_is_taken_literally(tmp_path: Path) -> None:
    path = tmp_path / "runs?v2.db"
    with closing(Storage(str(path))) as store:
        store.create_study(study_info())
    assert [p.name for p in tmp_path.iterdir()] == ["runs?v2.db"]


def test_empty_memory_database_with_create_false() -> None:
    with pytest.raises(StorageError, match="holds no hpo studies"):
        Storage(None, create=False)


def test_read_only_url(db_path: Path) -> None:
    study = make_hpo_db(db_path)
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    with closing(Storage(f"sqlite:///file:{db_path}?mode=ro&uri=true")) as store:
        assert store.get_study("mnist-mlp") == study
        assert store.list_studies()[0].counts == {"COMPLETE": 1}
        (trial,) = store.load_trials(study.study_id)
        with pytest.raises(StorageError, match="read-only"):
            store.create_study(study_info("new"))
        with pytest.raises(StorageError, match="read-only"):
            store.add_intermediate(trial.trial_id, 5, 1.0)
        assert store.load_trials(study.study_id) == [trial]
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before


# -- several Storage objects -----------------------------------------------------------


def test_two_storages_see_each_others_writes(storage_url: str) -> None:
    with closing(Storage(storage_url)) as first, closing(Storage(storage_url)) as second:
        study = first.create_study(study_info())
        assert second.get_study("mnist-mlp") == study
        trial = running(second, study.study_id)
        assert first.load_trials(study.study_id) == [trial]
        assert running(first, study.study_id).number == 1
        assert first.finish_trial(trial.trial_id, TrialState.COMPLETE, PARAMS, time.time(), 4.0)
        assert second.load_trials(study.study_id)[0].value == 4.0
        assert second.list_studies()[0].counts == {"COMPLETE": 1, "RUNNING": 1}
        second.delete_study("mnist-mlp")
        assert first.list_studies() == []


# -- bad URLs ------------------------------------------------------------------------


def storage_error(url: str) -> str:
    """The message of the StorageError that opening `url` raises: one line."""
    with pytest.raises(StorageError) as caught:
        Storage(url)
    message = str(caught.value)
    assert message
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "url",
    [
        "://nohost",
        "postgres ql://127.0.0.1/test",
        "postgresql+psycopg://postgres@127.0.0.1:notaport/test",
        "postgresql+psycopg://postgres@[::1/test",
    ],
)
def test_malformed_url(url: str) -> None:
    assert "invalid storage URL" in storage_error(url)


def test_unknown_dialect() -> None:
    message = storage_error("nosuchdb://x")
    assert message == "unknown database in storage URL 'nosuchdb://x'"


def test_unreachable_server_fails_fast() -> None:
    start = time.monotonic()
    message = storage_error("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test")
    assert time.monotonic() - start < 5.0
    assert message.startswith("cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:1")
    assert "refused" in message.lower()
    assert "s3cret" not in message


needs_no_mysqldb = pytest.mark.skipif(
    importlib.util.find_spec("MySQLdb") is not None,
    reason="MySQLdb is installed: no missing driver to test",
)


@needs_no_mysqldb
def test_missing_driver() -> None:
    message = storage_error("mysql+mysqldb://root@127.0.0.1/test")
    assert "needs the Python module 'MySQLdb', its database driver" in message


@needs_no_mysqldb
def test_missing_driver_hides_the_password() -> None:
    assert "s3cret" not in storage_error("mysql+mysqldb://root:s3cret@127.0.0.1/test")


SCHEMA_5_COLUMNS = (
    "ALTER TABLE hpo_studies DROP COLUMN directions",
    "ALTER TABLE hpo_trials DROP COLUMN objective_values",
    "ALTER TABLE hpo_trials DROP COLUMN constraints",
)


def _as_written_by(path: Path, version: int) -> None:
    """Make a database look as an older hpo left it."""
    with sqlite3.connect(path) as conn:
        for statement in SCHEMA_5_COLUMNS:  # schema 4
            conn.execute(statement)
        if version < 4:
            conn.execute("ALTER TABLE hpo_studies DROP COLUMN budget_taken")  # schema 3
        if version < 3:
            conn.execute("ALTER TABLE hpo_trials DROP COLUMN requeued")
        if version < 2:
            conn.execute("ALTER TABLE hpo_studies DROP COLUMN pruner")
            conn.execute("ALTER TABLE hpo_studies DROP COLUMN pruner_options")
        conn.execute(f"UPDATE hpo_meta SET value = '{version}' WHERE key = 'schema_version'")


def _columns(store: Storage) -> dict[str, list[tuple[str, bool]]]:
    with store._engine.connect() as conn:
        inspector = sa.inspect(conn)
        return {
            table: sorted((c["name"], c["nullable"]) for c in inspector.get_columns(table))
            for table in sorted(inspector.get_table_names())
            if table.startswith("hpo_")
        }


def test_a_schema_3_database_is_migrated_on_every_backend(storage_url: str) -> None:
    """3 -> 4 in place on each server: the studies' count of places taken in their
    budget is added and filled in from their trials."""
    with Storage(storage_url) as store:
        sid = store.create_study(study_info()).study_id
        other = store.create_study(study_info("other")).study_id
        complete(store, sid, 1.0)
        running(store, sid)
        store.create_trial(sid, TrialState.WAITING, PARAMS)
        store.fail_and_requeue(sid, running(store, sid), "worker lost", requeue=True)
        complete(store, other, 2.0)
        current = _columns(store)
    engine = sa.create_engine(storage_url)  # as hpo with schema 3 left it
    with engine.begin() as conn:
        for statement in SCHEMA_5_COLUMNS:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("ALTER TABLE hpo_studies DROP COLUMN budget_taken")
        conn.exec_driver_sql("UPDATE hpo_meta SET value = '3'")  # (its one row)
    engine.dispose()
    with Storage(storage_url) as store:
        assert _columns(store) == current
        # a complete and a running trial; the re-queued failure and the waiting ones not
        assert (store.budget_taken(sid), store.budget_taken(other)) == (2, 1)
        with pytest.raises(BudgetMet):
            store.create_trial(sid, TrialState.RUNNING, PARAMS, budget=2)
        assert store.create_trial(sid, TrialState.RUNNING, PARAMS, budget=3) is not None
        with store._read() as conn:
            version = conn.exec_driver_sql("SELECT value FROM hpo_meta").scalar()
        assert version == str(SCHEMA_VERSION) == "5"


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_an_older_database_is_migrated(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    with Storage(str(path)) as store:
        study_id = store.create_study(study_info()).study_id
        lost = store.create_trial(study_id, TrialState.RUNNING, PARAMS, "host:1")
        store.fail_and_requeue(study_id, lost, "worker lost", requeue=True)
    _as_written_by(path, version)
    with Storage(str(path)) as store:
        info = store.get_study("mnist-mlp")
        assert (info.pruner, info.pruner_options) == ("none", {})
        store.update_study(info.study_id, pruner="median", pruner_options={"n_warmup_steps": 2})
        assert store.get_study("mnist-mlp").pruner_options == {"n_warmup_steps": 2}
        # the re-queued failure still does not count: one trial may start, not zero
        assert store.create_trial(study_id, TrialState.RUNNING, PARAMS, budget=1) is not None
        with pytest.raises(BudgetMet):
            store.create_trial(study_id, TrialState.RUNNING, PARAMS, budget=1)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM hpo_meta").fetchone()[0] == str(SCHEMA_VERSION)


# -- import_study: a whole study in one transaction (hpo.optuna_io) --------------------


def imported_trials() -> list[FrozenTrial]:
    """Finished trials of each kind, a failure re-queued as the last, and a queued point."""
    return [
        FrozenTrial(-1, -1, TrialState.COMPLETE, {"x": 0.5}, 1.5, {0: 2.0, 1: 1.5}, 10.0, 11.0),
        FrozenTrial(-1, -1, TrialState.PRUNED, {"x": 0.9}, 3.0, {0: 3.0}, 11.0, 12.0),
        FrozenTrial(
            -1, -1, TrialState.FAIL, {"x": 0.1}, error="lost", system_attrs={"requeued_as": 4}
        ),
        FrozenTrial(-1, -1, TrialState.WAITING, {"x": 0.2}, system_attrs={"enqueued": True}),
        FrozenTrial(-1, -1, TrialState.WAITING, {"x": 0.1}, system_attrs={"retry_of": 2}),
    ]


def test_import_study_writes_study_params_and_trials(storage: Storage) -> None:
    spec = {"name": "x", "type": "float", "low": 0.0, "high": 1.0, "log": False}
    info = storage.import_study(study_info(space=[]), [spec], imported_trials())
    assert storage.get_study(info.name) == info
    assert storage.load_suggested(info.study_id) == {"x": spec}
    trials = storage.load_trials(info.study_id)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert [t.state for t in trials] == [t.state for t in imported_trials()]
    assert trials[0].intermediate == {0: 2.0, 1: 1.5} and trials[1].value == 3.0
    assert [t.counts_toward_budget for t in trials] == [True, True, False, False, False]
    # the counted places: COMPLETE and PRUNED; not the re-queued failure nor the queued points
    assert storage.budget_taken(info.study_id) == 2
    with storage._read() as conn:  # the flag the budget's recount reads
        requeued = conn.execute(sa.text("SELECT number, requeued FROM hpo_trials")).all()
    assert sorted(requeued) == [(0, 0), (1, 0), (2, 1), (3, 0), (4, 0)]


def test_import_study_is_all_or_nothing(storage: Storage) -> None:
    bad = [*imported_trials(), FrozenTrial(-1, -1, TrialState.COMPLETE, {"x": math.nan}, 1.0)]
    with pytest.raises(sa.exc.StatementError):  # NaN is no JSON: the last row fails
        storage.import_study(study_info(), [], bad)
    assert storage.list_studies() == []
    storage.create_study(study_info())
    with pytest.raises(DuplicateStudyError):
        storage.import_study(study_info(), [], imported_trials())
    (summary,) = storage.list_studies()
    assert summary.counts == {}


def test_import_study_refuses_running_trials(storage: Storage) -> None:
    with pytest.raises(ValueError, match="RUNNING"):
        storage.import_study(study_info(), [], [FrozenTrial(-1, -1, TrialState.RUNNING, {})])
    assert storage.list_studies() == []


@pytest.mark.parametrize(
    "message",
    [
        "terminating connection due to administrator command",
        "connection socket closed",  # psycopg 3.2+, a connection the server dropped
        "consuming input failed: server closed the connection unexpectedly",
        "(2013, 'Lost connection to MySQL server during query')",
    ],
)
def test_a_connection_the_server_dropped_is_retried_not_fatal(message):
    import sqlalchemy as sa

    from hpo.connection import translated_errors
    from hpo.errors import DroppedConnectionError

    with pytest.raises(DroppedConnectionError), translated_errors("db"):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception(message))
