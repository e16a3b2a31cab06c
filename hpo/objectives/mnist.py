"""`mnist_mlp`: a multilayer perceptron on MNIST digits, trained with RMSProp.

The search space is the source article's (`docs/networks.md`): step
(learning rate), batch size, activation, one or two hidden layers each with
its own units, dropout. The value minimized is the validation
cross-entropy of the best epoch (early stopping restores it); the
validation accuracy is stored with the trial. Every epoch's validation loss
is reported to the trial, which may prune it. An epoch whose mean training
loss is above 10 stops training after that epoch (the article's "error too
high" rule, judged at the end of each epoch; user attribute `stopped`:
"diverged"): the trial keeps its best epoch's value, or, if it diverged in
its first epoch, ln 10, the cross-entropy of a network that learned nothing.

`mnist_tradeoff`, two objectives: the same network's validation error (the
share of digits misclassified) against its number of weights, both
minimized; hidden units from 8 on a log scale (TRADEOFF_SPACE).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpo.objectives.networks import finish, reporter
from hpo.trial import Trial
from models.datasets import Split, load_mnist
from models.mlp import MLP
from models.optimizers import RMSProp
from models.training import EarlyStopping, History, train

SPACE = [
    {"name": "step", "type": "float", "low": 0.01, "high": 0.5, "log": True},
    {"name": "batch_size", "type": "int", "low": 16, "high": 512, "log": True},
    {
        "name": "activation",
        "type": "categorical",
        "choices": ["relu", "prelu", "elu", "sigmoid", "tanh"],
    },
    {
        "name": "layers",
        "type": "branch",
        "choices": {
            "one": [{"name": "units_1_1", "type": "int", "low": 50, "high": 1000, "log": False}],
            "two": [
                {"name": "units_2_1", "type": "int", "low": 50, "high": 1000, "log": False},
                {"name": "units_2_2", "type": "int", "low": 50, "high": 1000, "log": False},
            ],
        },
    },
    {"name": "dropout", "type": "float", "low": 0.0, "high": 0.5, "log": False},
]
DIVERGENCE = 10.0  # the article's threshold on an epoch's mean training error


def mnist_mlp(
    trial: Trial,
    max_epochs: int = 50,
    subset: int | None = None,
    validation: int = 10_000,
    patience: int = 5,
) -> float:
    """Train the trial's network; its best validation cross-entropy.

    Options (the study file's [objective] table): max_epochs; subset, a
    number of training images for quick runs; validation, the images held
    out from the 60,000; patience, of early stopping.
    """
    net, history, valid = _train(trial, max_epochs, subset, validation, patience)
    accuracy = float(np.mean(net.predict(valid.x).argmax(axis=1) == valid.y))
    return finish(trial, history, {"accuracy": accuracy}, chance=float(np.log(10)))


# Two objectives: the share of validation digits misclassified against the network's
# size. Hidden units on a log scale from 8, so that small networks, the other end of
# the trade-off, are sampled as often as large ones.
def _units(name: str) -> dict[str, Any]:
    return {"name": name, "type": "int", "low": 8, "high": 1000, "log": True}


TRADEOFF_SPACE = [
    *SPACE[:3],  # step, batch_size, activation
    {
        "name": "layers",
        "type": "branch",
        "choices": {
            "one": [_units("units_1_1")],
            "two": [_units("units_2_1"), _units("units_2_2")],
        },
    },
    SPACE[4],  # dropout
]


def mnist_tradeoff(
    trial: Trial,
    max_epochs: int = 50,
    subset: int | None = None,
    validation: int = 10_000,
    patience: int = 5,
) -> tuple[float, float]:
    """Train the trial's network (as `mnist_mlp`); its validation error (the share of
    digits misclassified, at the best epoch) and its number of weights (biases and
    PReLU slopes included), both minimized. Options: as `mnist_mlp`'s."""
    net, history, valid = _train(trial, max_epochs, subset, validation, patience)
    accuracy = float(np.mean(net.predict(valid.x).argmax(axis=1) == valid.y))
    finish(trial, history, {"accuracy": accuracy}, chance=float(np.log(10)))
    return 1.0 - accuracy, float(net.n_params)


def _train(
    trial: Trial, max_epochs: int, subset: int | None, validation: int, patience: int
) -> tuple[MLP, History, Split]:
    """The trial's network trained with early stopping (its best epoch restored), its
    training history and the validation split."""
    data = load_mnist(validation=validation, subset=subset)
    p = trial.params
    hidden = [p["units_1_1"]] if p["layers"] == "one" else [p["units_2_1"], p["units_2_2"]]
    rng = trial.rng  # the objective's own stream, independent of the sampler's
    net = MLP(
        [data.train.x.shape[1], *hidden, 10], rng, activation=p["activation"], dropout=p["dropout"]
    )
    history = train(
        net,
        data.train.x,
        data.train.y,
        RMSProp(step=p["step"]),
        max_epochs,
        rng,
        batch_size=p["batch_size"],
        valid=(data.valid.x, data.valid.y),
        early_stopping=EarlyStopping(patience),
        divergence=DIVERGENCE,
        callback=reporter(trial),
    )
    return net, history, data.valid
