"""Ask and tell from Python: the same rules as optimize (budget, queue, liars, reaping),
specific errors for bad tells, and nothing changed by them."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import hpo
from hpo.distributions import CategoricalDistribution, FloatDistribution
from hpo.errors import TrialNotFoundError
from hpo.records import TrialState

SPACE = [{"name": "x", "type": "float", "low": -5.0, "high": 5.0}]


def states(study: hpo.Study) -> list[str]:
    return [t.state.value for t in study.trials]


def test_ask_starts_a_running_trial_and_tell_finishes_it(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=0)
    trial = study.ask()
    assert trial.number == 0 and -5 <= trial.params["x"] <= 5
    stored = hpo.load_study("s", str(db_path)).trials[0]  # as another process sees it
    assert stored.state == TrialState.RUNNING and stored.heartbeat_at is not None
    finished = study.tell(trial, trial.params["x"] ** 2)
    assert finished.state == TrialState.COMPLETE and finished.value == trial.params["x"] ** 2
    assert study.best_value == finished.value


def test_define_by_run_report_and_pruning_work_on_an_asked_trial():
    study = hpo.create_study(seed=1, pruner="median", pruner_options={"n_startup_trials": 1})
    first = study.ask()
    x = first.suggest_float("x", 0, 1)
    first.report(0.1, 0)
    study.tell(first, x)
    second = study.ask()
    assert "x" in second.params or second.suggest_float("x", 0, 1) is not None
    second.report(0.9, 0)
    assert second.should_prune()  # worse than the median of the completed one at step 0
    pruned = study.tell(second, state="pruned")
    assert pruned.state == TrialState.PRUNED and pruned.value == 0.9
    assert "x" in study.suggested_params


def test_fixed_distributions_are_suggested_at_once():
    study = hpo.create_study(seed=2)
    trial = study.ask(
        {
            "lr": FloatDistribution(1e-4, 1e-1, log=True),
            "act": CategoricalDistribution(["relu", "tanh"]),
        }
    )
    assert set(trial.params) == {"lr", "act"}
    assert 1e-4 <= trial.params["lr"] <= 1e-1 and trial.params["act"] in ("relu", "tanh")
    assert set(trial.distributions) == {"lr", "act"}


def test_telling_again_the_same_is_harmless_and_anything_else_is_refused():
    study = hpo.create_study(space=SPACE, seed=3)
    trial = study.ask()
    first = study.tell(trial, 1.5)
    assert study.tell(trial.number, 1.5) == first  # a client retrying a lost answer
    with pytest.raises(hpo.TrialStateError, match="COMPLETE already"):
        study.tell(trial, 2.0)
    with pytest.raises(hpo.TrialStateError, match="COMPLETE already"):
        study.tell(trial, state="fail")
    assert study.tell(trial, 7.0, skip_if_finished=True) == first
    assert study.trials[0].value == 1.5


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((99, 1.0), {}, hpo.errors.TrialNotFoundError, "has no trial 99"),
        ((0, "fast"), {}, ValueError, "told str 'fast', expected a number"),
        ((0, float("nan")), {}, ValueError, "expected a finite number"),
        ((0,), {}, hpo.TrialStateError, "needs a value"),
        ((0, 1.0), {"state": "done"}, hpo.TrialStateError, "told complete, pruned, fail"),
        ((0,), {"values": [1.0, 2.0]}, ValueError, "one objective"),
    ],
)
def test_bad_tells_raise_and_change_nothing(args, kwargs, error, message):
    study = hpo.create_study(space=SPACE, seed=4)
    study.ask()
    with pytest.raises(error, match=message):
        study.tell(*args, **kwargs)
    assert states(study) == ["RUNNING"]


def test_a_waiting_trial_cannot_be_told():
    study = hpo.create_study(space=SPACE, seed=4)
    study.enqueue({"x": 1.0})
    with pytest.raises(hpo.TrialStateError, match="never asked for"):
        study.tell(0, 1.0)


def test_values_as_optuna_gives_them():
    study = hpo.create_study(space=SPACE, seed=5)
    trial = study.ask()
    assert study.tell(trial, values=[0.25]).value == 0.25


def test_the_budget_is_exact_with_ask():
    study = hpo.create_study(space=SPACE, seed=6, budget=3)
    asked = [study.ask() for _ in range(3)]
    with pytest.raises(hpo.BudgetMet, match="running in other workers"):
        study.ask()  # the rest of the budget is running (asked, not told)
    for trial in asked:
        study.tell(trial, 0.0)
    with pytest.raises(hpo.BudgetMet, match="has met its budget of 3 trials"):
        study.ask()
    assert states(study) == ["COMPLETE"] * 3


def test_enqueued_points_come_first_with_their_user_attrs():
    study = hpo.create_study(space=SPACE, seed=7)
    study.enqueue_trial({"x": 2.0}, user_attrs={"source": "hand"})
    study.enqueue_trial({"x": 2.0}, skip_if_exists=True)  # already queued: nothing more
    trial = study.ask()
    assert trial.params == {"x": 2.0} and trial.user_attrs == {"source": "hand"}
    assert len(study.trials) == 1


def test_running_trials_are_liars_for_the_model():
    """Two trials asked before either is told must not get the same point."""
    study = hpo.create_study(space=SPACE, sampler="tpe", seed=8, sampler_options={"n_startup": 3})
    for _ in range(5):
        trial = study.ask()
        study.tell(trial, (trial.params["x"] - 1) ** 2)
    first, second = study.ask(), study.ask()
    assert first.params != second.params


def test_a_trial_asked_in_a_process_that_died_is_reaped_and_its_point_asked_again(db_path):
    """A client that vanished mid-trial: its trial is FAIL ('worker lost') and its
    point is the next one asked."""
    code = (
        f"import hpo; s = hpo.load_study('s', {str(db_path)!r}); t = s.ask(); print(t.params['x'])"
    )
    hpo.create_study("s", str(db_path), SPACE, seed=9)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    asked = float(out.stdout)
    study = hpo.load_study("s", str(db_path))
    trial = study.ask()  # the asker's process is gone (same machine): lost at once
    assert trial.params["x"] == asked
    lost = study.trials[0]
    assert lost.state == TrialState.FAIL and "worker lost" in lost.error


def test_a_trial_can_be_told_from_another_process(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=10)
    trial = study.ask()
    trial.report(0.5, 1)
    code = f"import hpo; hpo.load_study('s', {str(db_path)!r}).tell({trial.number}, 0.25)"
    subprocess.run([sys.executable, "-c", code], check=True)
    told = hpo.load_study("s", str(db_path)).trials[0]
    assert told.state == TrialState.COMPLETE and told.value == 0.25
    assert told.intermediate == {1: 0.5}


def test_an_asked_trial_keeps_its_heartbeat_until_told(db_path):
    study = hpo.create_study("s", str(db_path), SPACE, seed=11)
    study.heartbeat_interval = 0.05
    trial = study.ask()
    first = study.trials[0].heartbeat_at
    deadline = time.monotonic() + 30
    while study.trials[0].heartbeat_at == first:
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.02)
    study.tell(trial, 1.0)
    assert study._heartbeat is None  # no trial left to keep alive


def test_interrupt_gives_a_running_trial_back_and_its_point_runs_again(db_path):
    study = hpo.create_study(
        "give-back", db_path, [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}], budget=2
    )
    trial = study.ask()
    given_back = study.interrupt(trial)
    assert given_back.state == TrialState.FAIL and "interrupted" in (given_back.error or "")
    assert study.interrupt(trial.number) == given_back  # a retried request: harmless
    retry = study.ask()
    assert retry.params == trial.params and retry.number != trial.number
    study.tell(retry, 0.5)
    assert study.n_counted == 1  # the interrupted trial takes no place in the budget
    with pytest.raises(TrialNotFoundError):
        study.interrupt(99)
