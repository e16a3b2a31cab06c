"""The training loop: learning, history, early stopping, divergence, callbacks, seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from models.datasets import load_mnist
from models.mlp import MLP
from models.optimizers import SGD, Adam, RMSProp
from models.training import EarlyStopping, Epoch, History, TrainingError, train


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian clusters in 2-D: x (n, 2) float32, labels (n,)."""
    r = rng(seed)
    labels = r.integers(0, 3, n)
    centres = np.array([[0.0, 3.0], [-3.0, -2.0], [3.0, -2.0]])
    return (centres[labels] + r.standard_normal((n, 2))).astype(np.float32), labels


def noise(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random features and random labels: nothing to learn, so a big network overfits."""
    r = rng(seed)
    return r.standard_normal((n, 5)).astype(np.float32), r.integers(0, 3, n)


def regression(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    x = rng(5).standard_normal((n, 3)).astype(np.float32)
    return x, (x @ np.array([1.0, -2.0, 0.5])).astype(np.float32)


def snapshots(net: MLP) -> tuple[list[np.ndarray], object]:
    """A callback that keeps each epoch's weights, and the list it fills."""
    states: list[np.ndarray] = []

    def keep(epoch: Epoch) -> None:
        assert epoch.epoch == len(states) + 1
        states.append(net.state())

    return states, keep


def accuracy(net: MLP, x: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(net.predict(x).argmax(axis=1) == labels))


# -- learning and history -----------------------------------------------------------


def test_train_learns_a_separable_problem():
    (x, y), (xv, yv) = blobs(300, 1), blobs(200, 2)
    net = MLP([2, 16, 3], rng())
    initial = net.loss(xv, yv)
    assert accuracy(net, xv, yv) < 0.8 and initial > 1  # not solved by the initial weights
    history = train(net, x, y, Adam(0.01), 20, rng(1), batch_size=32, valid=(xv, yv))
    assert accuracy(net, xv, yv) > 0.97
    assert history.column("valid_loss")[-1] < 0.05


def test_history_has_one_record_per_epoch():
    (x, y), (xv, yv) = blobs(100, 1), blobs(50, 2)
    history = train(MLP([2, 8, 3], rng()), x, y, SGD(0.05), 6, rng(), batch_size=20, valid=(xv, yv))
    assert isinstance(history, History)
    assert [e.epoch for e in history.epochs] == [1, 2, 3, 4, 5, 6]
    assert history.stopped is None and not history.diverged
    for record in history.epochs:
        assert np.isfinite(record.train_loss) and np.isfinite(record.valid_loss)
        assert isinstance(record.seconds, float) and 0 <= record.seconds < 10
    assert history.column("epoch") == [1, 2, 3, 4, 5, 6]
    losses = history.column("valid_loss")
    assert history.best_epoch == int(np.argmin(losses)) + 1


def test_without_validation_the_training_loss_is_monitored():
    x, y = blobs(100, 1)
    history = train(MLP([2, 8, 3], rng()), x, y, SGD(0.05), 4, rng(), batch_size=20)
    assert history.column("valid_loss") == [None] * 4
    assert history.best_epoch == int(np.argmin(history.column("train_loss"))) + 1


def test_train_loss_is_the_mean_over_the_epochs_samples():
    """With a step too small to move float32 weights, every batch sees the initial
    network: the epoch's loss is the dataset's, the uneven last batch weighted by its size."""
    x, y = blobs(50, 1)
    net = MLP([2, 8, 3], rng())
    before = net.state()
    history = train(net, x, y, SGD(1e-30), 1, rng(), batch_size=16)  # 16 + 16 + 16 + 2
    np.testing.assert_allclose(net.flat_params, before, rtol=1e-7, atol=1e-25)
    assert history.epochs[0].train_loss == pytest.approx(net.loss(x, y), rel=1e-6)


def test_same_seed_same_history_and_weights():
    (x, y), (xv, yv) = blobs(120, 1), blobs(40, 2)

    def run(seed: int) -> tuple[History, MLP]:
        net = MLP([2, 16, 3], rng(0), dropout=0.3)  # the rng drives dropout too
        return train(net, x, y, RMSProp(0.01), 4, rng(seed), batch_size=16, valid=(xv, yv)), net

    (first, a), (second, b), (other, c) = run(1), run(1), run(2)
    for column in ("train_loss", "valid_loss"):
        assert first.column(column) == second.column(column)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert first.column("train_loss") != other.column("train_loss")
    assert not np.array_equal(a.flat_params, c.flat_params)


def test_mnist_subset_learns_quickly():
    data = load_mnist(validation=1000, subset=2000)
    net = MLP([784, 32, 10], rng())
    train(net, data.train.x, data.train.y, RMSProp(0.001), 3, rng(), batch_size=64)
    assert accuracy(net, data.valid.x, data.valid.y) > 0.85


# -- early stopping -----------------------------------------------------------------


def overfit(early_stopping: EarlyStopping | None, epochs: int = 30):
    """A 5-64-3 network learning random labels: the validation loss soon rises."""
    (x, y), (xv, yv) = noise(40, 1), noise(40, 2)
    net = MLP([5, 64, 3], rng(1))
    states, keep = snapshots(net)
    history = train(
        net,
        x,
        y,
        Adam(0.01),
        epochs,
        rng(2),
        batch_size=10,
        valid=(xv, yv),
        early_stopping=early_stopping,
        callback=keep,
    )
    return history, net, states, (xv, yv)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    history, net, states, valid = overfit(EarlyStopping(patience=3))
    losses = history.column("valid_loss")
    best = history.best_epoch
    assert history.stopped == "early stopping"
    assert len(history.epochs) == best + 3 < 30
    assert best == int(np.argmin(losses)) + 1
    assert all(loss >= losses[best - 1] for loss in losses[best:])
    np.testing.assert_array_equal(net.flat_params, states[best - 1])
    assert not np.array_equal(net.flat_params, states[-1])  # not simply the last epoch's
    assert net.loss(*valid) == pytest.approx(losses[best - 1], rel=1e-6)


def test_without_restore_best_the_last_weights_stay():
    history, net, states, _ = overfit(EarlyStopping(patience=3, restore_best=False))
    assert history.stopped == "early stopping"
    np.testing.assert_array_equal(net.flat_params, states[-1])


def test_without_early_stopping_training_runs_every_epoch():
    history, net, states, _ = overfit(None, epochs=12)
    assert history.stopped is None and len(history.epochs) == 12
    assert history.best_epoch < 12  # it did overfit, but nothing stops or restores
    np.testing.assert_array_equal(net.flat_params, states[-1])


def expected_stop(losses: list[float], patience: int, min_delta: float) -> tuple[int, int]:
    """Keras' rule on a list of monitored losses: (best epoch, epoch training stops at)."""
    best, best_epoch, waited = np.inf, 0, 0
    for epoch, loss in enumerate(losses, start=1):
        if loss < best - min_delta:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
        if waited >= patience:
            return best_epoch, epoch
    return best_epoch, len(losses)


def slow_descent(early_stopping: EarlyStopping | None):
    """Plain SGD with a small step on the blobs: the validation loss falls every epoch,
    by less and less."""
    (x, y), (xv, yv) = blobs(100, 1), blobs(100, 2)
    net = MLP([2, 8, 3], rng(3), activation="tanh")
    states, keep = snapshots(net)
    history = train(
        net,
        x,
        y,
        SGD(0.003),
        40,
        rng(4),
        batch_size=25,
        valid=(xv, yv),
        early_stopping=early_stopping,
        callback=keep,
    )
    return history, net, states


def test_min_delta_counts_only_improvements_larger_than_it():
    free, _, _ = slow_descent(None)
    losses = free.column("valid_loss")
    assert all(b < a for a, b in itertools.pairwise(losses))  # always improving
    min_delta = 0.04  # more than two epochs' improvement, once the descent slows
    best, stop = expected_stop(losses, patience=2, min_delta=min_delta)
    assert stop < 40  # the case is one min_delta decides
    history, net, states = slow_descent(EarlyStopping(patience=2, min_delta=min_delta))
    assert history.stopped == "early stopping"
    assert len(history.epochs) == stop and history.best_epoch == best
    assert history.column("valid_loss") == losses[:stop]  # the same run, cut short
    assert losses[stop - 1] < losses[best - 1]  # later epochs were better, by too little
    np.testing.assert_array_equal(net.flat_params, states[best - 1])


def test_min_delta_zero_never_stops_a_descent():
    history, _, _ = slow_descent(EarlyStopping(patience=1, min_delta=0.0))
    assert history.stopped is None and len(history.epochs) == 40
    assert history.best_epoch == 40


# -- divergence and callbacks -------------------------------------------------------


def test_divergence_is_judged_on_the_epochs_mean_training_loss():
    x, y = regression()
    net = MLP([3, 8, 1], rng(1), activation="tanh", loss="mse")
    history = train(net, x, y, SGD(10.0), 20, rng(2), batch_size=len(x), divergence=100.0)
    assert history.stopped == "diverged" and history.diverged
    assert len(history.epochs) == 2 and history.epochs[0].train_loss < 100.0
    assert history.epochs[-1].train_loss > 100.0  # the epoch that stopped training
    assert np.all(np.isfinite(net.flat_params))


def test_a_batch_above_the_threshold_is_not_divergence_when_the_epoch_trains_well():
    """The article stops a network whose epoch error passes 10, not one bad batch:
    here the first batches are far above 10 (a wrong output bias) and the epoch
    ends far below it."""
    x, y = regression(256)
    net = MLP([3, 1], rng(1), loss="mse")
    net.biases[0][...] = 6.0  # ½ (6 + noise)² ≈ 18 on every sample at first
    first_batch_loss = net.loss(x[:8], y[:8])
    assert first_batch_loss > 10.0
    history = train(net, x, y, SGD(0.5), 3, rng(2), batch_size=8, divergence=10.0)
    assert history.stopped is None and len(history.epochs) == 3
    assert history.epochs[0].train_loss < 10.0 / 4  # the epoch's mean, well below
    assert history.epochs[-1].train_loss < 0.01


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_non_finite_loss_is_divergence_even_without_a_threshold():
    x, y = regression()
    net = MLP([3, 8, 1], rng(1), activation="relu", loss="mse")
    history = train(net, x, y, SGD(100.0), 20, rng(2), batch_size=16)
    assert history.stopped == "diverged"
    assert not np.isfinite(history.epochs[-1].train_loss)
    assert all(np.isfinite(e.train_loss) for e in history.epochs[:-1])
    assert len(history.epochs) < 20
    assert np.all(np.isfinite(net.flat_params))


def test_divergence_with_early_stopping_restores_the_best_weights():
    x, y = regression()
    net = MLP([3, 8, 1], rng(1), activation="tanh", loss="mse")
    states, keep = snapshots(net)
    history = train(
        net,
        x,
        y,
        SGD(10.0),
        20,
        rng(2),
        batch_size=len(x),
        divergence=100.0,
        early_stopping=EarlyStopping(patience=5),
        callback=keep,
    )
    assert history.stopped == "diverged" and history.best_epoch == 1
    np.testing.assert_array_equal(net.flat_params, states[0])


def test_the_callback_can_stop_training():
    x, y = blobs(60, 1)
    seen: list[Epoch] = []

    def stop_at_three(epoch: Epoch) -> bool:
        seen.append(epoch)
        return epoch.epoch == 3

    history = train(MLP([2, 8, 3], rng()), x, y, SGD(0.05), 10, rng(), callback=stop_at_three)
    assert history.stopped == "callback"
    assert len(history.epochs) == 3
    assert seen == history.epochs  # the very records of the history, in order


def test_a_callback_returning_none_or_false_does_not_stop():
    x, y = blobs(60, 1)
    answers = iter([None, False, None, False])
    history = train(
        MLP([2, 8, 3], rng()), x, y, SGD(0.05), 4, rng(), callback=lambda epoch: next(answers)
    )
    assert history.stopped is None and len(history.epochs) == 4


# -- bad arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"epochs": 2.5}, "epochs must be an integer >= 1"),
        ({"epochs": True}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": -8}, "batch_size must be an integer >= 1"),
        ({"y": np.zeros(9, dtype=np.int64)}, "of one length, got 10 and 9"),
        ({"x": np.zeros((0, 2), dtype=np.float32), "y": np.zeros(0, dtype=np.int64)}, "non-empty"),
        ({"divergence": -1.0}, "divergence must be a positive loss"),
        ({"divergence": 0.0}, "divergence must be a positive loss"),
    ],
)
def test_bad_arguments_raise_training_error(options, message):
    x, y = blobs(10, 1)
    arguments = {"x": x, "y": y, "epochs": 3, "batch_size": 4, **options}
    net = MLP([2, 4, 3], rng())
    before = net.state()
    with pytest.raises(TrainingError, match=message):
        train(
            net,
            arguments.pop("x"),
            arguments.pop("y"),
            SGD(0.1),
            arguments.pop("epochs"),
            rng(),
            **arguments,
        )
    np.testing.assert_array_equal(net.flat_params, before)  # refused before any step


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patience": 0}, "patience must be an integer >= 1"),
        ({"patience": 1.5}, "patience must be an integer >= 1"),
        ({"patience": True}, "patience must be an integer >= 1"),
        ({"min_delta": -0.1}, "min_delta must be >= 0"),
        ({"min_delta": float("nan")}, "min_delta must be >= 0"),
    ],
)
def test_bad_early_stopping_raises_training_error(options, message):
    with pytest.raises(TrainingError, match=message):
        EarlyStopping(**options)
    assert issubclass(TrainingError, ValueError)
