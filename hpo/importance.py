"""Parameter importance by PED-ANOVA (Watanabe, Bansal and Hutter, IJCAI 2023).

PED-ANOVA ("Pearson divergence ANOVA") asks, for each parameter, how much
the distribution of its values among the best trials differs from its
distribution among all trials. With p_all the density of a parameter's
values over the completed trials and p_top over the best `quantile` of
them, the (local) importance of parameter d is the Pearson divergence

    I_d = ∫ (p_top(x) / p_all(x) - 1)^2 p_all(x) dx          (paper, Thm. 1)

which the paper shows equals, up to a constant, the variance the parameter
explains of the indicator "this trial is among the best" — the functional
ANOVA quantity, without fitting a surrogate model. Importances are
normalized to sum to one, as Optuna's PedAnovaImportanceEvaluator does.

Densities: numeric parameters are encoded to [0, 1] (log scale where the
parameter is log) and estimated by a Gaussian kernel density on a grid of
`GRID` points with Scott's bandwidth; categorical parameters and branches by
their frequencies with add-one smoothing. A conditional parameter is judged
on the trials where it is active.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hpo.direction import Direction
from hpo.records import FrozenTrial, completed_finite, value_of
from hpo.space import Branch, Categorical, Numeric, Param

GRID = 100
MIN_TRIALS = 4  # fewer completed trials say nothing about importance


def ped_anova(
    params: Sequence[Param],
    trials: Sequence[FrozenTrial],
    direction: Direction,
    quantile: float = 0.1,
) -> dict[str, float]:
    """Importance of each parameter (summing to 1), most important first.

    Uses completed trials with a finite value; an empty dict when fewer than
    MIN_TRIALS are there.
    """
    done = completed_finite(trials)
    if len(done) < MIN_TRIALS:
        return {}
    order = np.argsort([direction.loss(value_of(t)) for t in done], kind="stable")
    n_top = max(2, math.ceil(quantile * len(done)))
    top = [done[i] for i in order[:n_top]]
    raw = {param.name: _divergence(param, done, top) for param in params}
    total = sum(raw.values())
    if total <= 0:
        return {name: 0.0 for name in raw}
    return dict(sorted(((n, v / total) for n, v in raw.items()), key=lambda kv: -kv[1]))


def _divergence(param: Param, everyone: Sequence[FrozenTrial], top: Sequence[FrozenTrial]) -> float:
    all_values = [
        t.params[param.name] for t in everyone if param.contains(t.params.get(param.name))
    ]
    top_values = [t.params[param.name] for t in top if param.contains(t.params.get(param.name))]
    if len(all_values) < 2 or not top_values:
        return 0.0
    if isinstance(param, Numeric):
        p_all = _kde([param.encode(v) for v in all_values])
        p_top = _kde([param.encode(v) for v in top_values])
        weight = 1.0 / GRID  # the grid's cell width: an integral over [0, 1]
    else:
        p_all = _frequencies(param, all_values)
        p_top = _frequencies(param, top_values)
        weight = 1.0
    return float(np.sum(p_all * (p_top / p_all - 1.0) ** 2) * weight)


def _kde(u: Sequence[float]) -> np.ndarray:
    """Density on GRID cell centres of [0, 1], (GRID,), from points u in [0, 1]."""
    points = np.asarray(u, dtype=float)
    spread = float(np.std(points)) if len(points) > 1 else 0.0
    bandwidth = max(1.06 * spread * len(points) ** -0.2, 1.0 / GRID, 0.05 if spread == 0 else 0)
    grid = (np.arange(GRID) + 0.5) / GRID
    density = np.exp(-0.5 * ((grid[:, None] - points[None, :]) / bandwidth) ** 2).sum(axis=1)
    density /= density.sum() / GRID  # integrates to 1 over [0, 1]
    return np.maximum(density, 1e-12)


def _frequencies(param: Categorical | Branch, values: Sequence[object]) -> np.ndarray:
    counts = np.ones(len(param.choices))  # add-one smoothing
    for value in values:
        counts[param.index(value)] += 1
    return counts / counts.sum()
