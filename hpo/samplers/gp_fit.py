"""What the gp sampler's Gaussian process is fitted to, and when it is refitted.

The kernel's hyperparameters θ for an ask with n completed trials come from a
multi-start fit (the default start and `restarts` random ones, drawn from a
generator seeded by the prefix's size) on the first a of them, a =
`anchor_size(n)`: every trial up to EVERY_TRIAL_UNTIL (20), then the points
of the geometric schedule ⌈20 · 1.2^k⌉ (24, 29, 35, 42, 50, 60, 72, ...), so
a study refits once per 20% of growth. θ is a pure function of the trials
(gp.py says why that matters and why this design), and it is cached, keyed
by exactly what it is computed from (the prefix's feature bytes, its loss
bytes, the number of restarts), compared in full, never by a hash alone: a
hit returns the value the computation would return, so the cache changes how
long an ask takes, never its answer. Running trials (constant liars) enter
the posterior only, not the fit.

Beyond FIT_ROWS trials the likelihood is evaluated on a subset of them
(subset of data, Rasmussen & Williams, 2006, section 8.3.3; Chalupka,
Williams & Murray, 2013, "A framework for evaluating approximation methods
for Gaussian process regression", JMLR 14, find it a strong baseline for
learning hyperparameters), drawn uniformly by a generator seeded by the
prefix's size. Beyond POSTERIOR_ROWS completed trials the posterior too
conditions on a subset: the better half by loss (EI is decided near the
incumbent, the reasoning of local models such as TuRBO, Eriksson et al.,
2019, "Scalable global optimization via local Bayesian optimization") and a
uniform sample of the rest, running trials always included. tests/test_gp.py
bounds the error of both.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import OrderedDict

import numpy as np
from scipy import optimize

from hpo.samplers.gp_model import default_start, fit_theta, random_starts

FIT_ROWS = 256  # rows in a likelihood at most: O(FIT_ROWS³) per evaluation
POSTERIOR_ROWS = 1000  # completed trials the posterior conditions on at most
# refit at every trial up to EVERY_TRIAL_UNTIL (hyperparameters move fast, fits are
# cheap), then at ⌈20 · 1.2^k⌉: once per 20% of growth
EVERY_TRIAL_UNTIL = 20
REFIT_GROWTH = 1.2
_ANCHORS = tuple(range(1, EVERY_TRIAL_UNTIL)) + tuple(
    sorted({math.ceil(EVERY_TRIAL_UNTIL * REFIT_GROWTH**k) for k in range(100)})
)
_CACHE_SIZE = 16  # anchors kept (a few studies and spaces in one process)
_cache: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def hyperparameters(x: np.ndarray, loss: np.ndarray, restarts: int) -> np.ndarray:
    """θ (D + 2,) for an ask on completed trials with features x (n, D) and raw losses
    (n,), oldest first: the fit on the first anchor_size(n) of them."""
    a = anchor_size(len(loss))
    return anchor_theta(x[:a], loss[:a], restarts)


def anchor_size(n: int) -> int:
    """The largest point of the refit schedule not above n: n itself up to
    EVERY_TRIAL_UNTIL, then the largest ⌈20 · 1.2^k⌉ not above n."""
    return _ANCHORS[bisect.bisect_right(_ANCHORS, n) - 1]


def anchor_theta(x: np.ndarray, loss: np.ndarray, restarts: int) -> np.ndarray:
    """The multi-start fit on these trials' features x (a, D) and losses (a,), cached."""
    key = (x.shape, x.tobytes(), loss.tobytes(), restarts)
    with _cache_lock:
        theta = _cache.get(key)
        if theta is not None:
            _cache.move_to_end(key)
            return theta.copy()
    y = warp(loss)
    rows = fit_rows(len(y))
    dim = x.shape[1]
    starts = [default_start(dim), *random_starts(dim, restarts, np.random.default_rng(len(y)))]
    theta = fit_theta(x[rows], y[rows], starts)
    with _cache_lock:
        _cache[key] = theta
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return theta.copy()


def clear_cache() -> None:
    """Forget every anchor (benchmarks time asks from a known state with this)."""
    with _cache_lock:
        _cache.clear()


def fit_rows(n: int) -> np.ndarray:
    """Indices (at most FIT_ROWS,) of the rows a likelihood uses: all, or a uniform subset
    drawn by a generator seeded by n, in their original order."""
    if n <= FIT_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(n).choice(n, FIT_ROWS, replace=False))


def posterior_rows(loss: np.ndarray, pending: int) -> np.ndarray:
    """Indices of the rows the posterior conditions on, for completed trials' losses (n,)
    followed by `pending` running ones: all, or beyond POSTERIOR_ROWS completed trials
    the better half by loss, a uniform sample of the rest (seeded by n) and the running."""
    n = len(loss)
    if n <= POSTERIOR_ROWS:
        return np.arange(n + pending)
    order = np.argsort(loss, kind="stable")
    best, rest = order[: POSTERIOR_ROWS // 2], order[POSTERIOR_ROWS // 2 :]
    sample = np.random.default_rng(n).choice(rest, POSTERIOR_ROWS - len(best), replace=False)
    return np.concatenate([np.sort(np.concatenate([best, sample])), n + np.arange(pending)])


def warp(loss: np.ndarray) -> np.ndarray:
    """Losses made closer to Gaussian: standardized, Yeo-Johnson transformed
    (Yeo & Johnson, 2000; the exponent by maximum likelihood), standardized.

    Objectives are often heavy-tailed (a few diverged trials, a steep valley);
    without the warp the model spends itself on the tail and loses precision
    where the good trials are (as in HEBO, Cowen-Rivers et al., 2022).
    """
    y = _standardize(loss)
    if np.ptp(y) == 0:
        return y
    best = optimize.minimize_scalar(
        lambda lam: -_yeo_johnson_llf(y, lam),
        bounds=(-3.0, 5.0),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return _standardize(_yeo_johnson(y, best.x))


def _yeo_johnson(y: np.ndarray, lam: float) -> np.ndarray:
    """The Yeo-Johnson transform of y (n,) with exponent lam (Yeo & Johnson, 2000, eq. 2.1)."""
    out = np.empty_like(y)
    pos = y >= 0
    if abs(lam) < 1e-8:
        out[pos] = np.log1p(y[pos])
    else:
        out[pos] = np.expm1(lam * np.log1p(y[pos])) / lam
    if abs(lam - 2.0) < 1e-8:
        out[~pos] = -np.log1p(-y[~pos])
    else:
        out[~pos] = -np.expm1((2.0 - lam) * np.log1p(-y[~pos])) / (2.0 - lam)
    return out


def _yeo_johnson_llf(y: np.ndarray, lam: float) -> float:
    """Profile log-likelihood of lam under a normal model of the transformed y
    (Yeo & Johnson, 2000, section 3): -n/2 log σ̂² + (lam - 1) Σ sign(y) log(|y| + 1)."""
    transformed = _yeo_johnson(y, lam)
    variance = max(transformed.var(), 1e-300)
    return -0.5 * len(y) * np.log(variance) + (lam - 1.0) * np.sum(np.sign(y) * np.log1p(np.abs(y)))


def _standardize(loss: np.ndarray) -> np.ndarray:
    std = loss.std()
    return (loss - loss.mean()) / (std if std > 0 else 1.0)
