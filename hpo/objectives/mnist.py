"""`mnist_mlp`: a multilayer perceptron on MNIST digits, trained with RMSProp.

The search space is the source article's (`docs/networks.md`): step
(learning rate), batch size, activation, one or two hidden layers each with
its own units, dropout. The value minimized is the validation
cross-entropy of the best epoch (early stopping restores it); the
validation accuracy is stored with the trial. Every epoch's validation loss
is reported to the trial, which may prune it. A training loss above 10 (the
article's "error too high" rule) stops training (user attribute `stopped`:
"diverged"): the trial keeps its best epoch's value, or, if it diverged in
its first epoch, ln 10, the cross-entropy of a network that learned nothing.
"""

from __future__ import annotations

import numpy as np

from hpo.objectives.networks import finish, reporter
from hpo.trial import Trial
from models.datasets import load_mnist
from models.mlp import MLP
from models.optimizers import RMSProp
from models.training import EarlyStopping, train

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
DIVERGENCE = 10.0  # the article's threshold on the training error


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
    accuracy = float(np.mean(net.predict(data.valid.x).argmax(axis=1) == data.valid.y))
    return finish(trial, history, {"accuracy": accuracy}, chance=float(np.log(10)))
