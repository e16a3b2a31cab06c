"""A self-organizing feature map (Kohonen), trained with the batch map.

Notation (Kohonen 2013, "Essentials of the self-organizing map", Neural
Networks 37: 52-65):

    n    samples,  d  features,  m = rows * cols  units
    X    (n, d) data;   W (m, d) weights, one row per unit;   P (m, 2) unit positions
    c(x) the best-matching unit (BMU) of x: argmin_i dist(x, w_i)
    α, σ the step and the radius of one epoch (`DECAYS`, in grid units)
    h_ji the neighbourhood of unit i around unit j, from r = ||p_j - p_i||:
         gaussian exp(-r² / 2σ²);   bubble 1 if r <= σ else 0

An epoch of the batch map (Kohonen 2013, "the batch map"), with a step:

    w_i* = Σ_j n_j h_ji x̄_j / Σ_j n_j h_ji     n_j, x̄_j: count and mean of the samples c(x) = j
    w_i ← w_i + α (w_i* - w_i)                  α = 1 is Kohonen's batch map

With `batch_size`, an epoch is a pass over shuffled minibatches B instead,
each Kohonen's original stepwise rule w_i += α h_{c(x) i} (x - w_i) averaged
over B, so |B| = 1 is the classic online SOM.

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
    """Σ_x h_{c(x) i} x  (m, d) and  Σ_x h_{c(x) i}  (m,), through the per-unit sums."""
    m = len(h)
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
    epoch: int  # from 0
    step: float
    radius: float
    train_qe: float  # quantization error of the training data after this epoch
    valid_qe: float | None  # same on the validation data, if any
    topographic_error: float  # of the training data
    seconds: float  # this epoch's training and metrics


@dataclass
class History:
    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1  # the epoch whose weights the map keeps
    stopped: str | None = None  # "patience", "callback", or None after every epoch

    def column(self, name: str) -> np.ndarray:
        """(epochs,) one field of every record, None as NaN."""
        return np.array([np.nan if (v := getattr(r, name)) is None else v for r in self.records])


class SOFM:
    """A `rows` x `cols` Kohonen map; `weights` (m, d) exists once `fit` has run."""

    def __init__(
        self,
        rows: int,
        cols: int = 1,
        *,
        topology: str = "rect",
        neighbourhood: str = "gaussian",
        distance: str = "euclidean",
        init: str = "pca",
    ) -> None:
        _positive_int("rows", rows)
        _positive_int("cols", cols)
        for kind, name, registry in (
            ("topology", topology, TOPOLOGIES),
            ("neighbourhood", neighbourhood, NEIGHBOURHOODS),
            ("distance", distance, DISTANCES),
            ("init", init, INITS),
        ):
            _known(kind, name, registry)
        self.rows, self.cols, self.topology = int(rows), int(cols), topology
        self.neighbourhood, self.distance, self.init = neighbourhood, distance, init
        self.weights: np.ndarray | None = None

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
        step: float = 1.0,
        step_end: float | None = None,
        radius: float | None = None,
        radius_end: float = 1.0,
        decay: str = "linear",
        batch_size: int | None = None,
        valid: np.ndarray | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
        callback: Callable[[int, EpochRecord], bool | None] | None = None,
    ) -> History:
        """Initialize from `x` (n, d) and train; keep the weights of the best epoch.

        Step and radius go from `step` to `step_end` (default: no decay) and from
        `radius` (default max(rows, cols) / 2, at least `radius_end`) to
        `radius_end` by `decay` over `epochs`; `batch_size` switches to minibatch
        online updates. "Best" is the lowest validation quantization error if
        `valid` is given, else training. Training stops early after `patience`
        epochs without an improvement of more than `min_delta`, or when
        `callback(epoch, record)` returns True (`weights` are then that epoch's).
        With cosine distance, samples are scaled to unit length first: the map
        learns directions.
        """
        x = self._prepare(_data(x, "x"))
        valid = None if valid is None else self._prepare(_data(valid, "valid", x.shape[1]))
        if radius is None:
            radius = max(max(self.rows, self.cols) / 2.0, radius_end)
        schedule = _schedule(epochs, decay, step, step_end, radius, radius_end)
        _check_options(batch_size, patience, min_delta)
        positions = self.positions
        d2, adjacent = grid_sq_distances(positions), grid_neighbours(positions)  # (m, m)
        self.weights = INITS[self.init](x, positions, rng)
        units, dist = match(x, self.weights, self.distance)
        history, best_weights, best, waited = History(), self.weights, np.inf, 0
        for epoch, (alpha, sigma) in enumerate(schedule):
            start = time.perf_counter()
            h = NEIGHBOURHOODS[self.neighbourhood](d2, sigma)  # (m, m)
            if batch_size is None:
                self.weights = batch_step(x, self.weights, units[:, 0], h, alpha)
            else:
                self.weights = self._online_epoch(x, h, alpha, batch_size, rng)
            units, dist = match(x, self.weights, self.distance)  # also next epoch's BMUs
            record = EpochRecord(
                epoch,
                alpha,
                sigma,
                float(dist.mean()),
                None if valid is None else self.quantization_error(valid),
                _topographic(units, adjacent),
                time.perf_counter() - start,
            )
            history.records.append(record)
            monitored = record.train_qe if valid is None else record.valid_qe
            if monitored < best - min_delta:
                best, best_weights, history.best_epoch, waited = monitored, self.weights, epoch, 0
            else:
                waited += 1
            if callback is not None and callback(epoch, record):
                history.stopped = "callback"
                break
            if patience is not None and waited >= patience:
                history.stopped = "patience"
                break
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
        self, x: np.ndarray, h: np.ndarray, alpha: float, batch_size: int, rng: np.random.Generator
    ) -> np.ndarray:
        w, order = self.weights, rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = x[order[start : start + batch_size]]  # (b, d)
            w = online_step(batch, w, match(batch, w, self.distance)[0][:, 0], h, alpha)
        return w

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


def _schedule(
    epochs: int, decay: str, step: float, step_end: float | None, radius: float, radius_end: float
) -> list[tuple[float, float]]:
    """(step, radius) of every epoch, with t = epoch / (epochs - 1) going from 0 to 1."""
    _positive_int("epochs", epochs)
    _known("decay", decay, DECAYS)
    step_end = step if step_end is None else step_end
    for name, value in (("step", step), ("step_end", step_end)):
        if not 0.0 < value <= 1.0:
            raise SOFMError(f"{name} must be in (0, 1], got {value}")
    for name, value in (("radius_end", radius_end), ("radius", radius)):
        if not 0.0 < value < np.inf:
            raise SOFMError(f"{name} must be positive and finite, got {value}")
    t = np.arange(epochs) / max(epochs - 1, 1)  # (epochs,)
    return [(DECAYS[decay](step, step_end, ti), DECAYS[decay](radius, radius_end, ti)) for ti in t]


def _check_options(batch_size: int | None, patience: int | None, min_delta: float) -> None:
    for name, value in (("batch_size", batch_size), ("patience", patience)):
        if value is not None:
            _positive_int(name, value)
    if not min_delta >= 0.0:
        raise SOFMError(f"min_delta must be non-negative, got {min_delta}")
