"""Synthetic objectives with known optima, for fast tests and sampler comparisons.

The formulas, spaces and optima are those of the public benchmark problems
(``bench/problems.py``, a verbatim copy of the shared definitions);
``tests/test_objectives.py`` checks that the two agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def branin(p: dict[str, Any]) -> float:
    """Branin-Hoo; three global minima of 0.397887 (Dixon & Szegö, 1978)."""
    x1, x2 = p["x1"], p["x2"]
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)  # (4, 6)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)  # (4, 6)
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])  # (4,)


def hartmann6(p: dict[str, Any]) -> float:
    """Hartmann 6-D on the unit cube; global minimum -3.32237."""
    x = np.array([p[f"x{i}"] for i in range(6)])  # (6,)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


def rosenbrock4(p: dict[str, Any]) -> float:
    """Rosenbrock in 4-D; global minimum 0 at (1, 1, 1, 1)."""
    x = np.array([p[f"x{i}"] for i in range(4)])  # (4,)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


_ACTIVATION_PENALTY = {"relu": 0.0, "elu": 0.05, "tanh": 0.15, "sigmoid": 0.4}


def mixed_nn(p: dict[str, Any]) -> float:
    """A smooth stand-in for a network's validation loss over a mixed space."""
    lr = math.log10(p["lr"])  # best near 1e-2
    bs = math.log2(p["batch_size"])  # best near 64
    units = p["units"] / 1000.0  # best near 0.45
    return (
        (lr + 2.0) ** 2 * 0.5
        + (bs - 6.0) ** 2 * 0.05
        + (units - 0.45) ** 2 * 2.0
        + (p["dropout"] - 0.2) ** 2 * 3.0
        + _ACTIVATION_PENALTY[p["activation"]]
    )


def conditional_nn(p: dict[str, Any]) -> float:
    """Tree-structured: one or two hidden layers, each with its own units."""
    lr_term = (math.log10(p["lr"]) + 2.5) ** 2 * 0.3
    if p["layers"] == "one":
        return 0.3 + lr_term + ((p["units_1_1"] - 400) / 450) ** 2
    return lr_term + ((p["units_2_1"] - 300) / 450) ** 2 + ((p["units_2_2"] - 120) / 450) ** 2


def _unit(n: int) -> list[dict[str, Any]]:
    return [
        {"name": f"x{i}", "type": "float", "low": 0.0, "high": 1.0, "log": False} for i in range(n)
    ]


def _units(name: str) -> dict[str, Any]:
    return {"name": name, "type": "int", "low": 50, "high": 500, "log": False}


PROBLEMS: dict[str, dict[str, Any]] = {
    "branin": {
        "space": [
            {"name": "x1", "type": "float", "low": -5.0, "high": 10.0, "log": False},
            {"name": "x2", "type": "float", "low": 0.0, "high": 15.0, "log": False},
        ],
        "fn": branin,
        "optimum": 0.397887,
    },
    "hartmann6": {"space": _unit(6), "fn": hartmann6, "optimum": -3.32237},
    "rosenbrock4": {
        "space": [
            {"name": f"x{i}", "type": "float", "low": -2.048, "high": 2.048, "log": False}
            for i in range(4)
        ],
        "fn": rosenbrock4,
        "optimum": 0.0,
    },
    "mixed_nn": {
        "space": [
            {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
            {"name": "batch_size", "type": "int", "low": 16, "high": 512, "log": True},
            {
                "name": "activation",
                "type": "categorical",
                "choices": ["relu", "elu", "tanh", "sigmoid"],
            },
            {"name": "units", "type": "int", "low": 50, "high": 1000, "log": False},
            {"name": "dropout", "type": "float", "low": 0.0, "high": 0.5, "log": False},
        ],
        "fn": mixed_nn,
        "optimum": 0.0,
    },
    "conditional_nn": {
        "space": [
            {"name": "lr", "type": "float", "low": 1e-4, "high": 1.0, "log": True},
            {
                "name": "layers",
                "type": "branch",
                "choices": {
                    "one": [_units("units_1_1")],
                    "two": [_units("units_2_1"), _units("units_2_2")],
                },
            },
        ],
        "fn": conditional_nn,
        "optimum": 0.0,
    },
}
