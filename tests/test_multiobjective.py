"""Several objectives: values per objective, constraints, the Pareto front, the hypervolume."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import hpo
from hpo.direction import Direction
from hpo.pareto import front_mask, hypervolume, reference_point
from hpo.records import TrialState
from tests.test_cli import invoke, write


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    return tmp_path


SPACE = [
    {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
    {"name": "y", "type": "float", "low": 0.0, "high": 1.0},
]


def two_objectives(trial: hpo.Trial) -> tuple[float, float]:
    """A trade-off: the front is x in [0, 1] with y = 0."""
    x, y = trial.params["x"], trial.params["y"]
    return x + y, 1.0 - x + y


def test_a_study_of_two_objectives_stores_both_and_finds_its_front():
    study = hpo.create_study(
        space=SPACE, directions=["minimize", "minimize"], sampler="random", seed=0
    )
    study.optimize(two_objectives, n_trials=40)
    assert all(len(t.values) == 2 and t.value is None for t in study.trials)
    front = study.best_trials
    assert front and all(t.state == TrialState.COMPLETE for t in front)
    values = np.array([t.values for t in study.trials])
    for trial in front:  # no trial beats a front trial in both objectives
        beats = np.all(values <= trial.values, axis=1) & np.any(values < trial.values, axis=1)
        assert not beats.any()
    with pytest.raises(hpo.StudyConfigError, match="best_trials"):
        _ = study.best_trial


def test_directions_mix_minimize_and_maximize():
    study = hpo.create_study(
        space=SPACE, directions=["minimize", "maximize"], seed=1, sampler="random"
    )
    study.optimize(lambda t: (t.params["x"], t.params["x"]), n_trials=20)
    # maximizing x while minimizing it: every trial is on the front
    assert len(study.best_trials) == 20


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (1.0, "expected 2 values"),
        ((1.0, 2.0, 3.0), "3 values, expected 2"),
        ((1.0, float("nan")), "as objective 1, nan, expected a finite number"),
        (("a", 2.0), "as objective 0, str 'a'"),
    ],
)
def test_a_result_of_the_wrong_shape_is_a_failure_with_its_reason(result, reason):
    study = hpo.create_study(space=SPACE, directions=["minimize", "minimize"], sampler="random")
    study.optimize(lambda trial: result, n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and reason in trial.error


def test_constraints_keep_infeasible_trials_off_the_front_and_the_best():
    def objective(trial: hpo.Trial) -> float:
        x = trial.params["x"]
        trial.set_constraints([0.5 - x])  # feasible when x >= 0.5
        return x

    study = hpo.create_study(space=SPACE, sampler="random", seed=2)
    study.optimize(objective, n_trials=30)
    assert study.best_value >= 0.5
    assert min(t.value for t in study.trials) < 0.5  # an infeasible one was better
    assert any(not t.feasible for t in study.trials)
    stored = hpo.load_study(study.name, study.storage)
    assert [t.constraints for t in stored.trials] == [t.constraints for t in study.trials]


def test_told_values_and_constraints():
    study = hpo.create_study(
        space=SPACE, directions=["minimize", "maximize"], seed=3, sampler="random"
    )
    trial = study.ask()
    told = study.tell(trial, values=[1.0, 2.0], constraints=[-1.0])
    assert told.values == [1.0, 2.0] and told.constraints == [-1.0] and told.feasible
    assert study.tell(trial.number, values=[1.0, 2.0]) == told  # the same again: harmless
    with pytest.raises(hpo.TrialStateError):
        study.tell(trial.number, values=[1.0, 3.0])
    other = study.ask()
    with pytest.raises(hpo.InvalidValueError, match="expected 2"):
        study.tell(other, 1.0)


def test_samplers_and_pruners_made_for_one_objective_are_refused_before_writing(db_path):
    with pytest.raises(hpo.SamplerError, match=r"optimizes one objective.*random, grid"):
        hpo.create_study(
            "s", str(db_path), SPACE, sampler="hyperopt-tpe", directions=["minimize"] * 2
        )
    with pytest.raises(hpo.SamplerError, match="at most 3 objectives, not 4"):
        hpo.create_study("s", str(db_path), SPACE, sampler="gp", directions=["minimize"] * 4)
    with pytest.raises(hpo.PrunerError, match="cannot be pruned"):
        hpo.create_study(
            "s", str(db_path), SPACE, sampler="random", pruner="median", directions=["minimize"] * 2
        )
    assert not db_path.exists()
    study = hpo.create_study("s", str(db_path), SPACE, sampler="sobol", directions=["minimize"] * 2)
    with pytest.raises(hpo.SamplerError, match="optimizes one objective"):
        study.set_sampler("skopt-gp")
    assert hpo.load_study("s", str(db_path)).info.sampler == "sobol"


def test_a_study_file_with_directions_runs_from_the_command_line(workdir):
    write(
        workdir / "objective.py", "def f(trial):\n    x = trial.params['x']\n    return x, 1 - x\n"
    )
    write(
        workdir / "two.toml",
        'objective = "objective.py:f"\ndirections = ["minimize", '
        '"minimize"]\nsampler = "random"\ntrials = 8\nseed = 0\n[[space]]\nname = "x"\n'
        'type = "float"\nlow = 0.0\nhigh = 1.0\n',
    )
    result = invoke("run", "two.toml")
    assert result.exit_code == 0, result.output
    assert "Pareto front: 8 trials (objectives 0: minimize / 1: minimize)" in result.stdout
    best = invoke("best", "two")
    assert "Pareto front of 'two': 8 trials" in best.stdout
    assert "minimize, minimize" in invoke("studies").stdout


def test_hpo_show_prints_every_value_and_the_constraints(workdir):
    write(
        workdir / "objective.py",
        "def f(trial):\n    x = trial.params['x']\n    trial.set_constraints([x - 0.5])\n"
        "    return x, 1 - x\n",
    )
    write(
        workdir / "two.toml",
        'objective = "objective.py:f"\ndirections = ["minimize", '
        '"minimize"]\nsampler = "random"\ntrials = 4\nseed = 0\n[[space]]\nname = "x"\n'
        'type = "float"\nlow = 0.0\nhigh = 1.0\n',
    )
    assert invoke("run", "two.toml").exit_code == 0
    trial = hpo.load_study("two", "hpo.db").trials[0]
    shown = invoke("show", "two", "0").stdout
    x = trial.params["x"]
    assert f"values    ({x:.6g}, {1 - x:.6g})" in shown, shown
    verdict = "feasible" if x <= 0.5 else "infeasible"
    assert f"constraints ({x - 0.5:.6g}): {verdict}" in shown, shown


# -- the front and the hypervolume against brute force ------------------------------------


def test_front_mask_matches_pairwise_dominance():
    """Small sets (one comparison of every pair) and large ones (screened in blocks
    against the front so far, then one by one), with ties, and a set that is all front."""
    rng = np.random.default_rng(0)
    line = np.column_stack([np.arange(1500.0), -np.arange(1500.0)])  # nobody dominates
    for points in [
        *(rng.integers(0, 6, size=(60, k)).astype(float) for k in (2, 3, 4)),  # ties on purpose
        *(rng.integers(0, 40, size=(1500, k)).astype(float) for k in (2, 3)),
        rng.uniform(size=(1500, 3)),
        line,
    ]:
        below = np.all(points[:, None, :] <= points[None, :, :], axis=2)  # (n, n): i <= j
        strictly = np.any(points[:, None, :] < points[None, :, :], axis=2)
        expected = ~np.any(below & strictly, axis=0)
        assert front_mask(points).tolist() == expected.tolist()


def _box_volume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume by inclusion-exclusion over every subset (small n only)."""
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * np.prod(np.maximum(reference - corner, 0))
    return float(total)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_hypervolume_is_exact(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        points = rng.random((7, k))
        reference = np.full(k, 1.1)
        assert hypervolume(points, reference) == pytest.approx(_box_volume(points, reference))


def test_hypervolume_of_a_known_front():
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert hypervolume(front, np.array([1.0, 1.0])) == pytest.approx(0.25)
    assert hypervolume(front, np.array([2.0, 2.0])) == pytest.approx(0.5 + 0.75 + 2.0)
    assert hypervolume(np.array([[3.0, 3.0]]), np.array([2.0, 2.0])) == 0.0  # outside


def test_a_derived_reference_point_lets_every_front_point_count():
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    reference = reference_point(front)
    assert np.all(reference > front.max(axis=0))
    without_each = [hypervolume(np.delete(front, i, axis=0), reference) for i in range(3)]
    assert all(v < hypervolume(front, reference) for v in without_each)


def test_directions_as_losses():
    assert Direction.MAXIMIZE.loss(2.0) == -2.0
    assert math.isclose(Direction.MINIMIZE.loss(2.0), 2.0)


# -- the samplers made for several objectives ------------------------------------------

MO_OPTIONS = {
    "nsga2": {"population_size": 6},
    "tpe": {"n_startup": 5},
    "gp": {"n_startup": 5, "n_candidates": 256, "n_refine": 3},
}


def contract_objective(trial: hpo.Trial) -> tuple[float, float]:
    from tests.test_sampler_contract import objective

    value = objective(trial)
    trial.set_constraints([0.5 - trial.params["momentum"]])  # feasible: momentum >= 0.5
    return value, -math.log10(trial.params["lr"])


@pytest.mark.parametrize("sampler", list(MO_OPTIONS))
def test_several_objective_samplers_stay_in_the_space_and_repeat_by_seed(sampler):
    from tests.test_sampler_contract import SPACE as CONTRACT_SPACE

    space = hpo.Space.from_spec(CONTRACT_SPACE)

    def run(seed: int) -> list[dict]:
        study = hpo.create_study(
            space=CONTRACT_SPACE,
            directions=["minimize", "maximize"],
            sampler=sampler,
            sampler_options=MO_OPTIONS[sampler],
            seed=seed,
        )
        study.optimize(contract_objective, n_trials=14)
        assert all(t.state == TrialState.COMPLETE for t in study.trials)
        return [t.params for t in study.trials]

    first = run(1)
    for params in first:  # complete, active parameters only, in range, every kind
        assert space.validate(params) == params
    assert len({p["model"] for p in first}) > 1  # the branches are all reachable
    assert run(1) == first
    assert run(2) != first


def zdt1(trial: hpo.Trial) -> tuple[float, float]:
    """ZDT1 on 4 variables (Zitzler, Deb & Thiele, 2000; bench/mo_problems.py)."""
    x = [trial.params[f"x{i}"] for i in range(4)]
    g = 1.0 + 9.0 * sum(x[1:]) / 3
    return x[0], g * (1.0 - math.sqrt(x[0] / g))


ZDT_SPACE = [{"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0} for i in range(4)]


def mean_hypervolume(sampler: str, options: dict, trials: int, seeds: range) -> float:
    volumes = []
    for seed in seeds:
        study = hpo.create_study(
            space=ZDT_SPACE,
            directions=["minimize", "minimize"],
            sampler=sampler,
            sampler_options=options,
            seed=seed,
        )
        study.optimize(zdt1, n_trials=trials)
        points = np.array([t.values for t in study.trials])
        volumes.append(hypervolume(points, np.array([1.1, 11.0])))
    return float(np.mean(volumes))


@pytest.mark.parametrize(
    ("sampler", "options", "trials"),
    [
        ("nsga2", {"population_size": 20}, 150),  # a genetic algorithm needs generations
        ("tpe", {}, 40),
        ("gp", {"n_candidates": 512, "n_refine": 4}, 24),
    ],
)
def test_each_sampler_for_several_objectives_beats_random_on_zdt1(sampler, options, trials):
    seeds = range(3)
    assert mean_hypervolume(sampler, options, trials, seeds) > mean_hypervolume(
        "random", {}, trials, seeds
    )


@pytest.mark.parametrize("sampler", ["tpe", "gp", "nsga2"])
def test_constraints_steer_the_samplers_to_feasible_points(sampler):
    def objective(trial: hpo.Trial) -> tuple[float, float]:
        x, y = trial.params["x"], trial.params["y"]
        trial.set_constraints([0.6 - x])  # feasible only for x >= 0.6
        return x + y, 1.0 - x + y

    options = {"nsga2": {"population_size": 8}, "gp": {"n_candidates": 256}}.get(sampler, {})
    study = hpo.create_study(
        space=SPACE,
        directions=["minimize", "minimize"],
        sampler=sampler,
        sampler_options=options,
        seed=0,
    )
    study.optimize(objective, n_trials=40)
    early = np.mean([t.feasible for t in study.trials[:10]])
    late = np.mean([t.feasible for t in study.trials[-15:]])
    assert late > max(early, 0.6)
    assert all(t.feasible for t in study.best_trials)


def test_hypervolume_history_matches_recomputing_after_each_trial():
    from hpo.pareto import hypervolume_history, losses
    from hpo.records import FrozenTrial

    rng = np.random.default_rng(5)
    for k in (2, 3):
        directions = [Direction.MINIMIZE, Direction.MAXIMIZE, Direction.MINIMIZE][:k]
        trials = [
            FrozenTrial(
                trial_id=i + 1,
                number=i,
                state=TrialState.FAIL if i % 7 == 3 else TrialState.COMPLETE,
                params={},
                value=None,
                objective_values=list(rng.integers(0, 5, size=k).astype(float)),  # ties
                constraints=[1.0] if i % 5 == 4 else None,
            )
            for i in range(40)
        ]
        reference = np.array([6.0, 1.0, 6.0][:k])  # (losses: the maximized one is -value)
        expected = []
        for i in range(len(trials)):
            done = [t for t in trials[: i + 1] if t.state == TrialState.COMPLETE and t.feasible]
            expected.append(hypervolume(losses(done, directions), reference) if done else 0.0)
        assert hypervolume_history(trials, directions, reference).tolist() == pytest.approx(
            expected
        )
