"""Levenberg–Marquardt for small networks with one output and a squared-error loss.

With residuals r = f(X; θ) - y (n,) and their Jacobian J = ∂r/∂θ (n, P), one
step solves the damped Gauss–Newton system (Levenberg, 1944; Marquardt,
1963; for networks, Hagan & Menhaj, 1994, "Training feedforward networks
with the Marquardt algorithm", eq. 12)

    (JᵀJ + μ I) Δ = Jᵀ r,   θ ← θ - Δ

How μ moves is the step rule (`RULES`):

- "retry" (Hagan & Menhaj, section III): keep Δ only if the loss falls, then
  μ ← μ / factor (towards Gauss–Newton); otherwise μ ← μ · factor (towards
  small gradient steps) and try again, up to `max_tries` times.
- "neupy" (the source article's, NeuPy 0.8's `LevenbergMarquardt`, defaults
  μ 0.01 and factor 1.2): one step per epoch, always taken; before it,
  μ ← μ · factor if the previous step raised the training loss, else
  μ ← μ / factor (the first step too). NeuPy's residuals are the squared
  errors e = r² (n,), whose Jacobian is 2 r ⊙ J: its system is
  (J_eᵀJ_e + μ I) Δ = J_eᵀ e, Gauss–Newton on Σ r⁴ rather than Σ r². Kept
  as it is, so that the article's protocol can be measured as it ran.

J comes from backpropagation run per sample: the network's output is a
scalar, so each layer's rows are outer products of its input and its
back-propagated sensitivity. The output layer is linear (loss "mse") or a
sigmoid (loss "sigmoid_mse", the article's); `OUTPUTS` maps each loss to
its output activation.

Memory grows as n · P (430 samples x 751 weights for the Boston network:
2.6 MB), so this is for small networks; larger ones are refused.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.activations import ACTIVATIONS, DERIVATIVES
from models.mlp import MLP

MAX_JACOBIAN_ENTRIES = 50_000_000  # 400 MB of float64
MU_MIN = 1e-12
RULES = ("retry", "neupy")
OUTPUTS = {"mse": "identity", "sigmoid_mse": "sigmoid"}  # losses LM trains: output activation


class LMError(ValueError):
    """Levenberg–Marquardt asked for with settings or a network it cannot handle."""


class LevenbergMarquardt:
    """Full-batch Levenberg–Marquardt. mu: initial damping; factor: its update; rule: how."""

    def __init__(
        self,
        mu: float = 1.0,
        factor: float = 10.0,
        max_tries: int = 10,
        mu_max: float = 1e10,
        rule: str = "retry",
    ) -> None:
        if not (isinstance(mu, int | float) and mu > 0):
            raise LMError(f"mu must be a positive number, got {mu!r}")
        if not (isinstance(factor, int | float) and factor > 1):
            raise LMError(f"factor must be a number > 1, got {factor!r}")
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise LMError(f"max_tries must be an integer >= 1, got {max_tries!r}")
        if not (isinstance(mu_max, int | float) and mu_max >= mu):
            raise LMError(f"mu_max must be a number >= mu, got {mu_max!r}")
        if rule not in RULES:
            raise LMError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
        self.mu, self.factor, self.max_tries = float(mu), float(factor), max_tries
        self.mu_max, self.rule = float(mu_max), rule
        self._last_loss: float | None = None  # "neupy": the loss before the previous step

    def step(self, net: MLP, x: np.ndarray, y: np.ndarray) -> float:
        """One epoch's step by the rule; the training loss after it."""
        _check_network(net, len(x))
        if self.rule == "neupy":
            return self._neupy_step(net, x, y)
        return self._retry_step(net, x, y)

    def _retry_step(self, net: MLP, x: np.ndarray, y: np.ndarray) -> float:
        """One accepted step, or up to max_tries refused ones (the weights then stay)."""
        r, jac = residuals_and_jacobian(net, x, y)  # (n,), (n, P) in float64
        loss = net.loss(x, y)  # the same (float32) computation as each try's, to compare
        delta = damped_steps(jac, r)
        before = net.state()
        for _ in range(self.max_tries):
            net.restore(before - delta(self.mu).astype(before.dtype))
            trial = net.loss(x, y)
            if np.isfinite(trial) and trial < loss:
                self.mu = max(self.mu / self.factor, MU_MIN)
                return trial
            self.mu = min(self.mu * self.factor, self.mu_max)
        net.restore(before)
        return loss

    def _neupy_step(self, net: MLP, x: np.ndarray, y: np.ndarray) -> float:
        """μ judged on the last step's effect on the training loss; the step always taken."""
        loss = net.loss(x, y)
        raised = self._last_loss is not None and loss > self._last_loss
        self.mu = min(self.mu * self.factor, self.mu_max) if raised else self.mu / self.factor
        self.mu = max(self.mu, MU_MIN)
        self._last_loss = loss
        r, jac = residuals_and_jacobian(net, x, y)  # (n,), (n, P)
        e, jac_e = r * r, 2.0 * r[:, None] * jac  # NeuPy's residuals: squared errors
        before = net.state()
        net.restore(before - damped_steps(jac_e, e)(self.mu).astype(before.dtype))
        return net.loss(x, y)


def residuals_and_jacobian(net: MLP, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r = f(x) - y (n,) and J = ∂r/∂θ (n, P), columns in the order of net.flat_params."""
    acts = [x.astype(np.float64)]  # a_0 .. a_{L-1}: each layer's input
    zs = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = acts[-1] @ w.astype(np.float64) + b
        zs.append(z)
        if i < len(net.weights) - 1:
            acts.append(_activate(net, i, z.copy()))
    output = OUTPUTS[net.loss_name]
    f = ACTIVATIONS[output](zs[-1].copy())  # (n, 1)
    r = f[:, 0] - y.reshape(-1)
    n = len(x)
    blocks: list[np.ndarray] = [np.empty(0)] * (2 * len(net.weights))
    slope_blocks: list[np.ndarray] = []
    delta = np.ones((n, 1))  # ∂f/∂z_L for the single output: f'(z_L)
    DERIVATIVES[output](f, delta)
    for i in range(len(net.weights) - 1, -1, -1):
        blocks[2 * i] = (acts[i][:, :, None] * delta[:, None, :]).reshape(n, -1)  # ∂f/∂W_i
        blocks[2 * i + 1] = delta  # ∂f/∂b_i
        if i == 0:
            break
        delta = delta @ net.weights[i].T.astype(np.float64)
        if net.activation == "prelu":
            z = zs[i - 1]
            slope_blocks.insert(0, np.where(z <= 0, delta * z, 0.0))
            delta = delta * np.where(z <= 0, net.slopes[i - 1], 1.0)
        else:
            DERIVATIVES[net.activation](acts[i], delta)
    return r, np.hstack(blocks + slope_blocks)


def _activate(net: MLP, i: int, z: np.ndarray) -> np.ndarray:
    if net.activation == "prelu":
        return z * np.where(z > 0, 1.0, net.slopes[i])
    return ACTIVATIONS[net.activation](z)


def damped_steps(jac: np.ndarray, r: np.ndarray) -> Callable[[float], np.ndarray]:
    """μ -> Δ (P,) solving (JᵀJ + μI) Δ = Jᵀr for J (n, P), r (n,), through the smaller
    Gram matrix: with fewer samples than parameters, Δ = Jᵀ (JJᵀ + μI)⁻¹ r, since
    (JᵀJ + μI) Jᵀ = Jᵀ (JJᵀ + μI). For the Boston network (430 x 751) that is a 430-row
    Cholesky factorization per try instead of a 751-row one, about 5 times fewer flops.
    """
    n, p = jac.shape
    if n < p:
        gram = jac @ jac.T  # (n, n)
        return lambda mu: jac.T @ _solve(gram, mu, r)
    gram, jtr = jac.T @ jac, jac.T @ r  # (P, P), (P,)
    return lambda mu: _solve(gram, mu, jtr)


def _solve(gram: np.ndarray, mu: float, b: np.ndarray) -> np.ndarray:
    """x from (G + μI) x = b: positive definite for μ > 0; least squares if rounding says not.

    NumPy's LU rather than SciPy's Cholesky: SciPy brings its own OpenBLAS, whose threads
    and NumPy's then fight for the cores (docs/networks.md, "Where the time goes").
    """
    a = gram + mu * np.eye(len(b))
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, b, rcond=None)[0]


def _check_network(net: MLP, n: int) -> None:
    if net.sizes[-1] != 1 or net.loss_name not in OUTPUTS:
        raise LMError(
            "Levenberg-Marquardt needs a network with one output and a squared-error loss "
            f"({', '.join(OUTPUTS)})"
        )
    if net.dropout:
        raise LMError("Levenberg-Marquardt does not train with dropout")
    if n * net.n_params > MAX_JACOBIAN_ENTRIES:
        raise LMError(
            f"the Jacobian would have {n * net.n_params:,} entries; "
            "Levenberg-Marquardt is for small networks and data sets"
        )
