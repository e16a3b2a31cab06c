"""`boston`: a one-hidden-layer regression network on the Boston house prices.

The source article trains a 13-50-1 sigmoid network with Levenberg–Marquardt.
The space: hidden units, activation, and the optimizer as a branch —
Levenberg–Marquardt with its damping mu and mu's update factor, or Adam,
RMSProp or Nesterov momentum with their steps. Targets are standardized for
training; the value minimized is the validation mean squared error in
$1000s² (prices back in their units), and the validation RMSLE and RMSE (in
$1000s) are stored with the trial. Every epoch's validation MSE is reported.

About the data: feature B encodes the proportion of Black residents by town
(see models/data/README.md); `drop_b = true` in the study file trains
without it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from hpo.objectives.networks import finish, reporter
from hpo.trial import Trial
from models.datasets import load_boston
from models.lm import LevenbergMarquardt
from models.mlp import MLP
from models.optimizers import Adam, Momentum, RMSProp
from models.training import EarlyStopping, Epoch, train


def _step(low: float = 1e-4, high: float = 0.1) -> dict[str, Any]:
    return {"name": "step", "type": "float", "low": low, "high": high, "log": True}


SPACE = [
    {"name": "units", "type": "int", "low": 5, "high": 100, "log": False},
    {"name": "activation", "type": "categorical", "choices": ["sigmoid", "tanh", "relu", "elu"]},
    {
        "name": "optimizer",
        "type": "branch",
        "choices": {
            "lm": [
                {"name": "mu", "type": "float", "low": 1e-3, "high": 100.0, "log": True},
                {"name": "mu_factor", "type": "float", "low": 2.0, "high": 20.0, "log": False},
            ],
            "adam": [_step()],
            "rmsprop": [_step()],
            "momentum": [
                _step(),
                {"name": "momentum", "type": "float", "low": 0.5, "high": 0.99, "log": False},
            ],
        },
    },
]


def boston(
    trial: Trial,
    max_epochs: int = 100,
    batch_size: int = 32,
    patience: int = 10,
    validation: float = 0.15,
    drop_b: bool = False,
) -> float:
    """Train the trial's network; its best validation MSE in $1000s².

    Options: max_epochs (Levenberg–Marquardt takes one full-batch step per
    epoch, the others one pass of minibatches of batch_size); patience, of
    early stopping; validation, the fraction held out; drop_b.
    """
    data = load_boston(validation=validation, drop_b=drop_b)
    mean, scale = float(data.train.y.mean()), float(data.train.y.std())
    p = trial.params
    rng = trial.rng  # the objective's own stream, independent of the sampler's
    net = MLP([data.train.x.shape[1], p["units"], 1], rng, activation=p["activation"], loss="mse")
    valid_y = (data.valid.y - mean) / scale
    report = reporter(trial)

    def report_in_dollars(epoch: Epoch) -> bool:  # its loss: ½ MSE of standardized prices
        return report(replace(epoch, valid_loss=2.0 * epoch.valid_loss * scale**2))

    history = train(
        net,
        data.train.x,
        (data.train.y - mean) / scale,
        _optimizer(p),
        max_epochs,
        rng,
        batch_size=batch_size,
        valid=(data.valid.x, valid_y),
        early_stopping=EarlyStopping(patience),
        callback=report_in_dollars,
    )
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged network's predictions
        predicted = net.predict(data.valid.x)[:, 0] * scale + mean
        error = predicted - data.valid.y
        rmsle = np.sqrt(np.mean((np.log1p(np.maximum(predicted, 0)) - np.log1p(data.valid.y)) ** 2))
        rmse = np.sqrt(np.mean(error**2))
    # chance: predicting the training mean, ½ MSE = ½ var of the standardized prices
    value = finish(
        trial,
        history,
        {"rmsle": float(rmsle), "rmse": float(rmse)},
        chance=0.5 * float(np.mean(valid_y**2)),
    )
    return 2.0 * value * scale**2


def _optimizer(p: dict[str, Any]) -> Any:
    if p["optimizer"] == "lm":
        return LevenbergMarquardt(mu=p["mu"], factor=p["mu_factor"])
    if p["optimizer"] == "adam":
        return Adam(step=p["step"])
    if p["optimizer"] == "rmsprop":
        return RMSProp(step=p["step"])
    return Momentum(step=p["step"], momentum=p["momentum"], nesterov=True)
