"""The study runner: failure modes, budgets, determinism, resume, enqueue, define-by-run."""

from __future__ import annotations

import decimal
import math
import socket
import subprocess
import sys
import time

import pytest

import hpo
from hpo.errors import SamplerError, SpaceError, StudyNotFoundError
from hpo.records import TrialState
from hpo.storage import Storage

SPACE = [
    {"name": "x", "type": "float", "low": -5.0, "high": 5.0},
    {"name": "n", "type": "int", "low": 1, "high": 8},
    {"name": "kind", "type": "categorical", "choices": ["a", "b"]},
]
BRANCHED = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
    {
        "name": "layers",
        "type": "branch",
        "choices": {
            "one": [{"name": "u1", "type": "int", "low": 1, "high": 10}],
            "two": [
                {"name": "u1", "type": "int", "low": 1, "high": 10},
                {"name": "u2", "type": "int", "low": 1, "high": 10},
            ],
        },
    },
]


def quadratic(trial: hpo.Trial) -> float:
    return (trial.params["x"] - 1.0) ** 2 + trial.params["n"]


def params_of(study: hpo.Study, state: TrialState = TrialState.COMPLETE) -> list[dict]:
    return [t.params for t in study.trials if t.state == state]


# -- creating and loading ------------------------------------------------------------


def test_create_validates_everything_before_writing(db_path):
    with pytest.raises(ValueError, match="direction"):
        hpo.create_study("s", str(db_path), SPACE, direction="up")
    with pytest.raises(SamplerError, match=r"unknown sampler 'randm'.*'random'"):
        hpo.create_study("s", str(db_path), SPACE, sampler="randm")
    with pytest.raises(SpaceError):
        hpo.create_study("s", str(db_path), [{"name": "x", "type": "float", "low": 1, "high": 0}])
    with pytest.raises(ValueError, match="budget"):
        hpo.create_study("s", str(db_path), SPACE, budget=0)
    assert not db_path.exists()


@pytest.mark.parametrize("name", ["", " padded", "padded ", "x" * 256])
def test_bad_study_names(name):
    with pytest.raises(ValueError, match="study name"):
        hpo.create_study(name, None, SPACE)


def test_duplicate_name_and_load_if_exists(db_path):
    first = hpo.create_study("s", str(db_path), SPACE, seed=3)
    with pytest.raises(hpo.DuplicateStudyError, match="'s' already exists"):
        hpo.create_study("s", str(db_path), SPACE)
    again = hpo.create_study("s", str(db_path), SPACE, seed=99, load_if_exists=True)
    assert again.seed == first.seed == 3


def test_load_unknown_study_suggests_a_name(db_path):
    hpo.create_study("branin-random", str(db_path), SPACE)
    with pytest.raises(StudyNotFoundError, match="did you mean 'branin-random'"):
        hpo.load_study("branin-randm", str(db_path))


def test_seed_is_drawn_and_stored_when_not_given(db_path):
    study = hpo.create_study("s", str(db_path), SPACE)
    assert hpo.load_study("s", str(db_path)).seed == study.seed


def test_builtin_objective_supplies_its_space():
    study = hpo.create_study(objective="branin", budget=5, seed=0)
    study.optimize()
    assert [p.name for p in study.space] == ["x1", "x2"]
    assert study.info.objective == "branin"
    assert len(study.trials) == 5


# -- the runner loop and results ---------------------------------------------------------


def test_optimize_finds_results_in_both_directions():
    low = hpo.create_study(space=SPACE, seed=1, sampler="random")
    low.optimize(quadratic, n_trials=30)
    high = hpo.create_study(space=SPACE, seed=1, sampler="random", direction="maximize")
    high.optimize(quadratic, n_trials=30)
    values = [t.value for t in low.trials]
    assert low.best_value == min(values)
    assert high.best_value == max(values)
    assert low.best_params == low.best_trial.params
    assert all(t.state == TrialState.COMPLETE for t in low.trials)
    assert [t.number for t in low.trials] == list(range(30))


def test_best_trial_without_completed_trials():
    study = hpo.create_study(space=SPACE)
    with pytest.raises(hpo.NoCompletedTrialsError, match="no completed trial"):
        _ = study.best_trial


def test_exception_marks_trial_fail_and_study_goes_on():
    def objective(trial):
        if trial.number % 3 == 0:
            raise RuntimeError(f"boom {trial.number}")
        return trial.params["x"]

    study = hpo.create_study(space=SPACE, seed=0)
    study.optimize(objective, n_trials=9)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [0, 3, 6]
    assert "RuntimeError: boom 3" in failed[1].error
    assert "Traceback" in failed[1].error
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 6


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (math.nan, "expected a finite number"),
        (math.inf, "expected a finite number"),
        ("0.5", "returned str"),
        (None, "returned NoneType"),
        (True, "returned bool"),
        ([1.0, 2.0], "returned list"),
        (10**400, "too large for a floating-point number"),
        (-(10**400), "too large for a floating-point number"),
        pytest.param(10**5000, "an integer of about 5001 digits", id="beyond-int-repr-limit"),
        (decimal.Decimal("1e400"), "expected a finite number"),
    ],
)
def test_bad_results_are_failures_with_a_reason(result, reason):
    study = hpo.create_study(space=SPACE)
    study.optimize(lambda trial: result, n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert reason in trial.error
    assert trial.value is None


def test_numbers_of_any_kind_are_accepted():
    np = pytest.importorskip("numpy")
    study = hpo.create_study(space=SPACE)
    for result in (np.float32(0.25), 3, np.array(1.5), decimal.Decimal("2.5")):
        study.optimize(lambda trial, result=result: result, n_trials=1)
    assert [t.value for t in study.trials] == [0.25, 3.0, 1.5, 2.5]
    study.optimize(lambda trial: np.array([1.0, 2.0]), n_trials=1)
    assert "expected a single number" in study.trials[-1].error


def test_uncaught_exception_is_stored_then_raised():
    study = hpo.create_study(space=SPACE)

    def objective(trial):
        raise KeyError("missing")

    with pytest.raises(KeyError):
        study.optimize(objective, n_trials=3, catch=(ValueError,))
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and "KeyError" in trial.error


def test_keyboard_interrupt_fails_the_trial_and_requeues_its_point(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=4, budget=6)

    def objective(trial):
        if trial.number == 2:
            raise KeyboardInterrupt
        return quadratic(trial)

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective)
    trials = study.trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.WAITING,
    ]
    assert trials[2].error.startswith("interrupted")
    assert trials[3].params == trials[2].params
    assert trials[2].system_attrs["requeued_as"] == 3
    assert study.n_counted == 2  # an interrupted trial does not use the budget

    resumed = hpo.load_study("s", str(db_path))
    resumed.optimize(quadratic)
    trials = resumed.trials
    assert trials[3].state == TrialState.COMPLETE
    assert trials[3].params == trials[2].params  # the retry ran first
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6


def test_complete_trials_are_never_rewritten(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0)
    study.optimize(quadratic, n_trials=2)
    done = study.trials[0]
    assert not study.storage.finish_trial(
        done.trial_id, TrialState.FAIL, done.params, time.time(), error="late"
    )
    assert hpo.load_study("s", str(db_path)).trials[0] == done


# -- budget, timeout --------------------------------------------------------------------


def test_budget_is_a_total_across_optimize_calls(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0, budget=10)
    study.optimize(quadratic, n_trials=4)
    assert len(study.trials) == 4
    study.optimize(quadratic)
    assert len(study.trials) == 10
    study.optimize(quadratic)
    assert len(study.trials) == 10
    study.set_budget(13)
    hpo.load_study("s", str(db_path)).optimize(quadratic)
    assert len(study.trials) == 13


def test_failures_count_toward_the_budget():
    study = hpo.create_study(space=SPACE, budget=5)
    study.optimize(lambda trial: math.nan)
    assert len(study.trials) == 5


def test_timeout_stops_starting_trials():
    study = hpo.create_study(space=SPACE)
    start = time.monotonic()
    study.optimize(lambda trial: time.sleep(0.05) or 1.0, timeout=0.3)
    elapsed = time.monotonic() - start
    assert 2 <= len(study.trials) <= 8
    assert elapsed < 2.0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_n_trials(bad):
    with pytest.raises(ValueError, match="n_trials"):
        hpo.create_study(space=SPACE).optimize(quadratic, n_trials=bad)


# -- determinism ------------------------------------------------------------------------


def test_same_seed_same_trials_different_seed_different():
    runs = []
    for seed in (7, 7, 8):
        study = hpo.create_study(space=BRANCHED, seed=seed)
        study.optimize(lambda t: t.params["lr"], n_trials=15)
        runs.append(params_of(study))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_stop_and_resume_gives_the_same_sequence(tmp_path):
    straight = hpo.create_study("a", str(tmp_path / "a.db"), BRANCHED, seed=11, budget=12)
    straight.optimize(lambda t: t.params["lr"])
    stopped = hpo.create_study("b", str(tmp_path / "b.db"), BRANCHED, seed=11, budget=12)
    stopped.optimize(lambda t: t.params["lr"], n_trials=5)
    hpo.load_study("b", str(tmp_path / "b.db")).optimize(lambda t: t.params["lr"])
    assert params_of(stopped) == params_of(straight)


def test_an_interruption_does_not_change_the_sequence(tmp_path):
    straight = hpo.create_study("a", str(tmp_path / "a.db"), SPACE, seed=5, budget=8)
    straight.optimize(quadratic)

    def interrupt_once(trial):
        if trial.number == 3:
            raise KeyboardInterrupt
        return quadratic(trial)

    cut = hpo.create_study("b", str(tmp_path / "b.db"), SPACE, seed=5, budget=8)
    with pytest.raises(KeyboardInterrupt):
        cut.optimize(interrupt_once)
    hpo.load_study("b", str(tmp_path / "b.db")).optimize(quadratic)
    assert params_of(cut) == params_of(straight)


# -- enqueue ------------------------------------------------------------------------------


def test_enqueued_points_run_first_in_order():
    study = hpo.create_study(space=SPACE, seed=0)
    study.enqueue({"x": 1.0, "n": 1, "kind": "a"})
    study.enqueue({"x": -2.0, "n": 3, "kind": "b"})
    study.optimize(quadratic, n_trials=4)
    trials = study.trials
    assert trials[0].params == {"x": 1.0, "n": 1, "kind": "a"}
    assert trials[1].params == {"x": -2.0, "n": 3, "kind": "b"}
    assert trials[0].value == 1.0
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_partial_enqueue_draws_the_rest():
    study = hpo.create_study(space=BRANCHED, seed=0)
    study.enqueue({"layers": "two", "u2": 7})
    study.optimize(lambda t: t.params["lr"], n_trials=1)
    params = study.trials[0].params
    assert params["layers"] == "two" and params["u2"] == 7
    assert set(params) == {"lr", "layers", "u1", "u2"}


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"x": 9.0}, "not in float"),
        ({"kinds": "a"}, "unknown parameter 'kinds' \\(did you mean 'kind'"),
        ({"kind": "c"}, "not in choices"),
        ({"n": 2.5}, "not in int"),
    ],
)
def test_invalid_enqueue_is_refused_and_stores_nothing(point, message):
    study = hpo.create_study(space=SPACE)
    with pytest.raises(SpaceError, match=message):
        study.enqueue(point)
    assert study.trials == []


def test_enqueue_of_an_inactive_parameter_is_refused():
    study = hpo.create_study(space=BRANCHED)
    with pytest.raises(SpaceError, match="not active"):
        study.enqueue({"layers": "one", "u2": 3})


# -- define-by-run (Optuna-style objectives) ---------------------------------------------


def optuna_style(trial):
    x = trial.suggest_float("x", -10, 10)
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 3)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    if layers > 1:
        trial.suggest_int("width", 8, 64, step=8)
    return x**2 + lr + (act == "tanh")


def test_suggest_api_samples_persists_and_extends_the_space(db_path):
    study = hpo.create_study("s", str(db_path), seed=2)
    study.optimize(optuna_style, n_trials=25)
    trials = study.trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        assert -10 <= t.params["x"] <= 10 and 1e-5 <= t.params["lr"] <= 1e-1
        assert t.params["act"] in ("relu", "tanh")
        assert ("width" in t.params) == (t.params["layers"] > 1)
        if "width" in t.params:
            assert t.params["width"] % 8 == 0
    loaded = hpo.load_study("s", str(db_path))
    assert set(loaded.suggested_params) == {"x", "lr", "layers", "act", "width"}
    assert loaded.suggested_params["lr"].log is True


def test_suggest_is_reproducible_by_seed():
    runs = []
    for _ in range(2):
        study = hpo.create_study(seed=9)
        study.optimize(optuna_style, n_trials=10)
        runs.append(params_of(study))
    assert runs[0] == runs[1]


def test_define_by_run_points_survive_an_interruption(tmp_path):
    def objective(trial):
        y = trial.suggest_float("y", 0, 1)
        if trial.number == 2 and not (tmp_path / "done").exists():
            (tmp_path / "done").touch()
            raise KeyboardInterrupt
        return y

    straight = hpo.create_study("a", str(tmp_path / "a.db"), seed=3, budget=5)
    straight.optimize(lambda trial: trial.suggest_float("y", 0, 1))
    cut = hpo.create_study("b", str(tmp_path / "b.db"), seed=3, budget=5)
    with pytest.raises(KeyboardInterrupt):
        cut.optimize(objective)
    assert cut.trials[2].params == cut.trials[3].params  # stored before the interruption
    cut.optimize(objective)
    assert params_of(cut) == params_of(straight)


def test_suggest_of_a_declared_parameter_returns_its_value():
    seen = []

    def objective(trial):
        seen.append((trial.suggest_float("x", -5, 5), trial.params["x"]))
        return 0.0

    hpo.create_study(space=SPACE).optimize(objective, n_trials=3)
    assert all(a == b for a, b in seen)


def test_suggest_with_the_wrong_kind_fails_the_trial():
    study = hpo.create_study(space=SPACE)
    study.optimize(lambda trial: trial.suggest_int("x", 0, 3), n_trials=1)
    assert "float parameter" in study.trials[0].error


def test_a_range_may_change_between_trials_as_in_optuna():
    study = hpo.create_study(seed=0)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=5)
    study.optimize(lambda trial: trial.suggest_float("x", 10, 20), n_trials=5)
    values = [t.params["x"] for t in study.trials]
    assert all(0 <= v <= 1 for v in values[:5]) and all(10 <= v <= 20 for v in values[5:])
    assert study.suggested_params["x"].high == 1  # the first definition is the one stored


def test_suggest_follows_optuna_on_steps_and_single_values():
    def objective(trial):
        with pytest.warns(UserWarning, match=r"the range becomes \[32, 480\]"):
            units = trial.suggest_int("units", 32, 500, step=32)
        assert units % 32 == 0 and units <= 480
        assert trial.suggest_float("fixed", 0.5, 0.5) == 0.5
        assert trial.suggest_int("one", 3, 3) == 3
        return float(units)

    study = hpo.create_study(seed=1)
    study.optimize(objective, n_trials=5, catch=())
    assert all(t.params["fixed"] == 0.5 and t.params["one"] == 3 for t in study.trials)


def test_suggest_of_an_inactive_branch_parameter_fails_the_trial():
    study = hpo.create_study(space=BRANCHED, seed=0)
    study.enqueue({"layers": "one"})
    study.optimize(lambda trial: trial.suggest_int("u2", 1, 10), n_trials=1)
    assert "not active in this trial" in study.trials[0].error


@pytest.mark.parametrize("sampler", ["tpe", "gp", "sobol", "halton", "random"])
def test_a_define_by_run_parameter_is_not_repeated_in_the_start_up(sampler):
    """With no declared space, trial 0 meets x in suggest_float and trial 1 samples it
    jointly: both must continue one start-up sequence, not draw its first point twice."""
    study = hpo.create_study(sampler=sampler, seed=3)
    study.optimize(lambda trial: (trial.suggest_float("x", -5, 5) - 1) ** 2, n_trials=6)
    points = [t.params["x"] for t in study.trials]
    assert len(set(points)) == len(points), points


@pytest.mark.parametrize("sampler", ["tpe", "gp", "random"])
def test_an_objective_may_widen_a_categorical_parameters_choices(sampler):
    """The first definition stays the study's; a choice outside it (which Optuna
    refuses) is kept by its trial and is, to the model, an unknown value."""
    study = hpo.create_study(sampler=sampler, seed=1)

    def objective(trial):
        choices = ["a", "b"] if trial.number < 2 else ["a", "b", "c"]
        return {"a": 1, "b": 2, "c": 0}[trial.suggest_categorical("kind", choices)]

    study.optimize(objective, n_trials=15)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.suggested_params["kind"].choices == ("a", "b")


def test_enqueue_before_the_objective_defines_its_parameters():
    """Optuna's warm start: enqueue a point of a study with no declared space; the
    objective's suggest_* returns the queued values, and the study learns the
    definitions from it."""
    study = hpo.create_study(seed=4)
    study.enqueue_trial({"x": 1.5, "n": 3, "kind": "b"})
    seen = []

    def objective(trial):
        point = (
            trial.suggest_float("x", -5, 5),
            trial.suggest_int("n", 1, 8),
            trial.suggest_categorical("kind", ["a", "b"]),
        )
        seen.append(point)
        return point[0] ** 2

    study.optimize(objective, n_trials=3)
    assert seen[0] == (1.5, 3, "b")
    assert set(study.suggested_params) == {"x", "n", "kind"}
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_an_enqueued_value_outside_the_range_asked_for_is_used_with_a_warning():
    study = hpo.create_study(seed=4)
    study.enqueue({"x": 9.0})
    with pytest.warns(UserWarning, match="outside the range"):
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert study.trials[0].value == 9.0


# -- reports, attributes, pruned ------------------------------------------------------------


def test_reports_and_user_attrs_are_stored(db_path):
    def objective(trial):
        for step in range(4):
            trial.report(1.0 / (step + 1), step)
        trial.report(math.nan, 4)
        trial.set_user_attr("accuracy", 0.97)
        trial.set_user_attr("notes", {"ok": [1, 2]})
        return 0.2

    hpo.create_study("s", str(db_path), SPACE).optimize(objective, n_trials=1)
    (trial,) = hpo.load_study("s", str(db_path)).trials
    assert trial.intermediate[3] == 0.25
    assert math.isnan(trial.intermediate[4])
    assert trial.user_attrs == {"accuracy": 0.97, "notes": {"ok": [1, 2]}}


def test_report_rejects_bad_steps_and_repeated_steps_warn():
    def objective(trial):
        trial.report(1.0, 0)
        with pytest.warns(UserWarning, match="already reported"):
            trial.report(2.0, 0)
        with pytest.raises(ValueError, match="step"):
            trial.report(1.0, -1)
        with pytest.raises(TypeError, match="JSON"):
            trial.set_user_attr("f", object())
        return 1.0

    study = hpo.create_study(space=SPACE)
    study.optimize(objective, n_trials=1, catch=())
    assert study.trials[0].intermediate == {0: 1.0}


def test_trial_pruned_stores_the_last_value():
    def objective(trial):
        trial.report(0.9, 0)
        trial.report(0.7, 1)
        raise hpo.TrialPruned

    study = hpo.create_study(space=SPACE)
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert study.trials[0].value == 0.7 and study.trials[0].last_step == 1
    assert study.n_counted == 2


class TrialPruned(Exception):  # noqa: N818 - what optuna.TrialPruned is, without Optuna
    """Another library's pruning signal, recognized by its class name."""


def _optuna_pruned() -> type[Exception]:
    optuna = pytest.importorskip("optuna")
    return optuna.TrialPruned


@pytest.mark.parametrize("signal", [TrialPruned, _optuna_pruned], ids=["by-name", "optuna"])
def test_optunas_trial_pruned_stores_the_trial_as_pruned(signal):
    """An objective written for Optuna raises optuna.TrialPruned: PRUNED, not FAIL."""
    pruned = signal if isinstance(signal, type) else signal()

    def objective(trial):
        trial.report(0.5, 3)
        raise pruned()

    study = hpo.create_study(space=SPACE)
    study.optimize(objective, n_trials=2, catch=())
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert study.trials[1].value == 0.5 and study.trials[1].error is None


def test_an_uncaught_exception_still_fails_then_propagates():
    study = hpo.create_study(space=SPACE)
    with pytest.raises(ZeroDivisionError):
        study.optimize(lambda trial: 1 / 0, n_trials=2, catch=(ValueError,))
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and "ZeroDivisionError" in trial.error


# -- lost workers ---------------------------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _running_trial(study: hpo.Study, worker: str, params: dict, heartbeat_age: float):
    storage: Storage = study.storage
    record = storage.create_trial(study.info.study_id, TrialState.RUNNING, params, worker)
    storage.heartbeat([record.trial_id])
    old = time.time() - heartbeat_age
    from hpo.schema import trials_table  # set an old heartbeat, as a dead worker leaves it

    with storage._write() as conn:
        conn.execute(
            trials_table.update()
            .where(trials_table.c.trial_id == record.trial_id)
            .values(heartbeat_at=old)
        )
    return record


def test_trial_of_a_dead_local_process_is_retried_at_once(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0, budget=3)
    point = {"x": 0.5, "n": 2, "kind": "b"}
    _running_trial(study, f"{socket.gethostname()}:{_dead_pid()}", point, heartbeat_age=1)
    study.optimize(quadratic)
    trials = study.trials
    assert trials[0].state == TrialState.FAIL and "worker lost" in trials[0].error
    assert trials[1].params == point and trials[1].state == TrialState.COMPLETE
    assert trials[1].system_attrs["retry_of"] == 0
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3


def test_trial_with_a_stale_heartbeat_is_retried(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0, budget=2)
    point = {"x": -0.5, "n": 1, "kind": "a"}
    _running_trial(study, "elsewhere:1234", point, heartbeat_age=study.grace_period + 5)
    study.optimize(quadratic)
    assert study.trials[0].state == TrialState.FAIL
    assert study.trials[1].params == point


def test_a_worker_waits_for_the_trials_running_elsewhere_to_meet_the_budget(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0, budget=3)
    _running_trial(study, "elsewhere:1234", {"x": 0.0, "n": 1, "kind": "a"}, heartbeat_age=1)
    study.poll_interval = 0.05
    study.optimize(quadratic, timeout=1.0)
    # the running trial is expected to finish: it holds its place in the budget
    assert study.trials[0].state == TrialState.RUNNING
    assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETE] * 2
    study.grace_period = 1.5  # its heartbeat stops: lost, re-queued, run here
    study.optimize(quadratic)
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert study.trials[3].system_attrs["retry_of"] == 0
    assert study.n_counted == 3


def test_a_trial_lost_during_a_run_is_reaped_and_the_budget_met(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0, budget=5)
    dead = f"{socket.gethostname()}:{_dead_pid()}"

    def lose_one(study, trial):
        if trial.number == 1:
            _running_trial(study, dead, {"x": 0.5, "n": 2, "kind": "b"}, heartbeat_age=1)

    study.optimize(quadratic, callbacks=[lose_one])
    assert study.n_counted == 5
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 5


def test_a_lost_retry_is_not_requeued_again(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0, budget=2)
    point = {"x": 0.5, "n": 2, "kind": "b"}
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    _running_trial(study, dead, point, heartbeat_age=1)
    study.reap_lost_trials()
    retry = study.trials[1]
    assert study.storage.claim_trial(study.info.study_id, retry, dead, retry.params) is not None
    study.optimize(quadratic)
    trials = study.trials
    assert trials[1].state == TrialState.FAIL and "requeued_as" not in trials[1].system_attrs
    assert trials[1].counts_toward_budget  # it failed for good: it used the budget
    assert len(trials) == 3 and trials[2].params != point  # a sampled point, no third try


# -- grid through the runner ----------------------------------------------------------------


def test_grid_study_stops_when_exhausted():
    space = [
        {"name": "a", "type": "int", "low": 0, "high": 2},
        {"name": "b", "type": "categorical", "choices": ["x", "y"]},
    ]
    study = hpo.create_study(space=space, sampler="grid", budget=100, seed=0)
    study.optimize(lambda t: t.params["a"])
    points = sorted((t.params["a"], t.params["b"]) for t in study.trials)
    assert points == [(a, b) for a in range(3) for b in ("x", "y")]


def test_grid_needs_a_declared_space():
    with pytest.raises(SamplerError, match="declared space"):
        hpo.create_study(sampler="grid").optimize(optuna_style, n_trials=1)


def test_the_heartbeat_is_refreshed_while_a_trial_runs(db_path):
    seen = []

    def objective(trial):
        time.sleep(0.4)
        with Storage(str(db_path), create=False) as other:  # what another process sees
            (record,) = other.load_trials(trial.study.info.study_id)
        seen.append(record.heartbeat_at - record.started_at)
        return 0.0

    study = hpo.create_study("s", str(db_path), SPACE)
    study.heartbeat_interval = 0.05
    study.optimize(objective, n_trials=1)
    assert seen[0] > 0.2


def test_the_python_api_of_the_readme(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text('name = "q"\nobjective = "mixed_nn"\ntrials = 5\nseed = 0\n')
    study = hpo.run("s.toml", trials=3)
    assert len(study.trials) == 3
    assert len(hpo.resume("q", "hpo.db", trials=6).trials) == 6
    assert [s.info.name for s in hpo.studies("hpo.db")] == ["q"]
    hpo.delete_study("q", "hpo.db")
    assert hpo.studies("hpo.db") == []


@pytest.mark.parametrize("continue_", [hpo.resume, hpo.worker])
def test_a_study_of_a_python_function_cannot_be_continued_without_it(db_path, continue_):
    study = hpo.create_study("py", str(db_path), SPACE, budget=4)
    study.optimize(lambda trial: trial.params["x"], n_trials=1)
    with pytest.raises(
        hpo.HpoError,
        match="'py' was created without a stored objective.*"
        r"study\.optimize\(objective\)",
    ):
        continue_("py", str(db_path))
    assert len(hpo.load_study("py", str(db_path)).trials) == 1
