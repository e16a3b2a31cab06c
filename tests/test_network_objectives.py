"""The bundled network objectives: one short trial each, through the real CLI."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.objectives import load_objective
from hpo.records import TrialState

QUICK = {
    "mnist_mlp": "max_epochs = 1\nsubset = 600\nvalidation = 300\n",
    "boston": "max_epochs = 3\n",
    "sofm": "epochs = 3\n",
}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    return tmp_path


@pytest.mark.parametrize("name", list(QUICK))
def test_one_short_trial_through_the_cli(workdir, name):
    (workdir / "s.toml").write_text(
        f'name = "s"\ntrials = 2\nseed = 0\n[objective]\nname = "{name}"\n{QUICK[name]}'
    )
    result = CliRunner().invoke(cli, ["run", "s.toml"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    study = hpo.load_study("s", "hpo.db")
    assert study.space.to_spec() == load_objective(name).space  # the default space
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE and math.isfinite(trial.value)
        assert "stopped" in trial.user_attrs
        if trial.user_attrs["stopped"] != "diverged":
            assert len(trial.intermediate) == trial.user_attrs["epochs"]  # each epoch reported


def test_mnist_stores_accuracy_and_reproduces_by_seed(workdir):
    runs = []
    for _ in range(2):
        study = hpo.create_study(
            objective="mnist_mlp",
            objective_options={"max_epochs": 1, "subset": 600, "validation": 300},
            seed=4,
        )
        study.optimize(
            load_objective("mnist_mlp", {"max_epochs": 1, "subset": 600, "validation": 300}),
            n_trials=2,
        )
        runs.append([(t.params, t.value) for t in study.trials])
        assert all(0 <= t.user_attrs["accuracy"] <= 1 for t in study.trials)
    assert runs[0] == runs[1]


def test_boston_branches_over_the_optimizer(workdir):
    for optimizer, extra in (
        ("lm", {"mu": 1.0, "mu_factor": 10.0}),
        ("adam", {"step": 0.01}),
        ("momentum", {"step": 0.01, "momentum": 0.9}),
    ):
        study = hpo.create_study(objective="boston", objective_options={"max_epochs": 2}, seed=0)
        study.enqueue({"units": 10, "activation": "tanh", "optimizer": optimizer, **extra})
        study.optimize(load_objective("boston", {"max_epochs": 2}), n_trials=1)
        trial = study.trials[0]
        assert trial.state == TrialState.COMPLETE
        assert trial.user_attrs["rmsle"] > 0 and trial.value > 0


def test_a_diverged_network_scores_as_one_that_learned_nothing(workdir):
    study = hpo.create_study(objective="mnist_mlp", seed=0)
    study.enqueue(
        {
            "step": 0.5,
            "batch_size": 16,
            "activation": "relu",
            "layers": "one",
            "units_1_1": 1000,
            "dropout": 0.0,
        }
    )
    study.optimize(
        load_objective("mnist_mlp", {"max_epochs": 2, "subset": 600, "validation": 300}), n_trials=1
    )
    trial = study.trials[0]
    assert trial.user_attrs["stopped"] == "diverged"
    assert trial.value == pytest.approx(math.log(10))


def test_unknown_objective_option_is_refused(workdir):
    (workdir / "s.toml").write_text('trials = 1\n[objective]\nname = "boston"\nepochz = 3\n')
    result = CliRunner().invoke(cli, ["run", "s.toml"])
    assert result.exit_code == 2 and "no option 'epochz'" in result.stderr
    assert not (workdir / "hpo.db").exists()
