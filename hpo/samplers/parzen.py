"""Parzen estimators over unit-cube coordinates: the densities l(x) and g(x) of TPE.

A Parzen estimator here is a mixture with one kernel per observation plus a
prior kernel (Bergstra et al., 2011, "Algorithms for Hyper-Parameter
Optimization", section 4; the bandwidth and prior rules follow Watanabe,
2023, "Tree-Structured Parzen Estimator: Understanding Its Algorithm
Components and Their Roles for Better Empirical Performance", and Optuna's
``_ParzenEstimator``):

- a numeric coordinate (float, int, log, step: all continuous in [0, 1]
  after the space's encoding) gets a Gaussian truncated to [0, 1], centred
  on the observation; the prior kernel is centred at 0.5 with width 1;
- an int or stepped coordinate ("grid": its values own slices of [0, 1])
  gets the same Gaussians, discretized: a value's probability is the mass
  of its slice, and draws are snapped to the value they decode to (Optuna's
  discrete truncated normals);
- a categorical coordinate (categorical or branch, k choices) gets a
  distribution over the choices: mass 1 on the observed choice plus
  `prior_weight / n_kernels` on every choice, normalized; the prior kernel is
  uniform.

Notation: n observations, K = n + 1 kernels, dn numeric and dc categorical
coordinates, m points to score or sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from hpo.space import Numeric, choice_coordinate, choice_index

LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
EXP_FLOOR = -700.0  # see _logsumexp_rows
FINE_GRID = 0.25  # grid slices at most this many kernel widths wide: mass ~ density x width


@dataclass(frozen=True)
class Parzen:
    """A mixture over some coordinates; `choices[j]` > 0 marks categorical ones,
    `grids[j]` (not None) an int or stepped parameter."""

    log_weights: np.ndarray  # (K,) log mixture weights
    mu: np.ndarray  # (K, dn) kernel centres of the numeric coordinates
    sigma: np.ndarray  # (K, dn) kernel widths
    log_mass: np.ndarray  # (K, dn) log of each Gaussian's mass inside [0, 1]
    log_probs: list[np.ndarray]  # dc arrays of shape (K, k_j): kernel log probabilities
    choices: Sequence[int]  # per coordinate: 0 if numeric, else its number of choices
    grids: Sequence[Numeric | None]  # per coordinate: the int/step parameter, else None

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        weights: np.ndarray,
        choices: Sequence[int],
        prior_weight: float = 1.0,
        grids: Sequence[Numeric | None] | None = None,
        min_width: float | None = None,
    ) -> Parzen:
        """x (n, d) observations in [0, 1], weights (n,) before normalization.

        min_width: the smallest kernel width; None for Bergstra's "magic
        clip", 1 / min(100, K).
        """
        numeric = [j for j, k in enumerate(choices) if k == 0]
        n = len(x)
        log_weights = np.log(np.append(weights, prior_weight))
        log_weights -= _logsumexp_rows(log_weights[None, :])[0]
        mu = np.vstack([x[:, numeric], np.full((1, len(numeric)), 0.5)])  # (K, dn)
        if min_width is None:
            min_width = 1.0 / min(100.0, n + 1)
        sigma = _bandwidths(x[:, numeric], min_width)  # (K, dn)
        log_mass = _log_unit_mass(mu, sigma)  # (K, dn)
        log_probs = []
        for j, k in enumerate(choices):
            if k == 0:
                continue
            probs = np.full((n + 1, k), prior_weight / (n + 1))  # (K, k)
            probs[np.arange(n), choice_index(x[:, j], k)] += 1.0
            probs[n] = 1.0  # the prior kernel: uniform (also when prior_weight is 0)
            probs /= probs.sum(axis=1, keepdims=True)
            log_probs.append(np.log(probs))
        grids = list(grids) if grids is not None else [None] * len(choices)
        return cls(log_weights, mu, sigma, log_mass, log_probs, list(choices), grids)

    @property
    def _numeric(self) -> list[int]:
        return [j for j, k in enumerate(self.choices) if k == 0]

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """m points of shape (m, d): pick a kernel by weight, then draw from it."""
        kernel = rng.choice(len(self.log_weights), size=m, p=np.exp(self.log_weights))
        out = np.empty((m, len(self.choices)))
        numeric = self._numeric
        out[:, numeric] = _truncnorm_sample(self.mu[kernel], self.sigma[kernel], rng)
        for j in numeric:
            grid = self.grids[j]
            if grid is not None:
                out[:, j] = grid.snap_unit(out[:, j])
        categorical = [(j, k) for j, k in enumerate(self.choices) if k > 0]
        for (j, k), log_probs in zip(categorical, self.log_probs, strict=True):
            cumulative = np.cumsum(np.exp(log_probs[kernel]), axis=1)  # (m, k)
            picked = (rng.random((m, 1)) > cumulative).sum(axis=1)
            out[:, j] = choice_coordinate(np.minimum(picked, k - 1), k)
        return out

    def log_pdf(self, points: np.ndarray) -> np.ndarray:
        """log density (log mass along grid coordinates) of each point, shape (m,),
        for points of shape (m, d); grid coordinates must hold grid values.

        Per point and kernel, (m, K), the log of weight x kernel is summed
        over the coordinates, then over the kernels in log space. The
        coordinates scored by density take one matrix product for all of
        them (`_smooth_terms`); each scored by mass or categorical, one pass
        over an (m, K) array. So a g(x) of 10,000 kernels stays cheap.
        """
        smooth, coarse, log_widths = self._scoring(points)
        features, coefficients = self._smooth_terms(points, smooth, log_widths)
        per_kernel = features @ coefficients.T  # (m, K)
        for i, low, high in coarse:
            per_kernel += _log_slice_masses(low, high, self.mu[:, i], self.sigma[:, i])
            per_kernel -= self.log_mass[:, i]
        categorical = [(j, k) for j, k in enumerate(self.choices) if k > 0]
        for (j, k), log_probs in zip(categorical, self.log_probs, strict=True):
            per_kernel += log_probs[:, choice_index(points[:, j], k)].T  # (m, K)
        return _logsumexp_rows(per_kernel)

    def _smooth_terms(
        self, points: np.ndarray, smooth: list[int], log_widths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features (m, 2s + 2) and coefficients (K, 2s + 2) whose product is, per point
        and kernel, log weight + log width + the s coordinates' log truncated-normal density.

        With precision P = 1 / sigma^2, sum_j -(x_j - mu_j)^2 P_j / 2 expands to
        x^2 . (-P / 2) + x . (mu P) - sum_j mu_j^2 P_j / 2: features [x^2, x, 1,
        log width] against [-P / 2, mu P, the kernel's constant, 1]. Coordinates
        lie in [0, 1] and TPE's widths are at least 0.003 (P <= 1.2e5), so the
        expansion loses at most ~1e-10 to rounding.
        """
        x = points[:, [self._numeric[i] for i in smooth]]  # (m, s)
        mu, sigma = self.mu[:, smooth], self.sigma[:, smooth]  # (K, s)
        precision = 1.0 / (sigma * sigma)
        constant = (
            self.log_weights
            - 0.5 * (mu * mu * precision).sum(axis=1)
            - np.log(sigma).sum(axis=1)
            - self.log_mass[:, smooth].sum(axis=1)
            - len(smooth) * LOG_SQRT_2PI
        )  # (K,)
        ones = np.ones((len(points), 1))
        features = np.hstack([x * x, x, ones, log_widths[:, None]])
        coefficients = np.hstack(
            [-0.5 * precision, mu * precision, constant[:, None], np.ones((len(mu), 1))]
        )
        return features, coefficients

    def _scoring(
        self, points: np.ndarray
    ) -> tuple[list[int], list[tuple[int, np.ndarray, np.ndarray]], np.ndarray]:
        """How each numeric coordinate is scored: the positions (in the numeric
        coordinates) scored by density; those scored by the mass of their grid
        slice, with each point's slice (m,) x 2; log of the fine slices' widths (m,)."""
        smooth, coarse = [], []
        log_widths = np.zeros(len(points))  # (m,)
        for i, j in enumerate(self._numeric):
            grid = self.grids[j]
            if grid is None:
                smooth.append(i)
                continue
            low, high = grid.slice_of(points[:, j])  # (m,) each
            if (high - low).max() <= FINE_GRID * self.sigma[:, i].min():
                smooth.append(i)  # mass = density x width, to a relative (w/sigma)^2 z^2 / 24
                log_widths += np.log(high - low)
            else:
                coarse.append((i, low, high))
        return smooth, coarse, log_widths


def _bandwidths(x: np.ndarray, min_width: float) -> np.ndarray:
    """Kernel widths (K, dn): observations first, the prior's (1.0) last.

    Each observation's width is the larger distance to its neighbours along
    the coordinate (adaptive: narrow where observations crowd). The two
    outermost take the distance to their inner neighbour, not to the end of
    the interval ("consider_endpoints" off, Watanabe 2023, section 3.3).
    Widths are clipped to [min_width, 1], so that no kernel collapses onto
    its point.
    """
    n, dn = x.shape
    order = np.argsort(x, axis=0)  # (n, dn)
    ordered = np.take_along_axis(x, order, axis=0)
    padded = np.vstack([np.zeros((1, dn)), ordered, np.ones((1, dn))])  # (n + 2, dn)
    gaps = np.diff(padded, axis=0)  # (n + 1, dn)
    widest = np.maximum(gaps[:-1], gaps[1:])  # (n, dn), in sorted order
    if n >= 2:
        widest[0], widest[-1] = gaps[1], gaps[-2]
    sigma = np.empty_like(widest)
    np.put_along_axis(sigma, order, widest, axis=0)
    sigma = np.clip(sigma, min_width, 1.0)
    return np.vstack([sigma, np.ones((1, dn))])


def _log_slice_masses(
    low: np.ndarray, high: np.ndarray, mu: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """log of the mass of N(mu_k, sigma_k) over each point's slice [low_i, high_i]:
    (m, K) from slices (m,) and kernels (K,).

    Computed once per distinct slice and distinct (centre, width), then
    spread: the points hold grid values, and so do the observations, whose
    widths, at thousands of them, are mostly the clipped minimum -- 10,000
    kernels on a coordinate of a few hundred values have a few hundred
    distinct ones. Each mass is the same arithmetic on the same numbers as
    without the sharing, so the result is the same to the bit.
    """
    slices, slice_of = np.unique(low + 1j * high, return_inverse=True)  # (s,), (m,)
    kernels, kernel_of = np.unique(mu + 1j * sigma, return_inverse=True)  # (k,), (K,)
    centre, width = kernels.real, kernels.imag
    masses = _log_gauss_mass(
        (slices.real[:, None] - centre) / width, (slices.imag[:, None] - centre) / width
    )  # (s, k)
    return masses[np.ix_(slice_of.ravel(), kernel_of.ravel())]


def _log_gauss_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for standardized a <= b, accurate in both tails:
    the interval is mirrored to lie mostly left of 0, where Phi keeps its digits."""
    right = a + b > 0
    low, high = np.where(right, -b, a), np.where(right, -a, b)
    log_low, log_high = special.log_ndtr(low), special.log_ndtr(high)
    return log_high + np.log1p(-np.exp(log_low - log_high))


# -- truncated normals on [0, 1] ---------------------------------------------------


def _truncnorm_sample(mu: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Inverse-CDF draws from N(mu, sigma) truncated to [0, 1]; mu lies in [0, 1],
    so the interval holds the mode and the CDF difference never underflows."""
    low, high = special.ndtr(-mu / sigma), special.ndtr((1.0 - mu) / sigma)
    p = low + rng.random(mu.shape) * (high - low)
    return np.clip(mu + sigma * special.ndtri(p), 0.0, 1.0)


def _log_unit_mass(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log(Phi((1 - mu) / sigma) - Phi(-mu / sigma)): the log mass of each Gaussian
    inside [0, 1], same shape as mu. A kernel at least 10 widths from both ends has
    mass 1 - 1.5e-23 at most, which rounds to exactly 1 (log 0): only the others
    are computed, which at 10,000 narrow kernels is a small share of them."""
    low, high = -mu / sigma, (1.0 - mu) / sigma
    log_mass = np.zeros_like(mu)
    near = (low > -10.0) | (high < 10.0)
    log_mass[near] = np.log(special.ndtr(high[near]) - special.ndtr(low[near]))
    return log_mass


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """log(sum(exp(a), axis=1)) for a of shape (m, K), shifted by each row's maximum.

    Shifted terms below EXP_FLOOR are raised to it: exp(-700) ~ 1e-304 is
    nothing beside the maximum's exp(0) = 1 (the sum is bit for bit the same),
    and exp runs ~100x slower where its result would be subnormal. A row
    without a finite maximum (all -inf: density 0) gives its maximum.
    """
    top = a.max(axis=1)  # (m,)
    finite = np.isfinite(top)
    shifted = a - np.where(finite, top, 0.0)[:, None]  # (m, K), at most 0
    np.maximum(shifted, EXP_FLOOR, out=shifted)
    np.exp(shifted, out=shifted)
    return np.where(finite, np.log(shifted.sum(axis=1)) + top, top)
