"""`sofm`: a self-organizing feature map of the Boston features or of MNIST digits.

The space: grid shape (rows, cols), topology, learning step, the learning
radius at the start and the neighbourhood width it decays to, the decay
schedule, the neighbourhood function and the distance. The value minimized
is the held-out quantization error relative to that of a one-unit map (the
data's centre), so maps with different distances compare, plus `penalty`
times the held-out topographic error (a map that folds scores worse).
"""

from __future__ import annotations

import numpy as np

from hpo.errors import TrialPruned
from hpo.streams import Purpose, stream
from hpo.trial import Trial
from models.datasets import load_boston, load_mnist
from models.sofm import DISTANCES, SOFM, EpochRecord, unit_rows
from models.sofm_data import split, subsample

SPACE = [
    {"name": "rows", "type": "int", "low": 2, "high": 12, "log": False},
    {"name": "cols", "type": "int", "low": 1, "high": 12, "log": False},
    {"name": "topology", "type": "categorical", "choices": ["rect", "hex"]},
    {"name": "step", "type": "float", "low": 0.05, "high": 1.0, "log": False},
    {"name": "radius", "type": "float", "low": 0.5, "high": 6.0, "log": False},
    {"name": "radius_end", "type": "float", "low": 0.1, "high": 1.0, "log": False},
    {"name": "decay", "type": "categorical", "choices": ["linear", "exponential", "inverse"]},
    {"name": "neighbourhood", "type": "categorical", "choices": ["gaussian", "bubble"]},
    {"name": "distance", "type": "categorical", "choices": ["euclidean", "cosine"]},
]
DATA = ("boston", "mnist")


def sofm(
    trial: Trial,
    data: str = "boston",
    epochs: int = 30,
    penalty: float = 1.0,
    samples: int = 2000,
    patience: int = 5,
) -> float:
    """Train the trial's map; relative held-out quantization error + penalty x topographic error.

    Options: data, "boston" (the 13 standardized features) or "mnist" (a
    sample of `samples` digits); epochs; penalty; patience, of early stopping.
    """
    train_x, valid_x = _data(data, samples, trial.study.seed)
    p = trial.params
    rng = trial.rng  # the objective's own stream, independent of the sampler's
    model = SOFM(
        p["rows"],
        p["cols"],
        topology=p["topology"],
        distance=p["distance"],
        neighbourhood=p["neighbourhood"],
    )
    scale = _one_unit_error(valid_x, p["distance"])

    def report(epoch: int, record: EpochRecord) -> bool:
        trial.report(record.valid_qe / scale, epoch)
        return trial.should_prune()

    history = model.fit(
        train_x,
        epochs,
        rng,
        step=p["step"],
        radius=p["radius"],
        radius_end=min(p["radius_end"], p["radius"]),
        decay=p["decay"],
        valid=valid_x,
        patience=patience,
        callback=report,
    )
    quantization = model.quantization_error(valid_x) / scale
    topographic = model.topographic_error(valid_x)
    for key, value in {
        "quantization_error": quantization,
        "topographic_error": topographic,
        "epochs": len(history.records),
        "stopped": history.stopped,
    }.items():
        trial.set_user_attr(key, value)
    if history.stopped == "callback":
        raise TrialPruned
    return float(quantization + penalty * topographic)


def _data(name: str, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if name not in DATA:
        raise ValueError(f"sofm: data must be one of {', '.join(DATA)}, got {name!r}")
    rng = stream(seed, Purpose.DATA)  # one sample and split for every trial of the study
    if name == "boston":
        x = load_boston(validation=0.0).train.x
    else:
        x = subsample(load_mnist(validation=0).train.x, samples, rng)
    return split(x.astype(np.float64), 0.2, rng)


def _one_unit_error(x: np.ndarray, distance: str) -> float:
    """The quantization error of a map with one unit at the data's centre."""
    centre = (unit_rows(x) if distance == "cosine" else x).mean(axis=0, keepdims=True)
    return float(np.mean(DISTANCES[distance](x, centre)))
