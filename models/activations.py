"""Activations, looked up by name: a forward function and its derivative.

As in scikit-learn's ``neural_network/_base.py``, forward functions work in
place on the pre-activation array, and each derivative multiplies an
incoming gradient in place, reading only the activation's *output* (so
backprop keeps one array per layer, not two). ``prelu`` has a learned slope
and lives in ``models.mlp`` as a layer parameter; ``softmax`` is for
outputs and is fused with the cross-entropy in ``models.losses``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ELU_ALPHA = 1.0


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0, out=z)


def elu(z: np.ndarray) -> np.ndarray:
    # max(z, 0) + alpha (e^min(z, 0) - 1): no boolean indexing, which costs
    # more than the arithmetic on arrays of this size
    negative = np.minimum(z, 0)
    np.expm1(negative, out=negative)
    negative *= ELU_ALPHA
    np.maximum(z, 0, out=z)
    z += negative
    return z


def sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^-z) overflows to a warning for z < -88 in float32; tanh does not
    np.multiply(z, 0.5, out=z)
    np.tanh(z, out=z)
    z += 1
    z *= 0.5
    return z


def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=z)


def identity(z: np.ndarray) -> np.ndarray:
    return z


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def relu_grad(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= a > 0  # a multiply, ~15x faster here than delta[a <= 0] = 0


def elu_grad(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= np.where(a < 0, a + ELU_ALPHA, 1)  # d/dz alpha(e^z - 1) = a + alpha


def sigmoid_grad(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= a
    delta *= 1 - a


def tanh_grad(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= 1 - a * a


def identity_grad(a: np.ndarray, delta: np.ndarray) -> None:
    """Nothing to do: the derivative is 1."""


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": relu,
    "elu": elu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "identity": identity,
    "softmax": softmax,
}
DERIVATIVES: dict[str, Callable[[np.ndarray, np.ndarray], None]] = {
    "relu": relu_grad,
    "elu": elu_grad,
    "sigmoid": sigmoid_grad,
    "tanh": tanh_grad,
    "identity": identity_grad,
}
HIDDEN = ("relu", "prelu", "elu", "sigmoid", "tanh")  # prelu: see models.mlp
