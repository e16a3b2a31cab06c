"""TPE: its Parzen estimators are densities, its split and weights, and it learns."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

import hpo
from hpo.samplers import make_sampler
from hpo.samplers.parzen import Parzen, _bandwidths
from hpo.samplers.tpe import _improvement_weights

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 40])
def test_numeric_density_integrates_to_one(n):
    x = RNG.random((n, 1))
    model = Parzen.fit(x, np.ones(n), [0])
    total, _ = integrate.quad(
        lambda v: np.exp(model.log_pdf(np.array([[v]])))[0], 0, 1, limit=200, points=list(x[:, 0])
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def test_categorical_probabilities_sum_to_one():
    x = (np.array([[0], [0], [2], [3]]) + 0.5) / 4
    model = Parzen.fit(x, np.ones(4), [4])
    grid = (np.arange(4)[:, None] + 0.5) / 4
    probs = np.exp(model.log_pdf(grid))
    assert probs.sum() == pytest.approx(1.0)
    assert probs[0] > probs[2] > probs[1]  # observed twice > once > never


def test_joint_density_of_mixed_coordinates_integrates_to_one():
    x = np.column_stack([RNG.random(6), (RNG.integers(0, 3, 6) + 0.5) / 3])
    model = Parzen.fit(x, np.ones(6), [0, 3])
    total = sum(
        integrate.quad(
            lambda v, c=c: np.exp(model.log_pdf(np.array([[v, c]])))[0], 0, 1, limit=200
        )[0]
        for c in (np.arange(3) + 0.5) / 3
    )
    assert total == pytest.approx(1.0, abs=1e-6)


def test_samples_follow_the_density():
    model = Parzen.fit(np.array([[0.2], [0.25], [0.8]]), np.ones(3), [0])
    samples = model.sample(np.random.default_rng(1), 20000)
    assert samples.min() >= 0 and samples.max() <= 1
    counts, edges = np.histogram(samples, bins=10, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    expected = np.exp(model.log_pdf(centres[:, None])) * 0.1 * 20000
    assert np.allclose(counts, expected, rtol=0.15, atol=60)


def test_bandwidths_adapt_and_are_clipped():
    x = np.array([[0.10], [0.12], [0.50], [0.90]])
    sigma = _bandwidths(x, 0.05)[:, 0]
    assert sigma[-1] == 1.0  # the prior kernel
    assert sigma[1] < sigma[2]  # crowded observations get narrow kernels
    assert sigma.min() == pytest.approx(0.05)  # clipped, not collapsed onto the point
    assert Parzen.fit(x, np.ones(4), [0]).sigma.min() == pytest.approx(1 / 5)  # magic clip


def test_good_trials_weigh_by_their_improvement():
    loss = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    weights = _improvement_weights(loss, good=np.array([1, 2]), bad=np.array([0, 3, 4]))
    assert weights == pytest.approx([4 / 3, 2 / 3])  # gains 2 and 1 over 3.0, mean 1
    ties = _improvement_weights(np.ones(4), np.array([0, 1]), np.array([2, 3]))
    assert np.array_equal(ties, np.ones(2))


def test_grid_coordinates_are_scored_by_mass_and_drawn_on_the_grid():
    space = hpo.Space.from_spec([{"name": "n", "type": "int", "low": 1, "high": 4}])
    grid = space.params[0]
    x = np.array([[grid.encode(2)], [grid.encode(3)]])
    model = Parzen.fit(x, np.ones(2), [0], grids=[grid])
    values = np.array([[grid.encode(v)] for v in (1, 2, 3, 4)])
    assert np.exp(model.log_pdf(values)).sum() == pytest.approx(1.0)  # masses of the 4 values
    draws = model.sample(np.random.default_rng(0), 200)[:, 0]
    assert set(np.round(draws, 9)) <= set(np.round(values[:, 0], 9))


def _proposals(sampler_options: dict, seed: int, trials: int = 40) -> list[float]:
    space = [{"name": "x", "type": "float", "low": -5.0, "high": 5.0}]
    study = hpo.create_study(space=space, sampler="tpe", sampler_options=sampler_options, seed=seed)
    study.optimize(lambda t: (t.params["x"] - 1.5) ** 2, n_trials=trials)
    return [t.params["x"] for t in study.trials]


def test_tpe_concentrates_near_the_optimum():
    runs = [_proposals({}, seed) for seed in range(5)]
    late = [abs(x - 1.5) for xs in runs for x in xs[-15:]]
    assert np.median(late) < 1.8  # uniform on [-5, 5]: median distance 2.9
    assert np.mean([min(abs(x - 1.5) for x in xs) for xs in runs]) < 0.1


def test_running_trials_push_proposals_away():
    space = hpo.Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
    study = hpo.create_study(space=space.to_spec(), seed=0)
    study.optimize(lambda t: abs(t.params["x"] - 0.3), n_trials=30)
    for _ in range(8):
        study.enqueue({"x": 0.3})  # queued: as good as running, for the liar
    trials = study.trials
    distances = {}
    for liar in (True, False):
        sampler = make_sampler("tpe", {"constant_liar": liar})
        picks = [sampler.ask(space, trials, np.random.default_rng(i))["x"] for i in range(20)]
        distances[liar] = np.mean([abs(x - 0.3) for x in picks])
    assert distances[True] > distances[False]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gamma": 0}, "gamma must be a number in"),
        ({"gamma": 1.0}, "gamma must be a number in"),
        ({"n_startup": 0}, "n_startup must be an integer >= 1"),
        ({"n_ei_candidates": 0}, "n_ei_candidates must be"),
        ({"multivariate": "yes"}, "multivariate must be true or false"),
        ({"prior_weight": -1}, "prior_weight"),
        ({"max_good": 0}, "max_good"),
        ({"startup": "halton"}, "startup must be one of sobol, random"),
        ({"gama": 0.2}, "did you mean 'gamma'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(hpo.SamplerError, match=message):
        make_sampler("tpe", options)


def test_the_article_settings_from_a_study_file(tmp_path):
    from hpo.studyfile import load_study_file

    path = tmp_path / "s.toml"
    path.write_text(
        'objective = "mixed_nn"\ntrials = 25\n[sampler]\nname = "tpe"\n'
        "gamma = 0.2\nn_startup = 20\nn_ei_candidates = 1000\n"
    )
    study = hpo.run(path, storage=str(tmp_path / "hpo.db"))
    assert study.info.sampler_options == {"gamma": 0.2, "n_startup": 20, "n_ei_candidates": 1000}
    assert study.sampler.n_ei_candidates == 1000 and len(study.trials) == 25
    assert load_study_file(path).sampler == "tpe"
