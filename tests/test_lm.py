"""Levenberg–Marquardt: its Jacobian against finite differences, its steps against the
loss they must lower, and the Boston network it was written for."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from models.datasets import load_boston
from models.lm import (
    MAX_JACOBIAN_ENTRIES,
    LevenbergMarquardt,
    LMError,
    damped_steps,
    residuals_and_jacobian,
)
from models.mlp import MLP
from models.training import EarlyStopping, train


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def float64_copy(net: MLP, flat: np.ndarray) -> SimpleNamespace:
    """What residuals_and_jacobian reads of a network, as views of a float64 copy of its
    parameters, so finite differences can perturb them in double precision."""
    views, start = [], 0
    for p in net.params:
        views.append(flat[start : start + p.size].reshape(p.shape))
        start += p.size
    layers = len(net.weights)
    return SimpleNamespace(
        weights=views[0 : 2 * layers : 2],
        biases=views[1 : 2 * layers : 2],
        slopes=views[2 * layers :],
        activation=net.activation,
        loss_name=net.loss_name,
    )


def sine(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(-3, 3, n, dtype=np.float32)[:, None]  # (n, 1)
    return x, np.sin(x[:, 0])


# -- the Jacobian -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activation", "loss"),
    [(a, "mse") for a in ("sigmoid", "prelu", "tanh", "elu", "relu")]
    + [("sigmoid", "sigmoid_mse"), ("prelu", "sigmoid_mse")],
)
def test_jacobian_matches_finite_differences_of_the_residuals(activation, loss):
    net = MLP([3, 5, 4, 1], rng(1), activation=activation, loss=loss)  # two hidden layers
    for b in net.biases:
        b[...] = rng(2).uniform(-0.3, 0.3, b.shape)
    if activation == "prelu":
        net.slopes[0][...] = [0.1, 0.2, 0.3, 0.4, 0.5]  # distinct, so a mix-up shows
    x = rng(3).standard_normal((8, 3)).astype(np.float32)
    y = rng(4).standard_normal(8).astype(np.float32)
    r, jac = residuals_and_jacobian(net, x, y)
    assert r.shape == (8,) and jac.shape == (8, net.n_params)
    # the residuals are the network's own outputs (after its output activation) minus y
    np.testing.assert_allclose(r, net.predict(x)[:, 0] - y, rtol=1e-5, atol=1e-6)

    flat = net.flat_params.astype(np.float64)
    copy, h = float64_copy(net, flat), 1e-6
    numeric = np.empty_like(jac)  # (n, P)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + h
        up, _ = residuals_and_jacobian(copy, x, y)
        flat[j] = old - h
        down, _ = residuals_and_jacobian(copy, x, y)
        flat[j] = old
        numeric[:, j] = (up - down) / (2 * h)
    np.testing.assert_allclose(jac, numeric, rtol=1e-5, atol=1e-7)
    assert np.abs(numeric).max() > (0.1 if loss == "mse" else 0.02)
    if activation == "prelu":  # the slope columns are checked, and are not all zero
        assert np.abs(numeric[:, -9:]).max() > 1e-2


# -- steps --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [12, 80])  # fewer samples than the 41 parameters, and more
def test_damped_steps_solve_the_textbook_system_through_either_gram_matrix(n):
    jac = rng(6).standard_normal((n, 41))  # (n, P)
    r = rng(7).standard_normal(n)
    for mu in (1e-3, 1.0, 100.0):
        expected = np.linalg.solve(jac.T @ jac + mu * np.eye(41), jac.T @ r)
        np.testing.assert_allclose(damped_steps(jac, r)(mu), expected, rtol=1e-8, atol=1e-12)


def test_one_step_with_small_mu_solves_linear_least_squares():
    r = rng(5)
    x = r.standard_normal((40, 3)).astype(np.float32)
    y = (x @ [1.0, -2.0, 0.5] + 0.3 + 0.1 * r.standard_normal(40)).astype(np.float32)
    design = np.hstack([x, np.ones((40, 1))]).astype(np.float64)  # (n, 4)
    solution = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]  # (4,)
    net = MLP([3, 1], rng(1), loss="mse")  # no hidden layer: a linear model
    lm = LevenbergMarquardt(mu=1e-6)
    loss = lm.step(net, x, y)
    np.testing.assert_allclose(net.flat_params, solution, rtol=1e-5, atol=1e-6)
    best = 0.5 * np.mean((design @ solution - y) ** 2)
    assert loss == pytest.approx(best, rel=1e-5)
    assert lm.mu == pytest.approx(1e-7)  # accepted: μ / factor
    # at the minimum nothing lowers the loss: every try is refused, the weights stay
    at_minimum = net.state()
    lm.step(net, x, y)
    np.testing.assert_array_equal(net.flat_params, at_minimum)
    assert lm.mu == pytest.approx(1e-7 * 10.0**10)  # ×factor for each of max_tries
    lm.step(net, x, y)
    assert lm.mu == lm.mu_max  # and no further


def test_lm_fits_a_sine_and_every_accepted_step_lowers_the_loss():
    x, y = sine()
    net = MLP([1, 8, 1], rng(0), activation="sigmoid", loss="mse")
    lm = LevenbergMarquardt(mu=1.0, factor=10.0)
    start = previous = net.loss(x, y)
    rejections = []
    for _ in range(20):
        mu = lm.mu
        before = net.state()
        loss = lm.step(net, x, y)
        assert loss == pytest.approx(net.loss(x, y), rel=1e-5)  # the loss it reports
        # μ ends at μ factor^(k - 1) after k refused tries and an accepted one
        k = np.log10(lm.mu / mu) + 1
        assert k == pytest.approx(round(k), abs=1e-9) and 0 <= round(k) < lm.max_tries
        rejections.append(round(k))
        assert loss < previous  # accepted: the loss fell
        assert not np.array_equal(net.flat_params, before)
        previous = loss
    assert previous < start / 100  # 0.36 -> below 0.004
    assert 0 in rejections and max(rejections) >= 1  # μ went both ways


def test_a_refused_step_leaves_the_weights_and_raises_mu():
    x, y = sine()
    net = MLP([1, 8, 1], rng(0), activation="sigmoid", loss="mse")
    LevenbergMarquardt(mu=1e-3).step(net, x, y)  # from here, μ = 1e-4 overshoots
    state, loss = net.state(), net.loss(x, y)
    probe = LevenbergMarquardt(mu=1e-4)
    probe.step(net, x, y)
    assert probe.mu >= 1e-3  # its first try was refused
    net.restore(state)
    lm = LevenbergMarquardt(mu=1e-4, max_tries=1)
    assert lm.step(net, x, y) == pytest.approx(loss, rel=1e-6)
    np.testing.assert_array_equal(net.flat_params, state)
    assert lm.mu == pytest.approx(1e-3)


def test_lm_in_the_training_loop_never_raises_the_training_loss():
    x, y = sine()
    net = MLP([1, 6, 1], rng(2), activation="tanh", loss="mse")
    history = train(net, x, y, LevenbergMarquardt(), 15, rng())
    losses = history.column("train_loss")
    assert len(losses) == 15
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(losses))
    assert losses[-1] < losses[0] / 10


def test_lm_trains_prelu_slopes_too():
    x, y = sine()
    net = MLP([1, 8, 1], rng(0), activation="prelu", loss="mse")
    start = net.loss(x, y)
    lm = LevenbergMarquardt()
    for _ in range(10):
        lm.step(net, x, y)
    assert net.loss(x, y) < start / 10
    assert not np.allclose(net.slopes[0], 0.25)


# -- the article's rule (NeuPy's) ---------------------------------------------------


def unit_sine(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    x, y = sine(n)
    return x, (y + 1.0) / 2.0  # targets in [0, 1], for a sigmoid output


def test_neupy_rule_solves_the_squared_error_system_with_mu_lowered_first():
    x, y = unit_sine()
    net = MLP([1, 8, 1], rng(0), activation="sigmoid", loss="sigmoid_mse")
    before = net.state().astype(np.float64)
    r, jac = residuals_and_jacobian(net, x, y)  # (n,), (n, P)
    e, jac_e = r**2, 2 * r[:, None] * jac  # NeuPy's residuals: the squared errors
    lm = LevenbergMarquardt(mu=0.01, factor=1.2, rule="neupy")
    loss = lm.step(net, x, y)
    assert lm.mu == pytest.approx(0.01 / 1.2)  # the first step lowers μ, then solves
    system = jac_e.T @ jac_e + lm.mu * np.eye(net.n_params)
    expected = before - np.linalg.solve(system, jac_e.T @ e)
    np.testing.assert_allclose(net.flat_params, expected, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(net.loss(x, y))


def test_neupy_rule_raises_mu_after_a_step_that_raised_the_loss_and_always_steps():
    x, y = unit_sine()
    net = MLP([1, 8, 1], rng(0), activation="sigmoid", loss="sigmoid_mse")
    lm = LevenbergMarquardt(mu=1e-4, factor=1.2, rule="neupy")  # small μ: steps overshoot
    losses, mus, moved = [net.loss(x, y)], [lm.mu], []
    for _ in range(8):
        before = net.state()
        losses.append(lm.step(net, x, y))
        mus.append(lm.mu)
        moved.append(not np.array_equal(net.flat_params, before))
    assert all(moved)  # never refused, never retried
    # before step k, μ went up iff step k - 1 raised the training loss
    for k in range(2, len(mus)):
        up = losses[k - 1] > losses[k - 2]
        assert mus[k] == pytest.approx(mus[k - 1] * (1.2 if up else 1 / 1.2)), k
    assert any(b > a for a, b in itertools.pairwise(losses))  # a raise happened, and stayed


def test_the_article_network_trains_with_the_article_rule():
    x, y = unit_sine()
    net = MLP([1, 8, 1], rng(0), activation="sigmoid", loss="sigmoid_mse")
    history = train(net, x, y, LevenbergMarquardt(0.01, 1.2, rule="neupy"), 30, rng())
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss / 5


# -- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sizes": [1, 4, 2]}, "one output and a squared-error loss"),
        ({"loss": "binary_cross_entropy"}, "one output and a squared-error loss"),
        ({"loss": "cross_entropy"}, "one output and a squared-error loss"),
        ({"dropout": 0.2}, "does not train with dropout"),
    ],
)
def test_networks_lm_cannot_train_are_refused(options, message):
    settings = {"sizes": [1, 4, 1], "loss": "mse", **options}
    net = MLP(settings.pop("sizes"), rng(), **settings)
    x, y = sine(10)
    before = net.state()
    with pytest.raises(LMError, match=message):
        LevenbergMarquardt().step(net, x, y)
    with pytest.raises(LMError, match=message):
        train(net, x, y, LevenbergMarquardt(), 3, rng())
    np.testing.assert_array_equal(net.flat_params, before)


def test_a_too_large_jacobian_is_refused_before_it_is_built():
    net = MLP([1000, 1000, 1], rng(), activation="sigmoid", loss="mse")  # 1,002,001 params
    n = MAX_JACOBIAN_ENTRIES // net.n_params + 1  # just over the limit
    x, y = np.zeros((n, 1000), dtype=np.float32), np.zeros(n, dtype=np.float32)
    with pytest.raises(LMError, match=f"Jacobian would have {n * net.n_params:,} entries"):
        LevenbergMarquardt().step(net, x, y)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mu": 0.0}, "mu must be a positive number"),
        ({"mu": -1.0}, "mu must be a positive number"),
        ({"mu": "1"}, "mu must be a positive number"),
        ({"factor": 1.0}, "factor must be a number > 1"),
        ({"factor": 0.5}, "factor must be a number > 1"),
        ({"rule": "marquardt"}, "unknown rule 'marquardt'; expected one of retry, neupy"),
    ],
)
def test_bad_settings_raise_lm_error(options, message):
    with pytest.raises(LMError, match=message):
        LevenbergMarquardt(**options)
    assert issubclass(LMError, ValueError)


# -- the Boston network -------------------------------------------------------------


def test_boston_13_50_1_sigmoid_with_lm_reaches_a_low_validation_rmsle():
    data = load_boston()  # the default split: 430 training rows, 76 validation rows
    mean, scale = float(data.train.y.mean()), float(data.train.y.std())
    net = MLP([13, 50, 1], rng(0), activation="sigmoid", loss="mse")
    history = train(
        net,
        data.train.x,
        (data.train.y - mean) / scale,
        LevenbergMarquardt(),
        30,
        rng(0),
        valid=(data.valid.x, (data.valid.y - mean) / scale),
        early_stopping=EarlyStopping(patience=10),
    )
    assert len(history.epochs) <= 30
    predicted = net.predict(data.valid.x)[:, 0] * scale + mean  # back in $1000s
    log_error = np.log1p(np.maximum(predicted, 0)) - np.log1p(data.valid.y)
    rmsle = float(np.sqrt(np.mean(log_error**2)))
    assert rmsle < 0.25
    constant = np.log1p(mean) - np.log1p(data.valid.y)  # predicting the mean price
    assert rmsle < 0.6 * np.sqrt(np.mean(constant**2))
