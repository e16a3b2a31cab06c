"""Data for self-organizing maps: synthetic shapes, and seeded splits of any (n, d) array.

The shapes are generated, never read, so tests and demos need no files:
a noisy line and a curve (for 1-D maps), a square, a ring and two blobs (for
2-D maps). Real data (a sample of MNIST digits, the Boston features) comes
from `models.datasets`; `split` and `subsample` take its arrays as they are.
`sine_wave` gives a map's initial weights laid along a sine wave, as the
text-style article lays its map over the text before training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class SOFMDataError(ValueError):
    """Impossible sizes or fractions for a shape or a split."""


def line(n: int, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """(n, 2) points along the segment from (0, 0) to (1, 0.5), plus Gaussian noise."""
    t = rng.uniform(0.0, 1.0, size=_count(n))  # (n,)
    return np.column_stack([t, 0.5 * t]) + noise * rng.standard_normal((n, 2))


def curve(n: int, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """(n, 2) points along half a sine period, (t, sin(π t) / 2) for t in [0, 1]."""
    t = rng.uniform(0.0, 1.0, size=_count(n))  # (n,)
    return np.column_stack([t, 0.5 * np.sin(np.pi * t)]) + noise * rng.standard_normal((n, 2))


def square(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) uniform in the unit square."""
    return rng.uniform(0.0, 1.0, size=(_count(n), 2))


def ring(n: int, rng: np.random.Generator, inner: float = 0.7) -> np.ndarray:
    """(n, 2) uniform in the annulus inner <= r <= 1 (area-uniform radius)."""
    if not 0.0 <= inner < 1.0:
        raise SOFMDataError(f"inner radius must be in [0, 1), got {inner}")
    angle = rng.uniform(0.0, 2.0 * np.pi, size=_count(n))  # (n,)
    r = np.sqrt(rng.uniform(inner**2, 1.0, size=n))  # P(r) ∝ r
    return np.column_stack([r * np.cos(angle), r * np.sin(angle)])


def blobs(n: int, rng: np.random.Generator, d: int = 2, spread: float = 0.15) -> np.ndarray:
    """(n, d) two Gaussian blobs of scale `spread` around ±(1, 0, ..., 0), half each."""
    centres = np.zeros((2, _count(d)))  # (2, d)
    centres[:, 0] = (-1.0, 1.0)
    which = np.arange(_count(n)) % 2  # (n,) alternating blobs
    return centres[which] + spread * rng.standard_normal((n, d))


SHAPES: dict[str, Callable[..., np.ndarray]] = {
    "line": line,
    "curve": curve,
    "square": square,
    "ring": ring,
    "blobs": blobs,
}


def sine_wave(rows: int, cols: int, low: np.ndarray, high: np.ndarray, turns: float) -> np.ndarray:
    """(rows * cols, 2) weights of a grid laid along a sine wave in the box [low, high] (2,):
    each row of the grid the same `turns` periods from left to right, as the text-style
    article initializes its 2 x 1000 map (its wave: 16 periods over the text)."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    t = np.linspace(0.0, 1.0, _count(cols))  # (cols,)
    height = (1.0 + np.sin(2.0 * np.pi * turns * t)) / 2.0  # (cols,) in [0, 1]
    wave = low + (high - low) * np.column_stack([t, height])  # (cols, 2)
    return np.tile(wave, (_count(rows), 1))


def split(
    x: np.ndarray,
    valid_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of the rows of `x` (n, d) into (train, valid), each non-empty."""
    x = np.asarray(x)
    if not 0.0 < valid_fraction < 1.0:
        raise SOFMDataError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    if len(x) < 2:
        raise SOFMDataError(f"a split needs at least 2 rows, got {len(x)}")
    n_valid = min(max(1, round(valid_fraction * len(x))), len(x) - 1)
    order = rng.permutation(len(x))
    return x[order[n_valid:]], x[order[:n_valid]]


def subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct rows of `x`, in a seeded random order (all of them if n >= len(x))."""
    x = np.asarray(x)
    return x[rng.permutation(len(x))[: _count(n)]]


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise SOFMDataError(f"sizes must be positive integers, got {n!r}")
    return int(n)
