"""What every native sampler promises: valid points, branches respected, same seed same trials."""

from __future__ import annotations

import math

import pytest

import hpo
from hpo.records import TrialState
from hpo.space import Numeric, Space

# Every kind at once: log and stepped floats, log and stepped ints, mixed
# categorical choices, a branch inside a branch, a name reused by sibling labels.
SPACE = [
    {"name": "lr", "type": "float", "low": 1e-5, "high": 1.0, "log": True},
    {"name": "momentum", "type": "float", "low": 0.0, "high": 0.9, "step": 0.15},
    {"name": "batch", "type": "int", "low": 8, "high": 512, "log": True},
    {"name": "layers", "type": "int", "low": 2, "high": 20, "step": 3},
    {"name": "flag", "type": "categorical", "choices": [True, False, None, 3, "x", 0.5]},
    {
        "name": "model",
        "type": "branch",
        "choices": {
            "linear": [],
            "svm": [
                {"name": "c", "type": "float", "low": 0.01, "high": 100.0, "log": True},
                {
                    "name": "kernel",
                    "type": "branch",
                    "choices": {
                        "rbf": [{"name": "gamma", "type": "float", "low": 1e-3, "high": 1.0}],
                        "poly": [{"name": "degree", "type": "int", "low": 2, "high": 5}],
                    },
                },
            ],
            "tree": [{"name": "c", "type": "int", "low": 1, "high": 10}],
        },
    },
]

# small start-ups, so that the models are used within the short studies here
OPTIONS = {
    "random": {},
    "sobol": {},
    "halton": {},
    "tpe": {"n_startup": 5},
    "gp": {"n_startup": 5, "n_candidates": 256, "n_refine": 3},
    "nsga2": {"population_size": 6},
}


def objective(trial: hpo.Trial) -> float:
    p = trial.params
    value = (math.log10(p["lr"]) + 2) ** 2 + p["momentum"] + math.log2(p["batch"]) / 9
    value += {"linear": 1.0, "svm": 0.0, "tree": 0.5}[p["model"]]
    return value + (0.3 if p["flag"] in (None, "x") else 0.0)


def run(sampler: str, seed: int, trials: int = 16, direction: str = "minimize") -> hpo.Study:
    study = hpo.create_study(
        space=SPACE,
        sampler=sampler,
        seed=seed,
        direction=direction,
        sampler_options=OPTIONS[sampler],
        budget=trials,
    )
    study.optimize(objective)
    return study


@pytest.mark.parametrize("sampler", list(OPTIONS))
def test_points_are_valid_and_respect_branches(sampler):
    space = Space.from_spec(SPACE)
    study = run(sampler, seed=1)
    trials = study.trials
    assert len(trials) == 16 and all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:
        assert space.validate(trial.params) == trial.params  # complete, active only, in range
        for name, value in trial.params.items():
            param = next(
                d.param for d in space.dims if d.param.name == name and d.param.contains(value)
            )
            if isinstance(param, Numeric) and param.type == "int":
                assert type(value) is int
        if trial.params["model"] != "svm":
            assert "kernel" not in trial.params and "gamma" not in trial.params


@pytest.mark.parametrize("sampler", list(OPTIONS))
def test_same_seed_same_trials(sampler):
    first, second = run(sampler, seed=3), run(sampler, seed=3)
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    other = run(sampler, seed=4)
    assert [t.params for t in other.trials] != [t.params for t in first.trials]


@pytest.mark.parametrize("sampler", list(OPTIONS))
def test_stop_and_resume_continues_the_same_sequence(sampler, tmp_path):
    straight = hpo.create_study(
        "a",
        str(tmp_path / "a.db"),
        SPACE,
        sampler,
        seed=5,
        sampler_options=OPTIONS[sampler],
        budget=14,
    )
    straight.optimize(objective)
    stopped = hpo.create_study(
        "b",
        str(tmp_path / "b.db"),
        SPACE,
        sampler,
        seed=5,
        sampler_options=OPTIONS[sampler],
        budget=14,
    )
    stopped.optimize(objective, n_trials=6)
    hpo.load_study("b", str(tmp_path / "b.db")).optimize(objective)
    assert [t.params for t in stopped.trials] == [t.params for t in straight.trials]


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_models_work_when_maximizing(sampler):
    study = run(sampler, seed=0, trials=20, direction="maximize")
    values = [t.value for t in study.trials]
    assert study.best_value == max(values)


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_models_learn_from_suggested_parameters(sampler):
    def optuna_style(trial):
        x = trial.suggest_float("x", -5, 5)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        return (x - 2) ** 2 + (kind == "b")

    study = hpo.create_study(sampler=sampler, seed=0, sampler_options=OPTIONS[sampler], budget=30)
    study.optimize(optuna_style)
    assert study.best_value < 0.5
    assert set(study.suggested_params) == {"x", "kind"}
