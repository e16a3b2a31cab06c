"""A self-organizing feature map (Kohonen), trained with the batch map.

Notation (Kohonen 2013, "Essentials of the self-organizing map", Neural
Networks 37: 52-65):

    n    samples,  d  features,  m = rows * cols  units
    X    (n, d) data;   W (m, d) weights, one row per unit;   P (m, 2) unit positions
    c(x) the best-matching unit (BMU) of x: argmin_i dist(x, w_i)
    α, σ the step and the radius of one epoch (schedules, below; σ in grid units)
    h_ji the neighbourhood of unit i around unit j, from r = ||p_j - p_i||:
         gaussian exp(-r² / 2σ²);   bubble 1 if r <= σ else 0;   σ = 0: the BMU alone

An epoch of the batch map (Kohonen 2013, "the batch map"), with a step:

    w_i* = Σ_j n_j h_ji x̄_j / Σ_j n_j h_ji     n_j, x̄_j: count and mean of the samples c(x) = j
    w_i ← w_i + α (w_i* - w_i)                  α = 1 is Kohonen's batch map

With `batch_size`, an epoch is a pass over shuffled minibatches B instead,
each Kohonen's original stepwise rule w_i += α h_{c(x) i} (x - w_i) averaged
over B, so |B| = 1 is the classic online SOM.

Schedules give α and σ for the map's epoch e (counted from 0 across calls
to `fit` with `resume`, so a map trained one epoch at a time follows the
schedule as one trained in one call): a constant, a `Decay` from a start
to an end value over some epochs (`DECAYS`), or NeuPy's rules, which the
articles' maps use (`InverseTime`: α0 / (1 + e / k), its `reduce_step_after`;
`StepDown`: σ0 - ⌊e / k⌋ down to 0, its `reduce_radius_after`).

Grids: "rect" puts unit (row r, column c) at (c, r); "hex" shifts odd rows by
half a unit and spaces rows by √3/2, so every unit has 6 neighbours at
distance 1. A 1-D grid (one row or one column) is a line in either topology.
Grid neighbours are units at distance 1: 4 in "rect" (no diagonals), 6 in
"hex", as in the SOM Toolbox's topographic error.

Everything is float64: BMUs come from ||x||² - 2 x·w + ||w||², which loses
the small distances that decide first versus second BMU (and so the
topographic error) to cancellation in float32; the arrays are small anyway
(m units, distance tables computed `CHUNK_ELEMENTS` entries at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.training import EarlyStopping, Monitor

CHUNK_ELEMENTS = 1 << 20  # entries of one (samples, units) distance table: 8 MB of float64
ROW_SPACING_HEX = np.sqrt(3.0) / 2.0
NEIGHBOUR = 1.0 + 1e-9  # grid neighbours are at distance 1 (rounding slack)
TINY = 1e-12
OVERSAMPLE, POWER_ITERATIONS = 8, 4  # randomized PCA for the linear initialization


class SOFMError(ValueError):
    """A self-organizing map built or trained with impossible settings."""


# -- grids ----------------------------------------------------------------------


def rect_positions(rows: int, cols: int) -> np.ndarray:
    """(m, 2) positions (column, row) of the units, numbered row by row."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.column_stack([c, r]).astype(float)


def hex_positions(rows: int, cols: int) -> np.ndarray:
    """(m, 2) positions with odd rows shifted right by 1/2 and rows √3/2 apart."""
    if min(rows, cols) == 1:
        return rect_positions(rows, cols)
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.column_stack([c + 0.5 * (r % 2), r * ROW_SPACING_HEX])


TOPOLOGIES: dict[str, Callable[[int, int], np.ndarray]] = {
    "rect": rect_positions,
    "hex": hex_positions,
}


def grid_sq_distances(positions: np.ndarray) -> np.ndarray:
    """(m, m) squared distances between units on the grid."""
    diff = positions[:, None, :] - positions[None, :, :]  # (m, m, 2)
    return np.einsum("ijk,ijk->ij", diff, diff)


def grid_neighbours(positions: np.ndarray) -> np.ndarray:
    """(m, m) bool: units at distance 1 on the grid (rect: 4-connected, hex: 6)."""
    return (grid_sq_distances(positions) <= NEIGHBOUR**2) & ~np.eye(len(positions), dtype=bool)


# -- neighbourhoods and schedules -------------------------------------------------


def gaussian(d2: np.ndarray, radius: float) -> np.ndarray:
    if radius == 0:  # the limit: the BMU alone
        return (d2 == 0).astype(float)
    return np.exp(-d2 / (2.0 * radius**2))


def bubble(d2: np.ndarray, radius: float) -> np.ndarray:
    return (d2 <= radius**2 * NEIGHBOUR).astype(float)


NEIGHBOURHOODS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "gaussian": gaussian,
    "bubble": bubble,
}


def linear(start: float, end: float, t: float) -> float:
    """v(t) = v0 + (v1 - v0) t, with t = epoch / (epochs - 1) in [0, 1]."""
    return start + (end - start) * t


def exponential(start: float, end: float, t: float) -> float:
    """v(t) = v0 (v1 / v0)^t: a constant ratio per epoch."""
    return start * (end / start) ** t


def inverse(start: float, end: float, t: float) -> float:
    """v(t) = v0 / (1 + (v0 / v1 - 1) t): Kohonen's A / (B + epoch), ending at v1."""
    return start / (1.0 + (start / end - 1.0) * t)


DECAYS: dict[str, Callable[[float, float, float], float]] = {
    "linear": linear,
    "exponential": exponential,
    "inverse": inverse,
}


Schedule = Callable[[int], float]  # the map's epoch (from 0) -> step or radius


@dataclass(frozen=True)
class Decay:
    """From `start` to `end` by `rule` (`DECAYS`) over `epochs` epochs from epoch `first`;
    `start` before them and `end` after."""

    start: float
    end: float
    epochs: int
    rule: str = "linear"
    first: int = 0

    def __post_init__(self) -> None:
        _positive_int("epochs", self.epochs)
        _known("decay", self.rule, DECAYS)
        for name, value in (("start", self.start), ("end", self.end)):
            if not 0.0 < value < np.inf:
                raise SOFMError(f"a decay's {name} must be positive and finite, got {value}")

    def __call__(self, epoch: int) -> float:
        t = (epoch - self.first) / max(self.epochs - 1, 1)
        return DECAYS[self.rule](self.start, self.end, min(max(t, 0.0), 1.0))


@dataclass(frozen=True)
class InverseTime:
    """start / (1 + epoch / every): NeuPy's `reduce_step_after` (and `reduce_std_after`)."""

    start: float
    every: float

    def __post_init__(self) -> None:
        if not (0.0 < self.start < np.inf and 0.0 < self.every < np.inf):
            raise SOFMError(f"inverse time needs a positive start and every, got {self}")

    def __call__(self, epoch: int) -> float:
        return self.start / (1.0 + epoch / self.every)


@dataclass(frozen=True)
class StepDown:
    """max(floor, start - by ⌊epoch / every⌋): NeuPy's `reduce_radius_after` (by 1, to 0)."""

    start: float
    every: int
    by: float = 1.0
    floor: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("every", self.every)
        if not (0.0 <= self.floor <= self.start < np.inf and 0.0 <= self.by < np.inf):
            raise SOFMError(f"a step-down needs 0 <= floor <= start and by >= 0, got {self}")

    def __call__(self, epoch: int) -> float:
        return max(self.floor, self.start - self.by * (epoch // self.every))


# -- initializations --------------------------------------------------------------


def init_random(x: np.ndarray, positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(m, d) uniform in the data's bounding box."""
    return rng.uniform(x.min(axis=0), x.max(axis=0), size=(len(positions), x.shape[1]))


def init_sample(x: np.ndarray, positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(m, d) distinct samples (with replacement only if n < m)."""
    return x[rng.choice(len(x), size=len(positions), replace=len(x) < len(positions))].copy()


def init_pca(x: np.ndarray, positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(m, d) Kohonen's linear initialization: the grid laid on the first two components.

    Grid axes are scaled to [-1, 1]; the longer one follows the first principal
    component, the other the second, each times its standard deviation (as the
    SOM Toolbox's som_lininit). A 1-D grid lies on the first component.
    """
    mean = x.mean(axis=0)  # (d,)
    s, vt = principal_axes(x - mean, 2, rng)  # (k,), (k, d)
    std = s / np.sqrt(max(len(x) - 1, 1))  # (k,) standard deviation along each component
    half = (positions.max(axis=0) - positions.min(axis=0)) / 2.0  # (2,)
    grid = (positions - positions.min(axis=0) - half) / np.where(half > 0, half, 1.0)  # (m, 2)
    if half[1] > half[0]:
        grid = grid[:, ::-1]  # the longer axis first
    k = min(2, len(std))
    return mean + (grid[:, :k] * std[:k]) @ vt[:k]


def principal_axes(
    xc: np.ndarray,
    k: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Top k singular values (k,) and right singular vectors (k, d) of centred `xc` (n, d).

    Exact SVD for narrow data; otherwise randomized subspace iteration (Halko,
    Martinsson & Tropp 2011, Algorithm 4.4) on k + OVERSAMPLE columns, which
    costs a few (n, d) x (d, p) products instead of a full SVD.
    """
    p = k + OVERSAMPLE
    if min(xc.shape) <= p:
        _, s, vt = np.linalg.svd(xc, full_matrices=False)  # xc = U S Vᵀ
        return s[:k], vt[:k]
    q = np.linalg.qr(xc @ rng.standard_normal((xc.shape[1], p)))[0]  # (n, p)
    for _ in range(POWER_ITERATIONS):
        q = np.linalg.qr(xc.T @ q)[0]  # (d, p)
        q = np.linalg.qr(xc @ q)[0]  # (n, p), an orthonormal basis for xc's leading range
    _, s, vt = np.linalg.svd(q.T @ xc, full_matrices=False)  # (p, d) = Ũ S Vᵀ
    return s[:k], vt[:k]


INITS: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]] = {
    "random": init_random,
    "sample": init_sample,
    "pca": init_pca,
}


# -- distances and matching -------------------------------------------------------


def euclidean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(c, m) ||x - w|| from ||x||² - 2 x·w + ||w||², clipped at 0 against rounding."""
    d2 = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ w.T) + np.einsum("ij,ij->i", w, w)
    return np.sqrt(np.maximum(d2, 0.0))


def cosine(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(c, m) 1 - cos(x, w) = ||x̂ - ŵ||² / 2 for unit vectors x̂, ŵ."""
    return np.clip(1.0 - unit_rows(x) @ unit_rows(w).T, 0.0, 2.0)


DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "euclidean": euclidean,
    "cosine": cosine,
}


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), TINY)


def match(x: np.ndarray, w: np.ndarray, distance: str) -> tuple[np.ndarray, np.ndarray]:
    """First and second BMUs (n, 2) of every sample and its distance to the first (n,)."""
    n, m = len(x), len(w)
    units, dist = np.zeros((n, 2), dtype=np.intp), np.empty(n)
    size = max(1, CHUNK_ELEMENTS // m)
    for start in range(0, n, size):
        table = DISTANCES[distance](x[start : start + size], w)  # (c, m)
        if m > 1:  # position 0 holds the smallest, position 1 the second smallest
            units[start : start + size] = np.argpartition(table, 1, axis=1)[:, :2]
        dist[start : start + size] = table[np.arange(len(table)), units[start : start + size, 0]]
    return units, dist


def pooled(x: np.ndarray, bmu: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ_x h_{c(x) i} x  (m, d) and  Σ_x h_{c(x) i}  (m,).

    Through the per-unit sums (m² d) for many samples; for fewer samples than
    units, through the BMUs' rows of h (n m d): a minibatch of one costs m d,
    not m² d. h is symmetric, so row c(x) holds h_{c(x) i}.
    """
    m = len(h)
    if len(x) < m:
        rows = h[bmu]  # (n, m)
        return rows.T @ x, rows.sum(axis=0)
    counts = np.bincount(bmu, minlength=m).astype(float)  # (m,) n_j
    sums = np.zeros((m, x.shape[1]))
    np.add.at(sums, bmu, x)  # (m, d) n_j x̄_j
    return h.T @ sums, h.T @ counts


def batch_step(
    x: np.ndarray, w: np.ndarray, bmu: np.ndarray, h: np.ndarray, step: float
) -> np.ndarray:
    """w + α (w* - w), w* the neighbourhood-weighted means; units no sample reaches stay."""
    num, den = pooled(x, bmu, h)  # (m, d), (m,)
    reached = den > TINY
    target = np.where(reached[:, None], num / np.where(reached, den, 1.0)[:, None], w)
    return w + step * (target - w)


def online_step(
    x: np.ndarray, w: np.ndarray, bmu: np.ndarray, h: np.ndarray, step: float
) -> np.ndarray:
    """w_i + α / |B| Σ_x h_{c(x) i} (x - w_i), the online rule averaged over the batch."""
    num, den = pooled(x, bmu, h)  # (m, d), (m,)
    return w + step / len(x) * (num - den[:, None] * w)


# -- the map ------------------------------------------------------------------------


@dataclass
class EpochRecord:
    epoch: int  # the map's, from 0 (counting the epochs of earlier fits it resumed)
    step: float
    radius: float
    train_qe: float  # quantization error of the training data after this epoch
    valid_qe: float | None  # same on the validation data, if any
    topographic_error: float  # of the training data
    seconds: float  # this epoch's training and metrics


@dataclass
class History:
    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None  # by the monitored error (validation, else training)
    stopped: str | None = None  # "early stopping", "callback", or None after every epoch

    def column(self, name: str) -> np.ndarray:
        """(epochs,) one field of every record, None as NaN."""
        return np.array([np.nan if (v := getattr(r, name)) is None else v for r in self.records])


class SOFM:
    """A `rows` x `cols` Kohonen map; `weights` (m, d) exists once `fit` has run.

    init: a rule of `INITS` applied to the data, or the initial weights (m, d)
    themselves (the text-style article lays them along a sine wave).
    """

    def __init__(
        self,
        rows: int,
        cols: int = 1,
        *,
        topology: str = "rect",
        neighbourhood: str = "gaussian",
        distance: str = "euclidean",
        init: str | np.ndarray = "pca",
    ) -> None:
        _positive_int("rows", rows)
        _positive_int("cols", cols)
        for kind, name, registry in (
            ("topology", topology, TOPOLOGIES),
            ("neighbourhood", neighbourhood, NEIGHBOURHOODS),
            ("distance", distance, DISTANCES),
        ):
            _known(kind, name, registry)
        self.rows, self.cols, self.topology = int(rows), int(cols), topology
        self.neighbourhood, self.distance = neighbourhood, distance
        self.init = _initial(init, self.rows * self.cols)
        self.weights: np.ndarray | None = None
        self.epochs_trained = 0  # where a resumed fit's schedules go on from

    @property
    def positions(self) -> np.ndarray:
        """(m, 2) unit positions in grid units, numbered row by row."""
        return TOPOLOGIES[self.topology](self.rows, self.cols)

    def fit(
        self,
        x: np.ndarray,
        epochs: int,
        rng: np.random.Generator,
        *,
        step: float | Schedule = 1.0,
        radius: float | Schedule | None = None,
        batch_size: int | None = None,
        valid: np.ndarray | None = None,
        early_stopping: EarlyStopping | None = None,
        callback: Callable[[int, EpochRecord], bool | None] | None = None,
        resume: bool = False,
    ) -> History:
        """Train on `x` (n, d) for `epochs` epochs: from `init`, or from the current weights
        and epoch count with `resume` (a map never fitted starts from `init`).

        step (in (0, 1]) and radius (>= 0, grid units) are constants or schedules of the
        map's epoch; the default radius decays linearly from max(rows, cols) / 2 (at least
        1) to 1 over these epochs. `batch_size` switches to minibatch online updates.
        The monitored error is the validation quantization error if `valid` is given,
        else the training one; `early_stopping` (patience, min_delta) stops on it and, with
        restore_best, keeps the best epoch's weights; training also stops when
        `callback(epoch, record)` returns True. With cosine distance, samples are scaled to
        unit length first: the map learns directions.
        """
        x = self._prepare(_data(x, "x"))
        valid = None if valid is None else self._prepare(_data(valid, "valid", x.shape[1]))
        _positive_int("epochs", epochs)
        if batch_size is not None:
            _positive_int("batch_size", batch_size)
        resuming = resume and self.weights is not None
        if resuming and self._fitted().shape[1] != x.shape[1]:
            raise SOFMError(f"x has {x.shape[1]} features, the map {self._fitted().shape[1]}")
        first = self.epochs_trained if resuming else 0
        if radius is None:
            radius = Decay(max(max(self.rows, self.cols) / 2.0, 1.0), 1.0, epochs, first=first)
        schedule = _schedule(range(first, first + epochs), step, radius)  # checked before
        if not resuming:  # the map changes
            self.weights, self.epochs_trained = self._initial_weights(x, rng), 0
        return self._train(x, valid, schedule, batch_size, rng, Monitor(early_stopping), callback)

    def _train(
        self,
        x: np.ndarray,
        valid: np.ndarray | None,
        schedule: list[tuple[int, float, float]],
        batch_size: int | None,
        rng: np.random.Generator,
        monitor: Monitor,
        callback: Callable[[int, EpochRecord], bool | None] | None,
    ) -> History:
        weights = self._fitted()
        positions = self.positions
        d2, adjacent = grid_sq_distances(positions), grid_neighbours(positions)  # (m, m)
        units, _ = match(x, weights, self.distance)
        history, best_weights = History(), weights
        for epoch, alpha, sigma in schedule:
            start = time.perf_counter()
            h = NEIGHBOURHOODS[self.neighbourhood](d2, sigma)  # (m, m)
            if batch_size is None:
                weights = batch_step(x, weights, units[:, 0], h, alpha)
            else:
                weights = self._online_epoch(x, weights, h, alpha, batch_size, rng)
            units, dist = match(x, weights, self.distance)  # also next epoch's BMUs
            self.weights, self.epochs_trained = weights, epoch + 1
            valid_qe = None if valid is None else self.quantization_error(valid)
            record = EpochRecord(
                epoch,
                alpha,
                sigma,
                float(dist.mean()),
                valid_qe,
                _topographic(units, adjacent),
                time.perf_counter() - start,
            )
            history.records.append(record)
            if monitor.update(record.train_qe if valid_qe is None else valid_qe, epoch):
                history.best_epoch, best_weights = epoch, weights
            if callback is not None and callback(epoch, record):
                history.stopped = "callback"
                break
            if monitor.should_stop:
                history.stopped = "early stopping"
                break
        if monitor.restores:
            self.weights = best_weights
        return history

    def bmu(self, x: np.ndarray) -> np.ndarray:
        """(n,) index of each sample's best-matching unit."""
        return match(self._data(x), self._fitted(), self.distance)[0][:, 0]

    def quantization_error(self, x: np.ndarray) -> float:
        """Mean distance of the samples to their best-matching units."""
        return float(match(self._data(x), self._fitted(), self.distance)[1].mean())

    def topographic_error(self, x: np.ndarray) -> float:
        """Fraction of samples whose first and second BMUs are not grid neighbours.

        Kiviluoto 1996, "Topology preservation in self-organizing maps"; neighbours
        as in `grid_neighbours`. A one-unit map has no error.
        """
        units, _ = match(self._data(x), self._fitted(), self.distance)
        return _topographic(units, grid_neighbours(self.positions))

    def _online_epoch(
        self,
        x: np.ndarray,
        weights: np.ndarray,
        h: np.ndarray,
        alpha: float,
        batch_size: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = x[order[start : start + batch_size]]  # (b, d)
            bmu = match(batch, weights, self.distance)[0][:, 0]
            weights = online_step(batch, weights, bmu, h, alpha)
        return weights

    def _initial_weights(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(m, d) by the init rule, or a copy of the given weights (checked against x)."""
        if isinstance(self.init, str):
            return INITS[self.init](x, self.positions, rng)
        if self.init.shape[1] != x.shape[1]:
            raise SOFMError(
                f"x has {x.shape[1]} features, the initial weights {self.init.shape[1]}"
            )
        return self.init.copy()

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return unit_rows(x) if self.distance == "cosine" else x

    def _fitted(self) -> np.ndarray:
        if self.weights is None:
            raise SOFMError("the map has no weights yet: call fit first")
        return self.weights

    def _data(self, x: np.ndarray) -> np.ndarray:
        return _data(x, "x", self._fitted().shape[1])


def _topographic(units: np.ndarray, adjacent: np.ndarray) -> float:
    first, second = units[:, 0], units[:, 1]
    return float(np.mean(~(adjacent[first, second] | (first == second))))


def _known(kind: str, name: str, registry: dict) -> None:
    if name not in registry:
        raise SOFMError(f"unknown {kind} {name!r}; expected one of {', '.join(registry)}")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise SOFMError(f"{name} must be a positive integer, got {value!r}")


def _data(x: np.ndarray, name: str, d: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) == 0 or x.shape[1] == 0:
        raise SOFMError(f"{name} must be a non-empty (n, d) array, got shape {x.shape}")
    if d is not None and x.shape[1] != d:
        raise SOFMError(f"{name} has {x.shape[1]} features, the map {d}")
    if not np.isfinite(x).all():
        raise SOFMError(f"{name} has NaN or infinite values")
    return x


def _initial(init: str | np.ndarray, m: int) -> str | np.ndarray:
    """An init rule's name, or initial weights as a float (m, d) array of finite values."""
    if isinstance(init, str):
        _known("init", init, INITS)
        return init
    weights = np.array(init, dtype=float)  # a copy: later changes to the caller's array
    if weights.ndim != 2 or len(weights) != m or weights.shape[1] == 0:  # do not reach the map
        raise SOFMError(f"initial weights must be an ({m}, d) array, got shape {weights.shape}")
    if not np.isfinite(weights).all():
        raise SOFMError("initial weights have NaN or infinite values")
    return weights


def _schedule(
    epochs: range, step: float | Schedule, radius: float | Schedule
) -> list[tuple[int, float, float]]:
    """(epoch, step, radius) of every epoch, checked before any of them is trained."""
    rows = []
    for epoch in epochs:
        alpha = float(step(epoch) if callable(step) else step)
        sigma = float(radius(epoch) if callable(radius) else radius)
        if not 0.0 < alpha <= 1.0:
            raise SOFMError(f"step must be in (0, 1], got {alpha} at epoch {epoch}")
        if not 0.0 <= sigma < np.inf:
            raise SOFMError(f"radius must be >= 0 and finite, got {sigma} at epoch {epoch}")
        rows.append((epoch, alpha, sigma))
    return rows
