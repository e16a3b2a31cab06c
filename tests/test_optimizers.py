"""First-order optimizers against a convex quadratic and against their update formulas."""

from __future__ import annotations

import numpy as np
import pytest

from models.optimizers import SGD, Adam, Momentum, OptimizerError, RMSProp, make_optimizer


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


class Quadratic:
    """L(p) = ½‖A p - b‖², A (20, 6) with condition number ~10; minimum by lstsq."""

    def __init__(self) -> None:
        q, _ = np.linalg.qr(rng(1).standard_normal((20, 6)))  # orthonormal columns
        self.a = q * np.linspace(1.0, np.sqrt(10.0), 6)  # (20, 6), singular values 1..√10
        self.b = rng(2).standard_normal(20)  # (20,)
        self.best = np.linalg.lstsq(self.a, self.b, rcond=None)[0]  # (6,)
        self.min_loss = self.loss(self.best)

    def loss(self, p: np.ndarray) -> float:
        r = self.a @ p - self.b
        return 0.5 * float(r @ r)

    def grad(self, p: np.ndarray) -> np.ndarray:
        return self.a.T @ (self.a @ p - self.b)


def minimize(optimizer: object, problem: Quadratic, steps: int) -> tuple[np.ndarray, list]:
    """Run `steps` updates from p = 0, as two parameter arrays (float32); p and the losses."""
    params = [np.zeros(4, dtype=np.float32), np.zeros(2, dtype=np.float32)]
    losses = []
    for _ in range(steps):
        p = np.concatenate(params).astype(np.float64)
        losses.append(problem.loss(p))
        g = problem.grad(p).astype(np.float32)
        optimizer.update(params, [g[:4], g[4:]])
    return np.concatenate(params).astype(np.float64), losses


@pytest.mark.parametrize(
    "optimizer",
    [
        SGD(step=0.05),
        Momentum(step=0.01, momentum=0.9),
        Momentum(step=0.01, momentum=0.9, nesterov=True),
        RMSProp(step=0.003),
        Adam(step=0.01),
    ],
    ids=["sgd", "momentum", "nesterov", "rmsprop", "adam"],
)
def test_each_optimizer_minimizes_a_convex_quadratic(optimizer):
    problem = Quadratic()
    p, losses = minimize(optimizer, problem, 400)
    start = losses[0] - problem.min_loss
    assert problem.loss(p) - problem.min_loss < 1e-3 * start
    np.testing.assert_allclose(p, problem.best, atol=0.02)
    assert losses[50] < losses[0]  # it went downhill, not only ended near the bottom


def test_a_too_large_sgd_step_does_not_converge():
    """The quadratic test can fail: past 2 / λ_max (here 0.2) SGD diverges."""
    problem = Quadratic()
    p, _ = minimize(SGD(step=0.25), problem, 100)
    assert not problem.loss(p) < 10 * problem.loss(np.zeros(6))


# -- against the formulas -------------------------------------------------------------


def gradient_sequence(steps: int = 8, size: int = 5) -> list[np.ndarray]:
    return [rng(10 + t).standard_normal(size).astype(np.float32) * 2 for t in range(steps)]


def run(optimizer: object, grads: list[np.ndarray]) -> list[np.ndarray]:
    """The parameters after each step, from p = 1 (the gradients passed as copies)."""
    p = np.ones_like(grads[0])
    trajectory = []
    for g in grads:
        optimizer.update([p], [g.copy()])
        trajectory.append(p.copy())
    return trajectory


def test_sgd_matches_its_formula():
    grads = gradient_sequence()
    p = np.ones(5)
    for g, got in zip(grads, run(SGD(step=0.1), grads), strict=True):
        p = p - 0.1 * g
        np.testing.assert_allclose(got, p, rtol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_pytorchs_formula_step_by_step(nesterov):
    lr, mu = 0.05, 0.9
    grads = gradient_sequence()
    p, buf = np.ones(5), np.zeros(5)
    for g, got in zip(grads, run(Momentum(lr, mu, nesterov=nesterov), grads), strict=True):
        buf = mu * buf + g  # torch.optim.SGD: buf = μ buf + g
        p = p - lr * (g + mu * buf if nesterov else buf)  # nesterov: g + μ buf
        np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


def test_nesterov_differs_from_plain_momentum_and_zero_momentum_is_sgd():
    grads = gradient_sequence()
    plain = run(Momentum(0.05, 0.9), grads)[-1]
    nesterov = run(Momentum(0.05, 0.9, nesterov=True), grads)[-1]
    assert not np.allclose(plain, nesterov, rtol=1e-3)
    sgd = run(SGD(0.05), grads)[-1]
    np.testing.assert_allclose(run(Momentum(0.05, 0.0, nesterov=True), grads)[-1], sgd, rtol=1e-6)
    np.testing.assert_allclose(run(Momentum(0.05, 0.0), grads)[-1], sgd, rtol=1e-6)


def test_nesterov_with_a_tiny_momentum_is_about_sgd():
    grads = gradient_sequence()
    np.testing.assert_allclose(
        run(Momentum(0.05, 1e-39, nesterov=True), grads)[-1], run(SGD(0.05), grads)[-1], rtol=1e-6
    )


def test_rmsprop_matches_its_formula():
    lr, rho, eps = 0.01, 0.9, 1e-7
    grads = gradient_sequence()
    p, s = np.ones(5), np.zeros(5)
    for g, got in zip(grads, run(RMSProp(lr, rho, eps), grads), strict=True):
        s = rho * s + (1 - rho) * g * g
        p = p - lr * g / (np.sqrt(s) + eps)
        np.testing.assert_allclose(got, p, rtol=1e-5)


def test_adam_matches_its_formula():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    grads = gradient_sequence(20)
    p, m, v = np.ones(5), np.zeros(5), np.zeros(5)
    for t, (g, got) in enumerate(
        zip(grads, run(Adam(lr, b1, b2, eps), grads), strict=True), start=1
    ):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)  # Kingma & Ba, Algorithm 1
        np.testing.assert_allclose(got, p, rtol=1e-5)


@pytest.mark.parametrize("scale", [1e-2, 1.0, 1e4])
def test_adams_first_step_has_magnitude_step_whatever_the_gradients_scale(scale):
    r = rng(3)  # |g| in [scale / 2, 3 scale / 2], of either sign: far above eps
    g = (r.choice([-1, 1], 50) * r.uniform(0.5, 1.5, 50) * scale).astype(np.float32)
    p = np.zeros(50, dtype=np.float32)
    Adam(step=0.01).update([p], [g.copy()])
    np.testing.assert_allclose(p, -0.01 * np.sign(g), rtol=1e-3)


def test_state_is_kept_per_parameter_array():
    """Two arrays updated together move as if each were updated alone."""
    grads = gradient_sequence(size=7)
    together = Adam(0.01)
    a, b = np.ones(3, dtype=np.float32), np.ones(4, dtype=np.float32)
    for g in grads:
        together.update([a, b], [g[:3].copy(), g[3:].copy()])
    alone = run(Adam(0.01), [g[:3] for g in grads])[-1]
    np.testing.assert_allclose(a, alone, rtol=1e-6)
    np.testing.assert_allclose(b, run(Adam(0.01), [g[3:] for g in grads])[-1], rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_updates_are_in_place_and_stay_float32(name):
    optimizer = make_optimizer(name)
    p = np.ones(5, dtype=np.float32)
    before = p
    optimizer.update([p], [gradient_sequence(1)[0]])
    assert p is before and p.dtype == np.float32
    assert not np.all(p == 1)


# -- by name, and bad settings --------------------------------------------------------


def test_make_optimizer_by_name_with_options():
    assert isinstance(make_optimizer("sgd"), SGD)
    momentum = make_optimizer("momentum", step=0.1, momentum=0.5, nesterov=True)
    assert isinstance(momentum, Momentum)
    assert (momentum.step, momentum.momentum, momentum.nesterov) == (0.1, 0.5, True)
    rmsprop = make_optimizer("rmsprop", step=0.02, rho=0.8)
    assert isinstance(rmsprop, RMSProp) and (rmsprop.step, rmsprop.rho) == (0.02, 0.8)
    adam = make_optimizer("adam", beta1=0.8)
    assert isinstance(adam, Adam) and adam.beta1 == 0.8 and adam.step == 0.001


def test_make_optimizer_errors():
    with pytest.raises(OptimizerError, match=r"unknown optimizer 'nadam'.*sgd, momentum"):
        make_optimizer("nadam")
    with pytest.raises(OptimizerError, match=r"models\.lm"):
        make_optimizer("lm")
    with pytest.raises(OptimizerError, match=r"optimizer 'sgd'.*momentum"):
        make_optimizer("sgd", momentum=0.9)  # not an option of sgd


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("sgd", {"step": -0.1}, "step must be a positive number"),
        ("sgd", {"step": 0}, "step must be a positive number"),
        ("sgd", {"step": float("nan")}, "step must be a positive number"),
        ("sgd", {"step": "0.1"}, "step must be a positive number"),
        ("sgd", {"step": True}, "step must be a positive number"),
        ("momentum", {"step": -1.0}, "step must be a positive number"),
        ("momentum", {"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ("momentum", {"momentum": 1.5}, r"momentum must be in \[0, 1\)"),
        ("momentum", {"momentum": -0.1}, r"momentum must be in \[0, 1\)"),
        ("rmsprop", {"rho": 1.0}, r"rho must be in \[0, 1\)"),
        ("rmsprop", {"rho": -0.5}, r"rho must be in \[0, 1\)"),
        ("rmsprop", {"eps": 0.0}, "eps must be a positive number"),
        ("adam", {"step": -0.001}, "step must be a positive number"),
        ("adam", {"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),
        ("adam", {"beta2": -0.1}, r"beta2 must be in \[0, 1\)"),
        ("adam", {"eps": -1e-8}, "eps must be a positive number"),
    ],
)
def test_bad_settings_raise_optimizer_error(name, options, message):
    with pytest.raises(OptimizerError, match=message):
        make_optimizer(name, **options)


def test_optimizer_error_is_a_value_error_and_edges_are_accepted():
    assert issubclass(OptimizerError, ValueError)
    assert Momentum(momentum=0.0).momentum == 0.0
    assert RMSProp(rho=0.0).rho == 0.0
    assert SGD(step=1).step == 1.0
