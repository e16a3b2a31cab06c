"""The training loop: minibatches, validation, history, early stopping, divergence.

    for each epoch:
        shuffle -> for each minibatch: gradients -> optimizer step
        (a NaN or infinite batch loss ends the epoch at once: see `_epoch`)
        the epoch's mean training loss above the divergence threshold -> stop
        validation loss -> history -> callback (may stop: a pruned trial)
        -> early stopping (patience, minimum improvement)
    restore the best epoch's weights

The divergence rule is the source article's ("Hyperparameter optimization
for Neural Networks", NeuPy, 2016): at the end of an epoch, stop if that
epoch's training error is above the threshold. One bad minibatch early in
an epoch that then trains well is not divergence.

A full-batch second-order optimizer (`models.lm.LevenbergMarquardt`) takes one
step per epoch instead of minibatches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.lm import LevenbergMarquardt
from models.mlp import MLP
from models.optimizers import SGD, Adam, Momentum, RMSProp

FirstOrder = SGD | Momentum | RMSProp | Adam
Optimizer = FirstOrder | LevenbergMarquardt


class TrainingError(ValueError):
    """Training asked for with impossible settings."""


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when the monitored loss has not improved by `min_delta` for `patience` epochs."""

    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        if (
            isinstance(self.patience, bool)
            or not isinstance(self.patience, int)
            or self.patience < 1
        ):
            raise TrainingError(f"patience must be an integer >= 1, got {self.patience!r}")
        if not self.min_delta >= 0:
            raise TrainingError(f"min_delta must be >= 0, got {self.min_delta!r}")


@dataclass
class Monitor:
    """Early stopping's bookkeeping, for any model trained epoch by epoch (Keras' rule).

    An epoch improves on the best when its monitored loss is below the best by
    more than `rule.min_delta`; `rule` None watches the best (min_delta 0) and
    never stops. A NaN loss is never an improvement.
    """

    rule: EarlyStopping | None = None
    best: float = math.inf
    best_epoch: int | None = None
    waited: int = 0  # epochs since the best

    def update(self, loss: float, epoch: int) -> bool:
        """Record one epoch's monitored loss; True when it is the new best."""
        min_delta = self.rule.min_delta if self.rule is not None else 0.0
        if loss < self.best - min_delta:
            self.best, self.best_epoch, self.waited = loss, epoch, 0
            return True
        self.waited += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.rule is not None and self.waited >= self.rule.patience

    @property
    def restores(self) -> bool:
        """Whether the best epoch's weights are to be kept at the end."""
        return self.rule is not None and self.rule.restore_best


@dataclass(frozen=True)
class Epoch:
    epoch: int  # from 1
    train_loss: float  # mean over the epoch's minibatches (with dropout)
    valid_loss: float | None
    seconds: float


@dataclass
class History:
    epochs: list[Epoch] = field(default_factory=list)
    best_epoch: int | None = None  # by the monitored loss (validation, else training)
    stopped: str | None = None  # "early stopping", "diverged", "callback" or None

    @property
    def diverged(self) -> bool:
        return self.stopped == "diverged"

    def column(self, name: str) -> list[float | None]:
        return [getattr(epoch, name) for epoch in self.epochs]


def train(
    net: MLP,
    x: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    epochs: int,
    rng: np.random.Generator,
    batch_size: int = 128,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
    early_stopping: EarlyStopping | None = None,
    divergence: float | None = None,
    callback: Callable[[Epoch], bool | None] | None = None,
) -> History:
    """Train `net` in place and return the per-epoch history.

    divergence: an epoch whose mean training loss is above it (or NaN) stops
    training after that epoch, as does a callback returning True. With early
    stopping, the best epoch's weights are restored at the end.
    """
    _check(x, y, epochs, batch_size, divergence)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is
        return _train(
            net,
            x,
            y,
            optimizer,
            epochs,
            rng,
            batch_size,
            valid,
            early_stopping,
            divergence,
            callback,
        )  # detected and reported, not warned about


def _train(
    net: MLP,
    x: np.ndarray,
    y: np.ndarray,
    optimizer: Optimizer,
    epochs: int,
    rng: np.random.Generator,
    batch_size: int,
    valid: tuple[np.ndarray, np.ndarray] | None,
    early_stopping: EarlyStopping | None,
    divergence: float | None,
    callback: Callable[[Epoch], bool | None] | None,
) -> History:
    x = np.asarray(x, dtype=np.float32)  # the network is float32: convert once, not per batch
    if valid is not None:
        valid = (np.asarray(valid[0], dtype=np.float32), valid[1])
    history, monitor, best_state = History(), Monitor(early_stopping), None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        if isinstance(optimizer, LevenbergMarquardt):
            train_loss = optimizer.step(net, x, y)
        else:
            train_loss = _epoch(net, x, y, optimizer, rng, batch_size)
        valid_loss = net.loss(*valid) if valid is not None and len(valid[0]) else None
        record = Epoch(epoch, train_loss, valid_loss, time.perf_counter() - start)
        history.epochs.append(record)
        if _diverged(train_loss, divergence):  # the epoch's mean: the article's rule
            history.stopped = "diverged"
            break
        if monitor.update(valid_loss if valid_loss is not None else train_loss, epoch):
            history.best_epoch = epoch
            best_state = net.state() if monitor.restores else None
        if callback is not None and callback(record):
            history.stopped = "callback"
            break
        if monitor.should_stop:
            history.stopped = "early stopping"
            break
    if monitor.restores and best_state is not None:
        net.restore(best_state)
    return history


def _epoch(
    net: MLP,
    x: np.ndarray,
    y: np.ndarray,
    optimizer: FirstOrder,
    rng: np.random.Generator,
    batch_size: int,
) -> float:
    """One pass over shuffled minibatches; the mean batch loss.

    A NaN or infinite batch loss ends the epoch at once and is returned: the
    epoch's mean would be non-finite whatever followed (so the verdict,
    diverged, is the same as at the end of the epoch), the rest of the epoch
    would only compute NaN, and no step is taken on its gradients, so the
    weights stay finite.
    """
    order = rng.permutation(len(x))
    total = 0.0
    for start in range(0, len(x), batch_size):
        batch = order[start : start + batch_size]
        loss, _ = net.loss_and_grads(x[batch], y[batch], rng)  # into net.flat_grads
        if not math.isfinite(loss):
            return loss
        optimizer.update([net.flat_params], [net.flat_grads])
        total += loss * len(batch)
    return total / len(x)


def _diverged(loss: float, threshold: float | None) -> bool:
    return not math.isfinite(loss) or (threshold is not None and loss > threshold)


def _check(
    x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, divergence: float | None
) -> None:
    if len(x) != len(y) or len(x) == 0:
        raise TrainingError(
            f"x and y must be non-empty and of one length, got {len(x)} and {len(y)}"
        )
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise TrainingError(f"{name} must be an integer >= 1, got {value!r}")
    if divergence is not None and not divergence > 0:
        raise TrainingError(f"divergence must be a positive loss, got {divergence!r}")
