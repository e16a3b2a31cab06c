"""Drivers written against Optuna's documented API run with `hpo` in place of `optuna`.

Each driver below is run twice, in a subprocess: once importing optuna as LIB,
once importing hpo as LIB. What they print is the structure of the results
(counts, states, keys, types, the names of columns), never the values found,
which differ between the libraries' samplers: the two outputs must be equal.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("optuna")
pytest.importorskip("pandas")

DRIVER = """
import datetime
import LIB
LIB.logging.set_verbosity(LIB.logging.WARNING)
from LIB.trial import TrialState


def objective(trial):
    x = trial.suggest_float("x", -10, 10)
    layers = trial.suggest_int("layers", 1, 3)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    if kind == "a":
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    else:
        lr = 0.01
    for step in range(3):
        trial.report((x - 2) ** 2 + step, step)
        if trial.should_prune():
            raise LIB.TrialPruned()
    if trial.number == 5:
        raise ValueError("a failure the study goes on after")
    trial.set_user_attr("layers_twice", 2 * layers)
    return (x - 2) ** 2 + layers + lr


def stop_after(limit):
    def callback(study, trial):
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= limit:
            study.stop()
    return callback


study = LIB.create_study(
    study_name="drop-in",
    storage="sqlite:///{db}",
    sampler=LIB.samplers.TPESampler(seed=0),
    pruner=LIB.pruners.MedianPruner(n_startup_trials=100),
    direction="minimize",
)
print("name", study.study_name, [d.name.lower() for d in study.directions])
study.enqueue_trial({{"x": 2.0, "layers": 1, "kind": "b"}}, user_attrs={{"why": "warm start"}})
study.enqueue_trial({{"x": 2.0, "layers": 1, "kind": "b"}}, skip_if_exists=True)
study.optimize(objective, n_trials=12, catch=(ValueError,), gc_after_trial=True,
               show_progress_bar=False, callbacks=[stop_after(100)])
study.optimize(objective, n_trials=6, n_jobs=2)
print("trials", len(study.trials))
print("states", sorted({{t.state.name for t in study.trials}}))
print("enqueued first", study.trials[0].params == {{"x": 2.0, "layers": 1, "kind": "b"}},
      sorted(study.trials[0].user_attrs.items()))
best = study.best_trial
print("best", type(study.best_value).__name__, sorted(study.best_params) == sorted(best.params))
print("frozen", isinstance(best.datetime_start, datetime.datetime),
      isinstance(best.datetime_complete, datetime.datetime),
      best.values == [best.value], sorted(best.intermediate_values),
      sorted(best.distributions) == sorted(best.params), sorted(best.user_attrs))
failed = study.get_trials(states=(TrialState.FAIL,))
print("failed", [t.number for t in failed])

trial = study.ask()
x = trial.suggest_float("x", -10, 10)
study.tell(trial, (x - 2) ** 2)
pruned = study.ask()
pruned.report(1.0, 0)
study.tell(pruned, state=TrialState.PRUNED)
print("told", [t.state.name for t in study.trials[-2:]])

study.add_trial(LIB.trial.create_trial(
    params={{"x": 2.0}}, distributions={{"x": LIB.distributions.FloatDistribution(-10, 10)}},
    value=0.5))
print("added", study.trials[-1].state.name, study.trials[-1].value)

study.optimize(objective, n_trials=50, callbacks=[stop_after(len(study.trials))])
frame = study.trials_dataframe()
print("columns", sorted(c for c in frame.columns if not c.startswith("system_attrs")))
print("rows", len(frame) == len(study.trials))
again = LIB.load_study(study_name="drop-in", storage="sqlite:///{db}")
print("loaded", len(again.trials) == len(study.trials), again.best_value == study.best_value)
"""


def run(library: str, folder) -> list[str]:
    db = folder / f"{library}.db"
    code = textwrap.dedent(DRIVER).replace("LIB", library).format(db=db)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"{library}:\n{result.stderr[-3000:]}"
    return result.stdout.splitlines()


def test_an_optuna_driver_runs_unchanged_with_hpo(tmp_path):
    optuna_lines = run("optuna", tmp_path)
    hpo_lines = run("hpo", tmp_path)
    assert hpo_lines == optuna_lines
