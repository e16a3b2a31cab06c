"""Losses: the value to report and the gradient with respect to the output layer's input.

Each loss takes the output layer's pre-activation z (n, k) and the targets,
and returns (mean loss, dL/dz). The output activation is part of the loss,
so the pairings that have a simple, stable gradient stay fused:

- ``cross_entropy``: softmax + categorical cross-entropy; dL/dz = (p - onehot) / n,
  with log p computed as z - logsumexp(z) so it never takes log(0);
- ``binary_cross_entropy``: sigmoid + binary cross-entropy on (n, 1) outputs,
  log sigmoid(z) = -softplus(-z); dL/dz = (sigmoid(z) - y) / n;
- ``mse``: identity output, mean over samples of the squared error summed over
  outputs (halved); dL/dz = (z - y) / n;
- ``sigmoid_mse``: the same squared error of a sigmoid output s = sigmoid(z),
  for targets scaled into [0, 1] (the Boston article's network);
  dL/dz = (s - y) s (1 - s) / n.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.activations import identity, sigmoid, softmax

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """z (n, k) logits, labels (n,) integers in [0, k). Works in place on z."""
    n = len(z)
    rows = np.arange(n)
    z -= z.max(axis=1, keepdims=True)
    picked = z[rows, labels]  # (n,) shifted logits of the true classes
    np.exp(z, out=z)
    total = z.sum(axis=1)  # (n,)
    loss = float(np.mean(np.log(total) - picked))
    z /= total[:, None]  # softmax
    z[rows, labels] -= 1.0
    z /= n
    return loss, z


def binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """z (n, 1) logits, y (n,) or (n, 1) in {0, 1}."""
    y = y.reshape(z.shape)
    # -[y log s + (1 - y) log(1 - s)] = softplus(z) - y z, stable for any z
    loss = float(np.mean(np.logaddexp(0, z) - y * z))
    grad = sigmoid(z.copy())
    grad -= y
    grad /= len(z)
    return loss, grad


def mse(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """z (n, k) outputs, y (n,) or (n, k): 1/2 mean of the squared error."""
    grad = np.subtract(z, y.reshape(z.shape), dtype=z.dtype)  # float32 even if y is float64
    loss = float(0.5 * np.mean(np.sum(grad * grad, axis=1)))
    grad /= len(z)
    return loss, grad


def sigmoid_mse(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """z (n, k) pre-activations of sigmoid outputs, y (n,) or (n, k) in [0, 1]. In place on z."""
    s = sigmoid(z)  # (n, k), in place
    error = np.subtract(s, y.reshape(s.shape), dtype=s.dtype)  # (n, k)
    loss = float(0.5 * np.mean(np.sum(error * error, axis=1)))
    error *= s
    error *= 1.0 - s
    error /= len(z)
    return loss, error


LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "mse": mse,
    "sigmoid_mse": sigmoid_mse,
}
OUTPUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cross_entropy": softmax,
    "binary_cross_entropy": sigmoid,
    "mse": identity,
    "sigmoid_mse": sigmoid,
}  # the output activation each loss implies, for predictions
