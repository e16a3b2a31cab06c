"""Logarithm of expected improvement, stable far into the tails.

For minimization with posterior mean mu, standard deviation sigma and best
value f*, z = (f* - mu) / sigma and

    EI = sigma * h(z),   h(z) = phi(z) + z * Phi(z),

so log EI = log h(z) + log sigma. Computing h directly underflows to 0 for
z below about -38 (and loses all precision well before), after which EI
gives an optimizer no gradient to follow. log h follows Ament, Daulton,
Eriksson, Balandat & Bakshy (2023), "Unexpected Improvements to Expected
Improvement for Bayesian Optimization", eq. (9):

    log h(z) = log(phi(z) + z Phi(z))                            z > -1
             = -z^2/2 - c1 + log1mexp(log(erfcx(-z/√2) |z|) + c2)   -1/√eps < z <= -1
             = -z^2/2 - c1 - 2 log|z|                              z <= -1/√eps

with c1 = log(2π)/2 and c2 = log(π/2)/2. Its derivative is
d log h / dz = Phi(z) / h(z) (since h'(z) = Phi(z)), computed by region too.
"""

from __future__ import annotations

import numpy as np
from scipy import special

_C1 = 0.5 * np.log(2 * np.pi)
_C2 = 0.5 * np.log(np.pi / 2)
_TAIL = -1.0 / np.sqrt(np.finfo(float).eps)


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z Phi(z)), elementwise, for any real z."""
    return log_h_and_slope(z)[0]


def log_h_and_slope(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log h(z) and its slope d log h / dz = Phi(z) / h(z), elementwise, by the three
    regions of the module docstring, each function evaluated once.

    Above z = -1, h is computed directly (no cancellation there: h > 0.08).
    Below, with the Mills ratio m = Phi/phi = erfcx(-z/√2) √(π/2), the slope
    is m / (1 + z m), the denominator taken from the log1mexp of log h (never
    as a difference of two huge logarithms); in the far tail it is -z to
    double precision.
    """
    z = np.asarray(z, dtype=float)
    upper = z > -1.0
    if upper.all():  # the common case near the data: one region, no masks
        return _log_h_upper(z)
    value, slope = np.empty_like(z), np.empty_like(z)
    value[upper], slope[upper] = _log_h_upper(z[upper])
    middle = ~upper & (z > _TAIL)
    zm = z[middle]
    scaled = special.erfcx(-zm / np.sqrt(2))
    log1m = _log1mexp(np.log(scaled * np.abs(zm)) + _C2)
    value[middle] = -0.5 * zm * zm - _C1 + log1m
    slope[middle] = scaled * np.sqrt(np.pi / 2) * np.exp(-log1m)
    lower = z <= _TAIL
    zl = z[lower]
    value[lower] = -0.5 * zl * zl - _C1 - 2.0 * np.log(np.abs(zl))
    slope[lower] = -zl
    return value, slope


def _log_h_upper(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log h and its slope for z > -1, directly."""
    cdf = special.ndtr(z)
    h = np.exp(-0.5 * z * z - _C1) + z * cdf
    return np.log(h), cdf / h


def log_ei(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """log EI of points with posterior mean and std (m,), for minimization."""
    return log_h((best - mean) / std) + np.log(std)


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x < 0 (Mächler, 2012: two branches for accuracy)."""
    return np.where(x > -np.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
