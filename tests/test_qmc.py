"""Sobol and Halton samplers: the sequence, its continuation on resume, the warning."""

from __future__ import annotations

import numpy as np
import pytest

import hpo
from hpo.samplers import make_sampler
from hpo.samplers.qmc import WELL_HANDLED_DIMS

LINE = [{"name": "x", "type": "float", "low": 0.0, "high": 1.0}]


def xs(study: hpo.Study) -> list[float]:
    return [t.params["x"] for t in study.trials]


@pytest.mark.parametrize("sampler", ["sobol", "halton"])
def test_points_are_balanced(sampler):
    """The first 2^k (Sobol) or any n (Halton, base 2) points fill n equal bins once each."""
    study = hpo.create_study(space=LINE, sampler=sampler, seed=0)
    study.optimize(lambda t: t.params["x"], n_trials=16)
    bins = np.floor(np.array(xs(study)) * 16).astype(int)
    assert sorted(bins) == list(range(16))


def test_sobol_is_more_even_than_random():
    """Discrepancy of 64 points in 3-D: scrambled Sobol below random (scipy.stats.qmc)."""
    from scipy.stats import qmc

    space = [{"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0} for i in range(3)]
    scores = {}
    for sampler in ("sobol", "random"):
        study = hpo.create_study(space=space, sampler=sampler, seed=1)
        study.optimize(lambda t: 0.0, n_trials=64)
        points = np.array([[t.params[f"x{i}"] for i in range(3)] for t in study.trials])
        scores[sampler] = qmc.discrepancy(points)
    assert scores["sobol"] < scores["random"] / 3


@pytest.mark.parametrize("sampler", ["sobol", "halton"])
def test_a_resumed_study_continues_the_sequence(sampler, tmp_path):
    whole = hpo.create_study("a", str(tmp_path / "a.db"), LINE, sampler, seed=2)
    whole.optimize(lambda t: 0.0, n_trials=12)
    first = hpo.create_study("b", str(tmp_path / "b.db"), LINE, sampler, seed=2)
    first.optimize(lambda t: 0.0, n_trials=5)
    hpo.load_study("b", str(tmp_path / "b.db")).optimize(lambda t: 0.0, n_trials=7)
    assert xs(first) == xs(whole)
    assert len(set(xs(whole))) == 12


def test_enqueued_trials_do_not_shift_the_sequence():
    plain = hpo.create_study(space=LINE, sampler="sobol", seed=4)
    plain.optimize(lambda t: 0.0, n_trials=4)
    mixed = hpo.create_study(space=LINE, sampler="sobol", seed=4)
    mixed.enqueue({"x": 0.123})
    mixed.optimize(lambda t: 0.0, n_trials=5)
    assert xs(mixed)[1:] == xs(plain)


def test_the_seed_sets_the_scramble():
    a = hpo.create_study(space=LINE, sampler="sobol", seed=1)
    b = hpo.create_study(space=LINE, sampler="sobol", seed=2)
    for study in (a, b):
        study.optimize(lambda t: 0.0, n_trials=4)
    assert xs(a) != xs(b)


@pytest.mark.parametrize("sampler", ["sobol", "halton"])
def test_too_many_dimensions_warn(sampler):
    dims = WELL_HANDLED_DIMS[sampler] + 7  # a size no other test warned about
    space = hpo.Space.from_spec(
        [{"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0} for i in range(dims)]
    )
    with pytest.warns(UserWarning, match="does little better than random"):
        make_sampler(sampler).check(space)


def test_bad_option():
    with pytest.raises(hpo.SamplerError, match="scramble must be true or false"):
        make_sampler("sobol", {"scramble": "yes"})
