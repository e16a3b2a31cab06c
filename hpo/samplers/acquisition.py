"""The gp sampler's acquisition functions, in log space, with their gradients.

Each is a function of GP features x (m, D) with `__call__(x) -> (m,)` and
`with_gradient(x) -> ((m,), (m, D))`; they add in log space (`Sum`), so a
constrained acquisition is log EI (or log EHVI) + log P(feasible).

    LogEI     one objective: log expected improvement (logei.py; Ament et al. 2023)
    LogEHVI   2-3 objectives: log expected hypervolume improvement over the feasible
              front, exact for independent Gaussian objectives by box decomposition
    LogPoF    constraints: log probability that every constraint is <= 0, one
              independent GP per constraint (Gardner, Kusner, Xu, Weinberger &
              Cunningham, 2014, "Bayesian optimization with inequality constraints",
              ICML; as Optuna's GPSampler)

EHVI. With independent GPs per objective, Y_j ~ N(mu_j, sigma_j^2), and the
region no observed point dominates cut into disjoint boxes [l_b, u_b) below
the reference point, the hypervolume improvement of y is

    HVI(y) = sum_b prod_j (u_bj - max(l_bj, y_j))_+

and since (u - max(l, Y))_+ = (u - Y)_+ - (l - Y)_+ for l <= u, and
E[(a - Y)_+] = sigma h((a - mu)/sigma) with h(z) = phi(z) + z Phi(z),

    EHVI = sum_b prod_j sigma_j [h(z_ubj) - h(z_lbj)]

(the box-decomposition form of Yang, Emmerich, Deutz & Bäck, 2019, "Efficient
computation of expected hypervolume improvement using box decomposition
algorithms", J. Global Optim. 75; the q = 1 case of Daulton, Balandat &
Bakshy, 2020, "Differentiable expected hypervolume improvement for parallel
multi-objective Bayesian optimization", NeurIPS). In logs, as LogEHVI in Ament,
Daulton, Eriksson, Balandat & Bakshy (2023), "Unexpected improvements to
expected improvement for Bayesian optimization", NeurIPS: each factor is
log sigma + log h(z_u) + log1mexp(log h(z_l) - log h(z_u)), stable far into
the tails, and the boxes are summed by logsumexp.

Boxes (2-3 objectives): the first k - 1 objectives are cut at every front
point's coordinate (and -inf, the reference); in each cell of that grid the
last objective is free from -inf up to the lowest last coordinate of the
front points that weakly dominate the cell's lower corner (or the reference).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from hpo.samplers.gp_model import GaussianProcess
from hpo.samplers.logei import log_ei, log_h_and_slope

_NEAR_ZERO = -1e-15  # log h(z_l) - log h(z_u) at most this: log1mexp stays finite


class LogEI:
    """log EI of one GP below `best` (standardized losses)."""

    def __init__(self, gp: GaussianProcess, best: float) -> None:
        self.gp, self.best = gp, best

    def __call__(self, x: np.ndarray) -> np.ndarray:
        mean, var = self.gp.predict(x)
        return log_ei(mean, np.sqrt(var), self.best)

    def with_gradient(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, var, d_mean, d_var = self.gp.predict_with_gradient(x)
        std = np.sqrt(var)  # (k,)
        score_z = (self.best - mean) / std
        lh, slope = log_h_and_slope(score_z)
        # log EI = log h(z) + log σ, z = (best - μ)/σ: d/dx = h'/h (-dμ - z dσ)/σ + dσ/σ,
        # with dσ = dvar / 2σ
        d_std = d_var / (2.0 * std[:, None])  # (k, D)
        gradient = (slope[:, None] * (-d_mean - score_z[:, None] * d_std) + d_std) / std[:, None]
        return lh + np.log(std), gradient


class LogPoF:
    """log P(every constraint <= 0): constraint i's GP (standardized values) below its
    threshold (0 standardized), independently: sum_i log Phi((t_i - mu_i) / sigma_i)."""

    def __init__(self, gps: Sequence[GaussianProcess], thresholds: Sequence[float]) -> None:
        self.gps, self.thresholds = list(gps), list(thresholds)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x))
        for gp, t in zip(self.gps, self.thresholds, strict=True):
            mean, var = gp.predict(x)
            out += special.log_ndtr((t - mean) / np.sqrt(var))
        return out

    def with_gradient(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, gradient = np.zeros(len(x)), np.zeros(x.shape)
        for gp, t in zip(self.gps, self.thresholds, strict=True):
            mean, var, d_mean, d_var = gp.predict_with_gradient(x)
            std = np.sqrt(var)
            z = (t - mean) / std
            log_cdf = special.log_ndtr(z)
            ratio = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - log_cdf)  # φ(z)/Φ(z)
            # dz/dx = (-dμ - z dσ)/σ, dσ = dvar / 2σ
            d_std = d_var / (2.0 * std[:, None])
            value += log_cdf
            gradient += ratio[:, None] * (-d_mean - z[:, None] * d_std) / std[:, None]
        return value, gradient


class Sum:
    """The sum of log acquisitions: the log of their product."""

    def __init__(self, parts: Sequence[LogEI | LogEHVI | LogPoF]) -> None:
        self.parts = list(parts)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.sum([part(x) for part in self.parts], axis=0)

    def with_gradient(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pieces = [part.with_gradient(x) for part in self.parts]
        return np.sum([v for v, _ in pieces], axis=0), np.sum([g for _, g in pieces], axis=0)


def nondominated_boxes(front: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint boxes (lower, upper), each (B, k), covering the part of the region below
    `reference` (k,) that no point of `front` (m, k) weakly dominates; k = 2 or 3.
    Lower bounds may be -inf. (See the module docstring; in 3-D, cells of the first two
    objectives' grid next to each other with the same ceiling are merged.)"""
    k = front.shape[1]
    lines = [
        np.concatenate([[-np.inf], np.unique(front[:, j]), [reference[j]]]) for j in range(k - 1)
    ]
    cells = np.stack(
        np.meshgrid(*[np.arange(len(g) - 1) for g in lines], indexing="ij"), axis=-1
    ).reshape(-1, k - 1)  # (C, k - 1) lower grid index per axis
    corner = np.stack([lines[j][cells[:, j]] for j in range(k - 1)], axis=1)  # (C, k - 1)
    below = np.all(front[None, :, : k - 1] <= corner[:, None, :], axis=2)  # (C, m)
    ceiling = np.where(below, front[None, :, k - 1], reference[k - 1]).min(axis=1)  # (C,)
    ceiling = np.minimum(ceiling, reference[k - 1])
    upper_first = np.stack([lines[j][cells[:, j] + 1] for j in range(k - 1)], axis=1)
    if k == 3:  # merge runs along the second axis with the same ceiling
        corner, upper_first, ceiling = _merge_runs(cells, corner, upper_first, ceiling)
    lower = np.column_stack([corner, np.full(len(corner), -np.inf)])
    upper = np.column_stack([upper_first, ceiling])
    keep = np.all(upper > lower, axis=1)
    return lower[keep], upper[keep]


def _merge_runs(
    cells: np.ndarray, corner: np.ndarray, upper: np.ndarray, ceiling: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3-D: cells (C, 2) in row-major order; consecutive cells of one row (same first
    index) with equal ceilings become one box spanning their second-axis range."""
    start = np.ones(len(cells), dtype=bool)
    start[1:] = (cells[1:, 0] != cells[:-1, 0]) | (ceiling[1:] != ceiling[:-1])
    first = np.flatnonzero(start)
    last = np.append(first[1:] - 1, len(cells) - 1)
    merged_upper = np.column_stack([upper[first, 0], upper[last, 1]])
    return corner[first], merged_upper, ceiling[first]


class LogEHVI:
    """log EHVI of independent GPs (one per objective, standardized losses) over the
    non-dominated boxes of `front` (m, k) below `reference` (k,); see the module docstring."""

    def __init__(self, gps: Sequence[GaussianProcess], front: np.ndarray, reference: np.ndarray):
        self.gps = list(gps)
        lower, upper = nondominated_boxes(front, reference)  # (B, k) each
        # each objective's distinct bounds, and each box's index into them
        self.lines, self.lower_at, self.upper_at = [], [], []
        for j in range(len(self.gps)):
            values, index = np.unique(
                np.concatenate([lower[:, j], upper[:, j]]), return_inverse=True
            )
            index = index.ravel()
            self.lines.append(values)  # (T_j,), -inf first where present
            self.lower_at.append(index[: len(lower)])  # (B,)
            self.upper_at.append(index[len(lower) :])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        total = np.zeros((len(x), len(self.lower_at[0])))  # (m, B)
        for j, gp in enumerate(self.gps):
            mean, var = gp.predict(x)
            total += self._factor(j, mean, np.sqrt(var))[0]
        return _logsumexp(total)[0]

    def with_gradient(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total, parts = np.zeros((len(x), len(self.lower_at[0]))), []
        for j, gp in enumerate(self.gps):
            mean, var, d_mean, d_var = gp.predict_with_gradient(x)
            std = np.sqrt(var)
            term, by_mean, by_std = self._factor(j, mean, std, gradient=True)
            total += term
            parts.append((by_mean, by_std, d_mean, d_var / (2.0 * std[:, None])))
        value, weights = _logsumexp(total)  # (m,), (m, B) softmax over the boxes
        gradient = np.zeros(x.shape)
        for by_mean, by_std, d_mean, d_std in parts:
            gradient += (weights * by_mean).sum(axis=1)[:, None] * d_mean
            gradient += (weights * by_std).sum(axis=1)[:, None] * d_std
        return value, gradient

    def _factor(
        self, j: int, mean: np.ndarray, std: np.ndarray, gradient: bool = False
    ) -> tuple[np.ndarray, ...]:
        """log of sigma [h(z_u) - h(z_l)] for every point (m,) and box: (m, B); with
        `gradient`, also its derivatives in mu and sigma, (m, B) each."""
        z = (self.lines[j][None, :] - mean[:, None]) / std[:, None]  # (m, T)
        finite = np.isfinite(z)
        log_h, slope = np.full(z.shape, -np.inf), np.zeros(z.shape)
        log_h[finite], slope[finite] = log_h_and_slope(z[finite])
        lo, up = self.lower_at[j], self.upper_at[j]
        gap = np.minimum(log_h[:, lo] - log_h[:, up], _NEAR_ZERO)  # (m, B), <= 0
        log1m = _log1mexp(gap)
        term = np.log(std)[:, None] + log_h[:, up] + log1m
        if not gradient:
            return (term,)
        with np.errstate(over="ignore", invalid="ignore"):  # (at -inf, masked here)
            w = -1.0 / np.expm1(-gap)  # d log1mexp / d gap; 0 where the lower bound is -inf
            zs = np.where(finite, z * slope, 0.0)  # z h'/h: 0 at -inf (w is 0 there too)
        # d log h(z_t)/dμ = -slope_t/σ;  d log h(z_t)/dσ = -z_t slope_t/σ
        s_lo, s_up = slope[:, lo], slope[:, up]
        by_mean = (-s_up - w * (s_lo - s_up)) / std[:, None]
        by_std = (1.0 - zs[:, up] - w * (zs[:, lo] - zs[:, up])) / std[:, None]
        return term, by_mean, by_std


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x < 0 (Mächler, 2012)."""
    return np.where(x > -np.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def _logsumexp(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log sum exp over the last axis of a (m, B), and the softmax weights (m, B)."""
    top = a.max(axis=1)
    safe = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(a - safe[:, None])
    total = e.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(total[:, None] > 0, e / total[:, None], 0.0)
        return np.log(total) + safe, weights
