"""First-order optimizers, looked up by name: update parameters in place from gradients.

Each keeps its state (velocities, moment estimates) in arrays shaped like the
parameters and updates in place, so a step allocates nothing. `update` may
use the gradient arrays as scratch space: they hold the next batch's
gradients soon enough, and one array less to stream through memory is a
fifth of a momentum step (the update is memory-bound: NumPy's elementwise
passes run on one core). Arrays stay float32.

- sgd:      p -= η g
- momentum: b = μ b + g;  p -= η b; with Nesterov, p -= η (g + μ b)
            (PyTorch's form; Sutskever et al., 2013, eq. 3-4, with v = -η b)
- rmsprop:  s = ρ s + (1 - ρ) g²;  p -= η g / (√s + ε)   (Tieleman & Hinton, 2012)
- adam:     m = β1 m + (1 - β1) g;  v = β2 v + (1 - β2) g²;
            p -= η_t m / (√v + ε), η_t = η √(1 - β2^t) / (1 - β1^t): the bias
            correction folded into the step (Kingma & Ba, 2015, end of section
            2; TensorFlow's form, whose ε is the textbook ε √(1 - β2^t))

Levenberg–Marquardt, a second-order method for small networks, is in
`models.lm`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np


class OptimizerError(ValueError):
    """An optimizer built with impossible settings."""


class SGD:
    def __init__(self, step: float = 0.01) -> None:
        self.step = _positive(step, "step")

    def update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        for p, g in zip(params, grads, strict=True):
            g *= self.step
            p -= g


class Momentum:
    def __init__(self, step: float = 0.01, momentum: float = 0.9, nesterov: bool = False) -> None:
        self.step = _positive(step, "step")
        self.momentum = _fraction(momentum, "momentum")
        self.nesterov = bool(nesterov)
        self._velocity: list[np.ndarray] = []

    def update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        if not self._velocity:
            self._velocity = [np.zeros_like(p) for p in params]
        mu, eta = self.momentum, self.step
        for p, g, b in zip(params, grads, self._velocity, strict=True):
            b *= mu
            b += g
            if self.nesterov:
                g *= eta  # p -= η g + η μ b, in two subtractions through g's memory
                p -= g
                np.multiply(b, eta * mu, out=g)
            else:
                np.multiply(b, eta, out=g)
            p -= g


class RMSProp:
    def __init__(self, step: float = 0.001, rho: float = 0.9, eps: float = 1e-7) -> None:
        self.step = _positive(step, "step")
        self.rho = _fraction(rho, "rho")
        self.eps = _positive(eps, "eps")
        self._square: list[np.ndarray] = []
        self._scratch: list[np.ndarray] = []

    def update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        if not self._square:
            self._square = [np.zeros_like(p) for p in params]
            self._scratch = [np.empty_like(p) for p in params]
        for p, g, s, t in zip(params, grads, self._square, self._scratch, strict=True):
            s *= self.rho
            np.multiply(g, g, out=t)
            t *= 1.0 - self.rho
            s += t
            np.sqrt(s, out=t)
            t += self.eps
            np.divide(g, t, out=t)
            t *= self.step
            p -= t


class Adam:
    def __init__(
        self, step: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.step = _positive(step, "step")
        self.beta1, self.beta2 = _fraction(beta1, "beta1"), _fraction(beta2, "beta2")
        self.eps = _positive(eps, "eps")
        self._m: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._scratch: list[np.ndarray] = []
        self._t = 0

    def update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        if not self._m:
            self._m = [np.zeros_like(p) for p in params]
            self._v = [np.zeros_like(p) for p in params]
            self._scratch = [np.empty_like(p) for p in params]
        self._t += 1
        b1, b2 = self.beta1, self.beta2
        # the bias corrections folded into the step (Kingma & Ba, 2015, end of section 2)
        step = self.step * np.sqrt(1.0 - b2**self._t) / (1.0 - b1**self._t)
        for p, g, m, v, t in zip(params, grads, self._m, self._v, self._scratch, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            np.multiply(g, g, out=t)
            t *= 1.0 - b2
            v += t
            np.sqrt(v, out=t)
            t += self.eps
            np.divide(m, t, out=t)
            t *= step
            p -= t


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name: str, **options: float) -> SGD | Momentum | RMSProp | Adam:
    if name not in OPTIMIZERS:
        raise OptimizerError(
            f"unknown optimizer {name!r}; expected one of "
            f"{', '.join(OPTIMIZERS)} (or 'lm', for models.lm)"
        )
    try:
        return OPTIMIZERS[name](**options)
    except TypeError as exc:
        raise OptimizerError(f"optimizer {name!r}: {exc}") from None


def _positive(value: float, name: str) -> float:
    if not _real(value) or not 0 < value < math.inf:
        raise OptimizerError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _fraction(value: float, name: str) -> float:
    if not _real(value) or not 0 <= value < 1:
        raise OptimizerError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
