"""The reference backends (Optuna, hyperopt, scikit-optimize) against their stated
guarantees: valid points on tree-structured spaces, determinism by seed, the direction,
history replayed when a study switches sampler, Optuna's QMC sequence continued, and
missing libraries reported before a study is created."""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import hpo
from hpo.cli import cli
from hpo.direction import Direction
from hpo.errors import SamplerError
from hpo.objectives.synthetic import PROBLEMS, branin
from hpo.records import FrozenTrial, TrialState
from hpo.samplers import make_sampler
from hpo.space import Space

NEEDS = {  # sampler -> (module, package) it imports
    "optuna-tpe": [("optuna", "optuna")],
    "optuna-qmc": [("optuna", "optuna")],
    "optuna-gp": [("optuna", "optuna"), ("torch", "torch")],
    "hyperopt-tpe": [("hyperopt", "hyperopt")],
    "skopt-gp": [("skopt", "scikit-optimize")],
}
BACKENDS = list(NEEDS)
# Short studies that still reach the model: GP asks are slow, so fewer of them.
TRIALS = {"optuna-gp": 12, "skopt-gp": 11}
FAST_START = {
    "optuna-tpe": {"n_startup_trials": 5},
    "optuna-gp": {"n_startup_trials": 5},
    "hyperopt-tpe": {"n_startup_jobs": 5},
    "skopt-gp": {"n_initial_points": 5},
    "optuna-qmc": {},
}

ODD = Space.from_spec(
    [  # names reused across labels, ambiguous choices, steps, log ints
        {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
        {"name": "batch", "type": "int", "low": 16, "high": 512, "log": True},
        {"name": "pick", "type": "categorical", "choices": [1, True, 1.0, None, "x"]},
        {
            "name": "model",
            "type": "branch",
            "choices": {
                "a": [
                    {"name": "size", "type": "int", "low": 2, "high": 20, "step": 3},
                    {"name": "drop", "type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
                ],
                "b": [{"name": "size", "type": "categorical", "choices": ["s", "m"]}],
                "c": [],
            },
        },
    ]
)


def need(name: str) -> None:
    for module, package in NEEDS[name]:
        if importlib.util.find_spec(module) is None:
            fix = "torch" if package == "torch" else "'hpo[reference]'"
            pytest.skip(f"sampler {name!r} needs {package}: pip install {fix}")


@functools.cache
def run(name: str, objective: str, seed: int = 0) -> tuple[tuple[str, Any, Any], ...]:
    """A short study's trials as (state, params, value); cached, so tests can share it."""
    study = hpo.create_study(
        objective=objective, sampler=name, seed=seed, budget=TRIALS.get(name, 15)
    )
    study.optimize()
    for trial in study.trials:
        assert study.space.validate(trial.params) == trial.params
    return tuple((str(t.state), t.params, t.value) for t in study.trials)


def exact(params: dict[str, Any], space: Space) -> bool:
    """Valid, and each value of the exact type of what the space holds (1 is not True)."""
    checked = space.validate(params)
    return checked == params and all(type(checked[k]) is type(v) for k, v in params.items())


def drive(
    name: str, space: Space, n: int, fn, direction: str = "minimize", options: dict | None = None
) -> list[FrozenTrial]:
    """Ask n points, feeding each back as a completed trial."""
    sampler = make_sampler(name, options, seed=1)
    trials: list[FrozenTrial] = []
    for i in range(n):
        params = sampler.ask(space, trials, np.random.default_rng([1, i]), Direction(direction))
        assert exact(params, space), params
        trials.append(
            FrozenTrial(
                trial_id=i + 1,
                number=i,
                state=TrialState.COMPLETE,
                params=params,
                value=fn(params),
                system_attrs={"sample": i},
            )
        )
    return trials


# -- studies on the built-in objectives ---------------------------------------------------


@pytest.mark.parametrize("objective", ["conditional_nn", "mixed_nn"])
@pytest.mark.parametrize("name", BACKENDS)
def test_short_study_completes_with_valid_points(name, objective):
    need(name)
    trials = run(name, objective)
    assert len(trials) == TRIALS.get(name, 15)
    assert {state for state, _, _ in trials} == {"COMPLETE"}
    if objective == "conditional_nn":
        active = {
            "one": {"lr", "layers", "units_1_1"},
            "two": {"lr", "layers", "units_2_1", "units_2_2"},
        }
        for _, params, _ in trials:
            assert set(params) == active[params["layers"]]
        assert {params["layers"] for _, params, _ in trials} == {"one", "two"}


@pytest.mark.parametrize("name", BACKENDS)
def test_same_seed_same_trials(name):
    need(name)
    again = run.__wrapped__(name, "conditional_nn")
    assert again == run(name, "conditional_nn")
    assert again != run.__wrapped__(name, "conditional_nn", seed=1)


@pytest.mark.parametrize("name", BACKENDS)
def test_conversions_are_exact_on_an_odd_space(name):
    """Reused names, 1 / True / 1.0 / None as distinct choices, steps and log ints."""
    need(name)
    n = 6 if name in ("skopt-gp", "optuna-gp") else 14
    trials = drive(
        name,
        ODD,
        n,
        lambda p: -np.log10(p["lr"]) + (p["pick"] is None),
        options={k: 3 for k in FAST_START[name]},
    )
    assert len({str(t.params) for t in trials}) > n // 2
    picks = {repr(t.params["pick"]) for t in trials}  # repr: 1, True and 1.0 stay apart
    assert len(picks) >= (3 if n > 6 else 2), picks


@pytest.mark.parametrize("name", [n for n in BACKENDS if n != "optuna-qmc"])
def test_the_direction_is_followed(name):
    """After the same random start, maximizing proposes better points than minimizing."""
    need(name)
    space = Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
    n = 9 if name in ("skopt-gp", "optuna-gp") else 12

    def model_mean(direction: str) -> float:
        trials = drive(
            name, space, n, lambda p: -((p["x"] - 0.3) ** 2), direction, options=FAST_START[name]
        )
        return float(np.mean([t.value for t in trials[5:]]))

    assert model_mean("maximize") > model_mean("minimize") + 0.1


@pytest.mark.parametrize("name", BACKENDS)
def test_a_pure_ask_with_running_and_failed_trials(name):
    need(name)
    sampler = make_sampler(name, FAST_START[name], seed=0)
    space = Space.from_spec(PROBLEMS["conditional_nn"]["space"])
    trials = drive("random", space, 6, lambda p: p["lr"])
    trials += [
        FrozenTrial(7, 6, TrialState.RUNNING, dict(trials[0].params)),
        FrozenTrial(8, 7, TrialState.FAIL, dict(trials[1].params)),
        FrozenTrial(9, 8, TrialState.WAITING, {"lr": 0.1}),
    ]
    first, second = (
        sampler.ask(space, trials, np.random.default_rng(3), Direction.MINIMIZE) for _ in range(2)
    )
    assert first == second and space.validate(first) == first


@pytest.mark.parametrize("name", BACKENDS)
def test_switching_sampler_mid_study_replays_the_history(name):
    need(name)
    study = hpo.create_study(objective="conditional_nn", sampler="random", seed=2, budget=6)
    study.optimize()
    study.set_sampler(name, FAST_START[name])
    study.set_budget(8 if name in ("skopt-gp", "optuna-gp") else 10)
    study.optimize()
    study.set_sampler("tpe")
    study.set_budget(study.budget + 2)
    study.optimize()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * study.budget
    for trial in study.trials:
        assert study.space.validate(trial.params) == trial.params


@pytest.mark.parametrize("name", ["optuna-tpe", "optuna-qmc", "hyperopt-tpe"])
def test_stop_and_resume_gives_the_same_trials(name, tmp_path):
    def study(label: str) -> hpo.Study:
        return hpo.create_study(
            label,
            str(tmp_path / f"{label}.db"),
            sampler=name,
            seed=4,
            objective="conditional_nn",
            budget=12,
            sampler_options=FAST_START[name],
        )

    need(name)
    straight, stopped = study("a"), study("b")
    straight.optimize()
    stopped.optimize(n_trials=5)
    hpo.load_study("b", str(tmp_path / "b.db")).optimize()
    assert [t.params for t in stopped.trials] == [t.params for t in straight.trials]


@pytest.mark.parametrize("name", BACKENDS)
def test_define_by_run_parameters(name):
    """Suggested parameters: drawn alone when new, then jointly with the declared ones;
    trials that did not ask for one (y) leave it out of their history."""
    need(name)

    def objective(trial):
        kind = trial.suggest_categorical("kind", ["a", None])
        y = trial.suggest_int("y", 1, 9, step=2) if kind == "a" else 0
        return trial.suggest_float("x", -2, 2) ** 2 + y

    n = 8 if name in ("skopt-gp", "optuna-gp") else 10
    study = hpo.create_study(sampler=name, sampler_options=FAST_START[name], seed=0, budget=n)
    study.optimize(objective)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * n
    assert {t.params["kind"] for t in study.trials} == {"a", None}
    assert all(type(t.params["y"]) is int for t in study.trials if t.params["kind"] == "a")


# -- Optuna's QMC sequence -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:QMCSampler is experimental")
def test_optuna_qmc_follows_optunas_own_sequence():
    """After the first (random) trial, the same points as Optuna's QMCSampler run in Optuna."""
    need("optuna-qmc")
    import optuna

    ours = [
        t.params
        for t in drive("optuna-qmc", Space.from_spec(PROBLEMS["branin"]["space"]), 10, branin)
    ]
    native = optuna.create_study(sampler=optuna.samplers.QMCSampler(seed=1, scramble=True))
    native.optimize(
        lambda t: branin(
            {"x1": t.suggest_float("x1", -5.0, 10.0), "x2": t.suggest_float("x2", 0.0, 15.0)}
        ),
        n_trials=10,
    )
    assert ours[1:] == [t.params for t in native.trials][1:]


# -- options, missing libraries, the CLI --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("optuna-tpe", {"n_startup": 3}, "sampler 'optuna-tpe' has no option 'n_startup'"),
        ("hyperopt-tpe", {"n_startup_trials": 3}, "(did you mean 'n_startup_jobs'?)"),
        ("skopt-gp", {"acq": "EI"}, "its options: n_initial_points, acq_func"),
        ("optuna-qmc", {"qmc_type": "lattice"}, "qmc_type must be 'sobol' or 'halton'"),
        ("optuna-tpe", {"multivariate": "yes"}, "multivariate must be true or false"),
        ("hyperopt-tpe", {"gamma": 1.5}, "gamma must be a number in (0, 1)"),
        ("skopt-gp", {"acq_func": "UCB"}, "acq_func must be one of"),
    ],
)
def test_bad_options_are_sampler_errors(name, options, fragment):
    with pytest.raises(SamplerError) as error:
        make_sampler(name, options)
    assert fragment in str(error.value)


@pytest.mark.parametrize(
    ("name", "hidden", "message"),
    [
        ("optuna-tpe", "optuna", "sampler 'optuna-tpe' needs optuna: pip install 'hpo[reference]'"),
        ("optuna-gp", "torch", "sampler 'optuna-gp' needs torch: pip install torch"),
        ("hyperopt-tpe", "hyperopt", "needs hyperopt: pip install 'hpo[reference]'"),
        ("skopt-gp", "skopt", "needs scikit-optimize: pip install 'hpo[reference]'"),
    ],
)
def test_a_missing_library_is_reported_before_the_study_exists(
    name, hidden, message, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, hidden, None)  # import fails as if not installed
    if name == "optuna-gp" and importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna-gp reports optuna first when both are missing")
    with pytest.raises(SamplerError, match=re.escape(message)):
        make_sampler(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    (tmp_path / "s.toml").write_text('objective = "branin"\ntrials = 3\n')
    result = CliRunner().invoke(cli, ["run", "s.toml", "--sampler", name])
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "hpo.db").exists()


@pytest.mark.parametrize("name", BACKENDS)
def test_cli_run_with_a_reference_sampler(name, tmp_path, monkeypatch):
    need(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    (tmp_path / "branin.toml").write_text('name = "b"\nobjective = "branin"\nseed = 0\n')
    result = CliRunner().invoke(
        cli, ["run", "branin.toml", "--sampler", name, "--trials", "12"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    study = hpo.load_study("b", "hpo.db")
    assert study.info.sampler == name and study.n_counted == 12
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


@pytest.mark.slow
def test_import_hpo_loads_no_reference_library():
    code = (
        "import sys, hpo, hpo.cli; "
        "print(sorted({'optuna', 'hyperopt', 'skopt', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# -- several objectives ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["optuna-tpe", "optuna-nsga2", "optuna-gp"])
def test_optunas_samplers_take_several_objectives_and_constraints(name):
    need("optuna-gp" if name == "optuna-gp" else "optuna-tpe")
    options = {
        "optuna-tpe": {"n_startup_trials": 4},
        "optuna-gp": {"n_startup_trials": 4},
        "optuna-nsga2": {"population_size": 4},
    }[name]

    def objective(trial: hpo.Trial) -> tuple[float, float]:
        x, y = trial.params["x"], trial.params["y"]
        trial.set_constraints([0.3 - x])
        return x + y, 1.0 - x + y

    space = [{"name": n, "type": "float", "low": 0.0, "high": 1.0} for n in ("x", "y")]
    studies = []
    for _ in range(2):
        study = hpo.create_study(
            space=space,
            directions=["minimize", "minimize"],
            sampler=name,
            sampler_options=options,
            seed=3,
        )
        study.optimize(objective, n_trials=6 if name == "optuna-gp" else 12)
        studies.append([t.params for t in study.trials])
        assert all(t.state == TrialState.COMPLETE for t in study.trials)
        assert all(t.feasible for t in study.best_trials)
    assert studies[0] == studies[1]  # the same seed, the same trials


def test_optuna_nsga2_generations_as_a_sequential_optuna_study_has_them():
    from hpo.samplers.reference_optuna import _generations

    states = [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    states += [TrialState.COMPLETE, TrialState.RUNNING]
    trials = [FrozenTrial(i + 1, i, s, {}) for i, s in enumerate(states)]
    # population 2: a generation ends when 2 of its trials have completed
    assert _generations(trials, 2) == {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 2}
