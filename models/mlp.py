"""A feed-forward network of dense layers, trained by backpropagation.

Notation: layer l maps a_{l-1} (n, in_l) to z_l = a_{l-1} W_l + b_l (n, out_l)
and a_l = f(z_l), with dropout on hidden activations while training. The
output layer's activation belongs to the loss (`models.losses`), which hands
back dL/dz_L; backward then runs

    dW_l = a_{l-1}ᵀ δ_l,   db_l = Σ_rows δ_l,   δ_{l-1} = (δ_l W_lᵀ) ⊙ f'(a_{l-1})

and stops before the input layer: nothing needs dL/dx, and that product
would be a quarter of an MNIST epoch's arithmetic.

Everything is float32 and written into arrays kept between batches
(`np.dot(..., out=...)`, in-place activations), so an epoch allocates
almost nothing. Dropout is inverted: kept units are scaled by 1/(1 - p) in
training, and evaluation uses the network as it is.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.activations import ACTIVATIONS, DERIVATIVES, HIDDEN
from models.losses import LOSSES, OUTPUTS

DTYPE = np.float32
PRELU_SLOPE = 0.25  # initial slope of prelu's negative part (He et al., 2015)
INITS = ("he", "glorot")


class NetworkError(ValueError):
    """A network built with impossible settings."""


@dataclass
class _Buffers:
    """Arrays reused from batch to batch of one size (one per hidden layer unless noted)."""

    z: list[np.ndarray] = field(default_factory=list)  # (n, out_l), every layer; activated
    # in place unless prelu, which needs z for its slope's gradient
    prelu: list[np.ndarray] = field(default_factory=list)  # prelu activations
    dropped: list[np.ndarray] = field(default_factory=list)  # activations after dropout
    masks: list[np.ndarray] = field(default_factory=list)  # dropout keep-masks, scaled
    deltas: list[np.ndarray] = field(default_factory=list)  # (n, out_l) gradients
    acts: list[np.ndarray] = field(default_factory=list)  # this batch: f(z_l), pre-dropout
    inputs: list[np.ndarray] = field(default_factory=list)  # this batch: what the next layer reads


class MLP:
    """Dense layers `sizes[0] -> ... -> sizes[-1]` with one hidden activation."""

    def __init__(
        self,
        sizes: Sequence[int],
        rng: np.random.Generator,
        activation: str = "relu",
        loss: str = "cross_entropy",
        dropout: float = 0.0,
        init: str | None = None,
    ) -> None:
        _check(sizes, activation, loss, dropout, init)
        self.sizes, self.activation, self.loss_name = list(sizes), activation, loss
        self.dropout = float(dropout)
        init = init or ("he" if activation in ("relu", "prelu", "elu") else "glorot")
        shapes = [s for m, n in itertools.pairwise(sizes) for s in ((m, n), (n,))]
        shapes += [(n,) for n in sizes[1:-1]] if activation == "prelu" else []
        # All parameters live in one flat array (and their gradients in another),
        # the layers' arrays being views: an optimizer then updates everything
        # with a few BLAS calls instead of a dozen NumPy passes per layer.
        self.flat_params = np.zeros(sum(np.prod(s) for s in shapes), dtype=DTYPE)
        self.flat_grads = np.zeros_like(self.flat_params)
        self.params = _views(self.flat_params, shapes)  # W_1, b_1, ..., then prelu slopes
        self.grads = _views(self.flat_grads, shapes)
        n_layers = len(sizes) - 1
        self.weights = self.params[0 : 2 * n_layers : 2]
        self.biases = self.params[1 : 2 * n_layers : 2]
        self.slopes = self.params[2 * n_layers :]
        for w in self.weights:
            fan_in, fan_out = w.shape
            w[...] = _initial_weights(fan_in, fan_out, init, rng)
        for slope in self.slopes:
            slope[...] = PRELU_SLOPE
        self._buffers: dict[int, _Buffers] = {}

    @property
    def n_params(self) -> int:
        return self.flat_params.size

    # -- forward and backward ---------------------------------------------------------

    def forward(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The output layer's pre-activation z_L (n, k). With rng: training (dropout)."""
        buffers = self._buffers_for(len(x))
        a = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = buffers.z[i]
            np.dot(a, w, out=z)
            z += b
            if i == last:
                return z
            buffers.acts[i] = a = self._activate(i, z, buffers)
            if rng is not None and self.dropout > 0:
                mask = buffers.masks[i]
                np.greater_equal(rng.random(mask.shape, dtype=DTYPE), self.dropout, out=mask)
                mask *= 1.0 / (1.0 - self.dropout)
                a = np.multiply(a, mask, out=buffers.dropped[i])
            buffers.inputs[i] = a
        raise AssertionError("unreachable")

    def backward(self, x: np.ndarray, delta: np.ndarray, training: bool) -> list[np.ndarray]:
        """Gradients of the loss (aligned with `params`) from δ_L = dL/dz_L (n, k)."""
        buffers = self._buffers_for(len(x))
        for i in range(len(self.weights) - 1, -1, -1):
            previous = x if i == 0 else buffers.inputs[i - 1]
            np.dot(previous.T, delta, out=self.grads[2 * i])
            np.sum(delta, axis=0, out=self.grads[2 * i + 1])
            if i == 0:
                break
            below = buffers.deltas[i - 1]
            np.dot(delta, self.weights[i].T, out=below)
            if training and self.dropout > 0:
                below *= buffers.masks[i - 1]
            self._activation_grad(i - 1, buffers, below)
            delta = below
        return self.grads

    def loss_and_grads(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[float, list[np.ndarray]]:
        """One training step's loss (with dropout) and gradients."""
        loss, delta = LOSSES[self.loss_name](self.forward(x, rng), y)
        return loss, self.backward(x, delta, training=True)

    def loss(self, x: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> float:
        """Mean loss over a dataset, without dropout."""
        total = 0.0
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            value, _ = LOSSES[self.loss_name](self.forward(x[part]).copy(), y[part])
            total += value * len(x[part])
        return total / max(len(x), 1)

    def predict(self, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Outputs (n, k): class probabilities, or values for mse."""
        out = OUTPUTS[self.loss_name]
        return np.vstack(
            [out(self.forward(x[s : s + batch_size]).copy()) for s in range(0, len(x), batch_size)]
        )

    # -- state ------------------------------------------------------------------------

    def state(self) -> np.ndarray:
        """A copy of every parameter (to restore the best epoch's weights)."""
        return self.flat_params.copy()

    def restore(self, state: np.ndarray) -> None:
        self.flat_params[...] = state

    # -- internals --------------------------------------------------------------------

    def _activate(self, i: int, z: np.ndarray, buffers: _Buffers) -> np.ndarray:
        if self.activation == "prelu":
            return np.multiply(z, np.where(z > 0, 1, self.slopes[i]), out=buffers.prelu[i])
        return ACTIVATIONS[self.activation](z)  # in place: z is not needed again

    def _activation_grad(self, i: int, buffers: _Buffers, delta: np.ndarray) -> None:
        if self.activation == "prelu":
            z = buffers.z[i]
            negative = z <= 0
            slope_grad = self.grads[2 * len(self.weights) + i]
            np.sum(np.where(negative, delta * z, 0), axis=0, out=slope_grad)
            delta *= np.where(negative, self.slopes[i], 1)
            return
        DERIVATIVES[self.activation](buffers.acts[i], delta)

    def _buffers_for(self, n: int) -> _Buffers:
        buffers = self._buffers.get(n)
        if buffers is None:
            if len(self._buffers) > 4:  # batch sizes come and go (evaluation, last batch)
                self._buffers.clear()
            outs, hidden = self.sizes[1:], self.sizes[1:-1]
            prelu, dropout = self.activation == "prelu", self.dropout > 0
            buffers = self._buffers[n] = _Buffers(
                z=[np.empty((n, k), dtype=DTYPE) for k in outs],
                prelu=[np.empty((n, k), dtype=DTYPE) for k in hidden] if prelu else [],
                dropped=[np.empty((n, k), dtype=DTYPE) for k in hidden] if dropout else [],
                masks=[np.empty((n, k), dtype=DTYPE) for k in hidden] if dropout else [],
                deltas=[np.empty((n, k), dtype=DTYPE) for k in hidden],
                acts=[np.empty(0)] * len(hidden),
                inputs=[np.empty(0)] * len(hidden),
            )
        return buffers


def _views(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Consecutive C-contiguous views of `flat` with these shapes."""
    views, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(flat[start : start + size].reshape(shape))
        start += size
    return views


def _initial_weights(fan_in: int, fan_out: int, init: str, rng: np.random.Generator) -> np.ndarray:
    """He (2015): N(0, 2 / fan_in), for ReLU-like units; Glorot (2010): U(±√(6 / (in + out)))."""
    if init == "he":
        w = rng.standard_normal((fan_in, fan_out), dtype=DTYPE) * np.sqrt(2.0 / fan_in)
    else:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, (fan_in, fan_out))
    return w.astype(DTYPE)


def _check(
    sizes: Sequence[int], activation: str, loss: str, dropout: float, init: str | None
) -> None:
    if len(sizes) < 2:
        raise NetworkError(f"a network needs an input and an output size, got {list(sizes)}")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise NetworkError(f"layer sizes must be positive integers, got {list(sizes)}")
    if activation not in HIDDEN:
        raise NetworkError(
            f"unknown activation {activation!r}; expected one of {', '.join(HIDDEN)}"
        )
    if loss not in LOSSES:
        raise NetworkError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
    if not 0.0 <= dropout < 1.0:
        raise NetworkError(f"dropout must be in [0, 1), got {dropout}")
    if init is not None and init not in INITS:
        raise NetworkError(f"unknown initialization {init!r}; expected he or glorot")
