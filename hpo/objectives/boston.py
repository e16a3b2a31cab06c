"""`boston`: a one-hidden-layer regression network on the Boston house prices.

The source article trains a 13-50-1 sigmoid network with Levenberg–Marquardt.
The space: hidden units, activation, and the optimizer as a branch —
Levenberg–Marquardt with its damping mu and mu's update factor, or Adam,
RMSProp or Nesterov momentum with their steps. Targets are standardized for
training.

Three disjoint splits of the 506 houses: the held-out `validation` rows (the
article's 15%) are scored and nothing else sees them; early stopping
chooses the epoch on its own `stopping` rows, out of the rest (choosing it
on the scored rows made the score optimistic: docs/networks.md). The value
minimized is the held-out mean squared error in $1000s² (prices back in
their units) at the chosen epoch; the held-out RMSLE and RMSE (in $1000s)
are stored with the trial. Every epoch's held-out MSE is reported.

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
from models.training import EarlyStopping, train


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
    stopping: float = 0.15,
    drop_b: bool = False,
) -> float:
    """Train the trial's network; its held-out MSE in $1000s² at the epoch early stopping chose.

    Options: max_epochs (Levenberg–Marquardt takes one full-batch step per
    epoch, the others one pass of minibatches of batch_size); patience, of
    early stopping; validation, the fraction of the houses held out and
    scored; stopping, the fraction early stopping watches (0: no early
    stopping, every epoch is trained and the last one scored); drop_b.
    """
    # the loader's test split is the scored one: neither training nor early stopping sees it
    data = load_boston(validation=stopping, test=validation, drop_b=drop_b)
    held_out = data.test
    if held_out is None:
        raise ValueError(f"boston: validation must hold out some houses, got {validation}")
    mean, scale = float(data.train.y.mean()), float(data.train.y.std())
    p = trial.params
    rng = trial.rng  # the objective's own stream, independent of the sampler's
    net = MLP([data.train.x.shape[1], p["units"], 1], rng, activation=p["activation"], loss="mse")

    def held_out_mse() -> float:  # in $1000s²; the network's loss is ½ MSE, standardized
        return 2.0 * net.loss(held_out.x, (held_out.y - mean) / scale) * scale**2

    report = reporter(trial)
    watched = (data.valid.x, (data.valid.y - mean) / scale) if len(data.valid) else None
    history = train(
        net,
        data.train.x,
        (data.train.y - mean) / scale,
        _optimizer(p),
        max_epochs,
        rng,
        batch_size=batch_size,
        valid=watched,
        early_stopping=EarlyStopping(patience) if watched is not None else None,
        callback=lambda epoch: report(replace(epoch, valid_loss=held_out_mse())),
    )
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged network's predictions
        predicted = net.predict(held_out.x)[:, 0] * scale + mean
        error = predicted - held_out.y
        rmsle = np.sqrt(np.mean((np.log1p(np.maximum(predicted, 0)) - np.log1p(held_out.y)) ** 2))
        rmse = np.sqrt(np.mean(error**2))
        value = held_out_mse()
    # chance: predicting the training mean
    chance = float(np.mean((held_out.y - mean) ** 2))
    scores = {"rmsle": float(rmsle), "rmse": float(rmse), "best_epoch": history.best_epoch}
    finish(trial, history, scores, chance=chance)
    if history.best_epoch is None or not np.isfinite(value):
        return chance  # diverged before an epoch could be kept: a network that learned nothing
    return float(value)


TRADEOFF_SPACE = [
    {"name": "units", "type": "int", "low": 1, "high": 100, "log": True},
    *SPACE[1:],  # activation, optimizer
]


def boston_tradeoff(
    trial: Trial,
    max_epochs: int = 100,
    batch_size: int = 32,
    patience: int = 10,
    validation: float = 0.15,
    stopping: float = 0.15,
    drop_b: bool = False,
) -> tuple[float, float]:
    """Train the trial's network (as `boston`); its held-out MSE in $1000s² and its
    number of hidden units, both minimized. Options: as `boston`'s."""
    mse = boston(trial, max_epochs, batch_size, patience, validation, stopping, drop_b)
    return mse, float(trial.params["units"])


def _optimizer(p: dict[str, Any]) -> Any:
    if p["optimizer"] == "lm":
        return LevenbergMarquardt(mu=p["mu"], factor=p["mu_factor"])
    if p["optimizer"] == "adam":
        return Adam(step=p["step"])
    if p["optimizer"] == "rmsprop":
        return RMSProp(step=p["step"])
    return Momentum(step=p["step"], momentum=p["momentum"], nesterov=True)
