"""The GP sampler: kernel gradients, posterior, log-EI, features, and that it optimizes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

import hpo
from hpo.samplers import make_sampler
from hpo.samplers.gp import Features, GaussianProcess, _neg_log_posterior, _warp
from hpo.samplers.logei import log_ei, log_h, log_h_slope
from hpo.space import Space

RNG = np.random.default_rng(0)
X = RNG.random((20, 3))
Y = np.sin(4 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2]
Y_STD = (Y - Y.mean()) / Y.std()


def test_log_posterior_gradient_matches_finite_differences():
    theta = np.array([0.3, -0.5, 1.0, 0.2, -3.0])
    value, gradient = _neg_log_posterior(theta, X, Y_STD)
    numeric = optimize.approx_fprime(theta, lambda t: _neg_log_posterior(t, X, Y_STD)[0], 1e-6)
    assert np.allclose(gradient, numeric, rtol=1e-4, atol=1e-4)
    assert np.isfinite(value)


def test_posterior_interpolates_noiseless_data_and_knows_what_it_does_not_know():
    gp = GaussianProcess.with_params(X, Y_STD, np.array([1.0, 1.0, 1.0, 0.0, np.log(1e-6)]))
    mean, var = gp.predict(X)
    assert np.allclose(mean, Y_STD, atol=1e-3)
    assert var.max() < 1e-3
    far = np.full((1, 3), 5.0)  # far from every training point
    assert gp.predict(far)[1][0] == pytest.approx(gp.scale, rel=1e-3)


def test_posterior_gradients_match_finite_differences():
    gp = GaussianProcess.fit(X, Y_STD, np.random.default_rng(1))
    z = RNG.random((4, 3))
    mean, var, d_mean, d_var = gp.predict_with_gradient(z)
    assert np.allclose(mean, gp.predict(z)[0]) and np.allclose(var, gp.predict(z)[1])
    for i in range(4):
        numeric_mean = optimize.approx_fprime(z[i], lambda v: gp.predict(v[None])[0][0], 1e-7)
        numeric_var = optimize.approx_fprime(z[i], lambda v: gp.predict(v[None])[1][0], 1e-7)
        assert np.allclose(d_mean[i], numeric_mean, atol=1e-5)
        assert np.allclose(d_var[i], numeric_var, atol=1e-5)


def test_fitting_finds_the_relevant_dimensions():
    x = RNG.random((40, 3))
    y = np.sin(6 * x[:, 0])  # only the first coordinate matters
    gp = GaussianProcess.fit(x, (y - y.mean()) / y.std(), np.random.default_rng(2))
    lam = np.exp(gp.log_lambda)
    assert lam[0] > 10 * lam[1] and lam[0] > 10 * lam[2]


def test_log_h_matches_the_direct_formula_and_stays_finite():
    z = np.linspace(-5, 5, 41)
    direct = np.log(stats.norm.pdf(z) + z * stats.norm.cdf(z))
    assert np.allclose(log_h(z), direct, rtol=1e-9)
    tail = np.array([-40.0, -1e3, -1e9])  # where the direct formula gives log(0)
    assert np.all(np.isfinite(log_h(tail))) and np.all(np.diff(log_h(tail)) < 0)
    both = np.array([-1e9, -50.0, -3.0, -1.0, 0.0, 2.0])
    numeric = (log_h(both + 1e-6) - log_h(both - 1e-6)) / 2e-6
    assert np.allclose(log_h_slope(both[1:]), numeric[1:], rtol=1e-4)
    assert log_h_slope(both[:1])[0] == pytest.approx(1e9)  # far tail: -z


def test_expected_improvement_is_positive_and_grows_with_uncertainty():
    mean = np.array([0.0, 0.0, 2.0, 30.0])
    std = np.array([1.0, 2.0, 1.0, 1.0])
    values = log_ei(mean, std, best=0.0)
    assert np.all(np.isfinite(values))  # EI > 0 everywhere: its log is finite
    assert values[1] > values[0] > values[2] > values[3]


def test_warp_keeps_the_order_and_tames_the_tail():
    loss = np.array([0.1, 0.2, 0.3, 0.5, 1.0, 400.0])
    warped = _warp(loss)
    assert np.all(np.diff(warped) > 0)
    assert warped.mean() == pytest.approx(0.0, abs=1e-9) and warped.std() == pytest.approx(1.0)
    standardized = (loss - loss.mean()) / loss.std()
    assert warped[-1] < standardized[-1]  # the outlier is pulled in


def test_features_one_hot_and_inactive_values():
    space = Space.from_spec(
        [
            {"name": "x", "type": "float", "low": 0.0, "high": 1.0},
            {
                "name": "b",
                "type": "branch",
                "choices": {
                    "p": [{"name": "y", "type": "float", "low": 0.0, "high": 1.0}],
                    "q": [{"name": "c", "type": "categorical", "choices": ["u", "v", "w"]}],
                },
            },
        ]
    )
    features = Features.of_space(space)
    assert features.size == 1 + 2 + 1 + 3
    u = space.encode_many([{"x": 0.25, "b": "p", "y": 0.75}, {"x": 1.0, "b": "q", "c": "w"}])
    f = features(u)
    assert np.allclose(f[0], [0.25, 1, 0, 0.75, 0, 0, 0])  # c inactive: all zero
    assert np.allclose(f[1], [1.0, 0, 1, 0.5, 0, 0, 1])  # y inactive: 0.5
    assert list(np.flatnonzero(features.free_mask(u[0]))) == [0, 3]


def test_gp_optimizes_branin_far_better_than_random():
    regrets = {}
    for sampler in ("gp", "random"):
        study = hpo.create_study(objective="branin", sampler=sampler, seed=0, budget=25)
        study.optimize()
        regrets[sampler] = study.best_value - 0.397887
    assert regrets["gp"] < 0.05 < regrets["random"]


def test_a_running_trial_is_not_proposed_again():
    space = Space.from_spec([{"name": "x", "type": "float", "low": 0.0, "high": 1.0}])
    study = hpo.create_study(space=space.to_spec(), seed=0)
    study.optimize(lambda t: (t.params["x"] - 0.3) ** 2, n_trials=12)
    sampler = make_sampler("gp", {"n_startup": 5})
    first = sampler.ask(space, study.trials, np.random.default_rng(0))["x"]
    study.enqueue({"x": first})  # as if a worker were evaluating it now
    second = sampler.ask(space, study.trials, np.random.default_rng(0))["x"]
    assert abs(second - first) > 1e-3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_startup": 0}, "n_startup must be an integer >= 1"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"n_refine": 0}, "n_refine"),
        ({"constant_liar": 1}, "constant_liar must be true or false"),
        ({"n_startups": 3}, "did you mean 'n_startup'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(hpo.SamplerError, match=message):
        make_sampler("gp", options)
