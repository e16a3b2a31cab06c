"""Random streams: derived in one place, independent by purpose, reproducible by seed."""

from __future__ import annotations

import numpy as np
import pytest

import hpo
from hpo.records import TrialState
from hpo.streams import Purpose, stream

UNIT_SQUARE = [
    {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
    {"name": "y", "type": "float", "low": 0.0, "high": 1.0},
]


def objective_draws(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) sampled points and (n, 2) first uniforms the objective drew in each trial."""
    draws: list[list[float]] = []

    def objective(trial: hpo.Trial) -> float:
        draws.append(list(trial.rng.random(2)))
        return trial.params["x"]

    study = hpo.create_study(space=UNIT_SQUARE, sampler="random", seed=seed)
    study.optimize(objective, n_trials=n)
    points = np.array([[t.params["x"], t.params["y"]] for t in study.trials])
    return points, np.array(draws)


def test_the_objective_does_not_draw_the_samplers_numbers():
    """Before, trial.study.seed and trial.number seeded both: the objective's first two
    uniforms were exactly the trial's x and y, so evaluation noise followed the point."""
    points, draws = objective_draws(seed=7)
    assert not np.any(np.isclose(points, draws))
    for column in range(2):  # 120 independent pairs: |r| beyond 0.3 is a 3.3-sigma event
        r = np.corrcoef(points[:, column], draws[:, column])[0, 1]
        assert abs(r) < 0.3, r


def test_the_objectives_stream_is_reproducible_from_the_seed():
    points, draws = objective_draws(seed=3, n=10)
    again_points, again = objective_draws(seed=3, n=10)
    other_points, other = objective_draws(seed=4, n=10)
    assert np.array_equal(points, again_points) and np.array_equal(draws, again)
    assert not np.array_equal(draws, other) and not np.array_equal(points, other_points)
    assert len({tuple(row) for row in draws}) == 10  # each trial its own stream


def test_trial_rng_continues_its_stream_within_a_trial():
    seen: list[float] = []

    def objective(trial: hpo.Trial) -> float:
        seen.extend([trial.rng.random(), trial.rng.random()])
        return 0.0

    hpo.create_study(space=UNIT_SQUARE, seed=1).optimize(objective, n_trials=1)
    assert seen[0] != seen[1]


def test_a_retried_trial_draws_what_its_original_drew(db_path):
    """An interrupted trial runs again with the same point and the same randomness."""
    study = hpo.create_study("retry", str(db_path), UNIT_SQUARE, seed=5, budget=2)
    first: list[float] = []

    def interrupted(trial: hpo.Trial) -> float:
        first.append(trial.rng.random())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted, n_trials=1)
    retried: list[float] = []

    def objective(trial: hpo.Trial) -> float:
        retried.append(trial.rng.random())
        return 0.0

    study.optimize(objective, n_trials=1)
    retry = study.trials[1]
    assert retry.system_attrs["retry_of"] == 0 and retry.state == TrialState.COMPLETE
    assert retried == first


def test_purposes_and_keys_give_different_streams():
    firsts = {
        (purpose, key): stream(11, purpose, key).random()
        for purpose in Purpose
        for key in (0, 1, (1 << 32) + 1)
    }
    assert len(set(firsts.values())) == len(firsts)
    assert stream(11, Purpose.OBJECTIVE, 2).random() == stream(11, Purpose.OBJECTIVE, 2).random()
