"""The bundled network objectives: one short trial each, through the real CLI."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

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


def boston_trial(seed: int, **options):
    """The article's network (13-50-1 sigmoid, Levenberg-Marquardt) as one boston trial."""
    study = hpo.create_study(objective="boston", objective_options=options, seed=seed)
    study.enqueue(
        {"units": 50, "activation": "sigmoid", "optimizer": "lm", "mu": 1.0, "mu_factor": 10.0}
    )
    study.optimize(load_objective("boston", options), n_trials=1)
    return study.trials[0]


def test_boston_chooses_the_epoch_on_rows_apart_from_the_scored_ones(workdir):
    """Each epoch reports the held-out (scored) MSE; early stopping watches other rows, so
    the value is the held-out MSE at the epoch *they* chose, not the best held-out epoch
    (choosing the epoch on the scored rows made the score optimistic)."""
    trial = boston_trial(1, max_epochs=30, patience=3)
    held_out = [trial.intermediate[e] for e in sorted(trial.intermediate)]
    best = trial.user_attrs["best_epoch"]
    assert trial.user_attrs["stopped"] == "early stopping"
    assert trial.value == pytest.approx(trial.intermediate[best])
    assert trial.value > min(held_out) * 1.05  # the scored rows would have chosen better
    assert trial.user_attrs["epochs"] == best + 3  # patience 3, watched on its own rows


def test_boston_without_a_stopping_split_trains_every_epoch(workdir):
    trial = boston_trial(1, max_epochs=4, stopping=0.0)
    assert trial.user_attrs["stopped"] is None and trial.user_attrs["epochs"] == 4
    assert trial.value == pytest.approx(trial.intermediate[4])  # the last epoch is scored


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


# -- two objectives: error against size ------------------------------------------------------

TRADEOFFS = {
    "mnist_tradeoff": "max_epochs = 1\nsubset = 600\nvalidation = 300\n",
    "boston_tradeoff": "max_epochs = 3\n",
}
STUDIES = Path(__file__).resolve().parent.parent / "studies"


@pytest.mark.parametrize("name", list(TRADEOFFS))
def test_a_tradeoff_returns_error_and_size_through_the_cli(workdir, name):
    (workdir / "s.toml").write_text(
        f'name = "s"\ndirections = ["minimize", "minimize"]\ntrials = 2\nseed = 0\n'
        f'sampler = "random"\n[objective]\nname = "{name}"\n{TRADEOFFS[name]}'
    )
    result = CliRunner().invoke(cli, ["run", "s.toml"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    study = hpo.load_study("s", "hpo.db")
    names = load_objective(name).names
    assert study.info.objective_names == list(names)  # named by the objective itself
    assert f"0: {names[0]} (minimize)" in result.stdout
    for trial in study.trials:
        error, size = trial.values
        assert trial.state == TrialState.COMPLETE and trial.value is None
        assert error > 0 and size >= 1 and size == int(size)
    if name == "boston_tradeoff":
        assert [t.values[1] for t in study.trials] == [t.params["units"] for t in study.trials]
    else:  # every weight and bias of a 784-...-10 network
        trial = study.trials[0]
        units = [trial.params[k] for k in sorted(trial.params) if k.startswith("units")]
        sizes = [784, *units, 10]
        slopes = sum(units) if trial.params["activation"] == "prelu" else 0  # one a unit
        weights = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
        assert trial.values[1] == weights + slopes
        assert trial.values[0] == pytest.approx(1 - trial.user_attrs["accuracy"])


def test_a_tradeoff_without_directions_says_to_give_them(workdir):
    (workdir / "s.toml").write_text('trials = 1\nobjective = "boston_tradeoff"\n')
    result = CliRunner().invoke(cli, ["run", "s.toml"])
    assert result.exit_code == 2 and "returns 2 values (held-out MSE, hidden units)" in (
        result.stderr
    )
    assert "give directions" in result.stderr and not (workdir / "hpo.db").exists()
    # from Python, the objective's own directions are the default
    study = hpo.create_study(objective="boston_tradeoff", sampler="random")
    assert study.directions == ["minimize", "minimize"]


@pytest.mark.parametrize(
    "path", ["boston_tradeoff.toml", "mnist_tradeoff.toml", "compare_tradeoff_quick.toml"]
)
def test_the_tradeoff_study_files_load_and_plan(path):
    from hpo.comparison import plan
    from hpo.studyfile import load_compare_file, load_study_file

    if path.startswith("compare"):
        _, objectives = plan(load_compare_file(STUDIES / path))
        assert {o.names for o in objectives.values()} == {
            ("held-out MSE", "hidden units"),
            ("validation error", "weights"),
        }
        return
    config = load_study_file(STUDIES / path)
    assert config.directions == ["minimize", "minimize"]
    objective = load_objective(config.objective, config.objective_options)
    assert tuple(config.objective_names) == objective.names
