"""Several objectives: dominance, the Pareto front, and the hypervolume.

Everything here works on losses: each objective's value times its direction's
sign, so that lower is better in every column. A point a dominates b when it
is no worse in every objective and better in one.

The hypervolume of a set of points is the volume of the region they dominate
that is bounded by a reference point r (worse than every point in every
objective) — Zitzler & Thiele (1998). Exact here:

    2 objectives: sort by the first loss, sum the rectangles          O(n log n)
    3 objectives: sweep the third loss upwards, keeping the 2-D front of the
                  points passed and the area it dominates (a slice of the
                  volume between consecutive third losses)              O(n^2)
    more:         recursive slicing by the last objective (HSO; While et al.,
                  2006), exponential in the number of objectives: fine for 4-5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hpo.direction import Direction

if TYPE_CHECKING:
    from hpo.records import FrozenTrial

SMALL_FRONT = 64  # up to this many points, dominance by an (n, n) comparison
BLOCK = 512  # past it, points are screened against the front found so far this many at once
REFERENCE_MARGIN = 0.1  # a derived reference point: the worst loss plus 10% of the range


def losses(trials: Sequence[FrozenTrial], directions: Sequence[Direction]) -> np.ndarray:
    """(n, k): the trials' values as losses (lower is better in every column)."""
    signs = np.array([d.sign for d in directions])  # (k,)
    values = np.array([t.values for t in trials], dtype=float).reshape(len(trials), len(signs))
    return values * signs


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether loss vector a (k,) dominates b (k,)."""
    return bool(np.all(a <= b) and np.any(a < b))


def front_mask(points: np.ndarray) -> np.ndarray:
    """(n,) True for the points (n, k) that no other point dominates; of equal points
    every copy is kept."""
    n = len(points)
    if n <= SMALL_FRONT:  # one comparison of every pair: no Python loop
        below = np.all(points[:, None, :] <= points[None, :, :], axis=2)  # (n, n): i <= j
        strictly = np.any(points[:, None, :] < points[None, :, :], axis=2)
        return ~np.any(below & strictly, axis=0)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(points.T[::-1])  # by the first loss, then the next: a dominator first
    front: list[int] = []
    for start in range(0, n, BLOCK):
        block = order[start : start + BLOCK]
        if front:  # most points fall to the front so far, in one comparison (b, m, k)
            kept, those = points[front][None, :, :], points[block][:, None, :]
            beaten = np.any(np.all(kept <= those, axis=2) & np.any(kept < those, axis=2), axis=1)
            keep[block[beaten]] = False
            block = block[~beaten]
        for i in block:  # the rest one by one, in order: the front grows as they pass
            p = points[i]
            if front:
                kept = points[front]  # (m, k)
                if np.any(np.all(kept <= p, axis=1) & np.any(kept < p, axis=1)):
                    keep[i] = False
                    continue
            front.append(int(i))
    return keep


def pareto_front(
    trials: Sequence[FrozenTrial], directions: Sequence[Direction]
) -> list[FrozenTrial]:
    """The trials no other dominates, in number order (give completed, feasible ones)."""
    if not trials:
        return []
    mask = front_mask(losses(trials, directions))
    return [t for t, kept in zip(trials, mask, strict=True) if kept]


def reference_point(points: np.ndarray) -> np.ndarray:
    """(k,): a reference point derived from the points (n, k): each objective's worst
    loss, plus 10% of its range (at least an absolute 1e-9), so that every point of
    the front, its extremes included, adds volume."""
    worst, best = points.max(axis=0), points.min(axis=0)
    return worst + np.maximum(REFERENCE_MARGIN * (worst - best), 1e-9)


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The volume dominated by `points` (n, k) inside `reference` (k,); points not
    strictly better than the reference in every objective add nothing."""
    points = np.asarray(points, dtype=float)
    reference = np.asarray(reference, dtype=float)
    inside = points[np.all(points < reference, axis=1)]
    if len(inside) == 0:
        return 0.0
    inside = inside[front_mask(inside)]
    k = inside.shape[1]
    if k == 1:
        return float(reference[0] - inside[:, 0].min())
    if k == 2:
        return _hv2(inside, reference)
    if k == 3:
        return _hv3(inside, reference)
    return _hv_slicing(inside, reference)


def _hv2(points: np.ndarray, reference: np.ndarray) -> float:
    """Points (n, 2) inside the reference: sorted by the first loss, the area under the
    running minimum of the second (dominated points add nothing to it)."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    x, y = points[order, 0], np.minimum.accumulate(points[order, 1])  # (n,), y falling
    widths = np.diff(np.append(x, reference[0]))  # (n,)
    return float(np.sum(widths * (reference[1] - y)))


def _hv3(points: np.ndarray, reference: np.ndarray) -> float:
    """Sweep the third loss upwards; between consecutive z the slice's area is the 2-D
    hypervolume of the points passed so far."""
    order = np.argsort(points[:, 2], kind="stable")
    xy, z = points[order, :2], points[order, 2]  # (n, 2), (n,)
    tops = np.append(z[1:], reference[2])  # (n,)
    volume = 0.0
    for i in np.flatnonzero(tops > z):
        volume += _hv2(xy[: i + 1], reference[:2]) * (tops[i] - z[i])
    return volume


def _hv_slicing(points: np.ndarray, reference: np.ndarray) -> float:
    """More objectives: slice along the last one, recursing on the others."""
    order = np.argsort(points[:, -1])
    points = points[order]
    volume = 0.0
    for i in range(len(points)):
        top = points[i + 1, -1] if i + 1 < len(points) else reference[-1]
        if top > points[i, -1]:
            volume += hypervolume(points[: i + 1, :-1], reference[:-1]) * (top - points[i, -1])
    return volume


def hypervolume_history(
    trials: Sequence[FrozenTrial], directions: Sequence[Direction], reference: np.ndarray
) -> np.ndarray:
    """(n,): the hypervolume of the completed feasible trials after each of `trials`.

    The front is kept as trials come: a point that a point of the front weakly
    dominates adds no volume (nothing is recomputed); any other replaces the
    points it weakly dominates, and the volume of the new front is computed.
    """
    out = np.zeros(len(trials))
    front = np.empty((0, len(directions)))  # (m, k): losses, mutually non-dominated
    volume = 0.0
    for i, trial in enumerate(trials):
        if trial.values is not None and trial.state.value == "COMPLETE" and trial.feasible:
            point = losses([trial], directions)[0]  # (k,)
            if not np.any(np.all(front <= point, axis=1)):
                front = np.vstack([front[~np.all(point <= front, axis=1)], point])
                volume = hypervolume(front, reference)
        out[i] = volume
    return out


# -- what the samplers rank trials by ---------------------------------------------------


def nondominated_ranks(
    points: np.ndarray, violation: np.ndarray | None = None, needed: int | None = None
) -> np.ndarray:
    """(n,) the non-domination rank of each point (n, k), 0 for the front: fast
    non-dominated sorting (Deb, Pratap, Agarwal & Meyarivan, 2002, "A fast and elitist
    multiobjective genetic algorithm: NSGA-II", section III-A), front by front.

    With `violation` (n,) (total constraint violation, 0 when feasible), by
    constrained domination (Deb, 2000, and NSGA-II's section IV): a feasible
    point beats an infeasible one, and of two infeasible points the one of
    smaller violation wins; the infeasible are ranked after every feasible
    front, each distinct violation its own rank. `needed`: stop once that many
    points are ranked; the others get rank n (a caller that wants only the best).
    """
    n = len(points)
    ranks = np.full(n, n, dtype=int)
    feasible = np.ones(n, dtype=bool) if violation is None else violation <= 0
    left = np.flatnonzero(feasible)
    rank, placed = 0, 0
    while len(left) and (needed is None or placed < needed):
        front = front_mask(points[left])
        ranks[left[front]] = rank
        placed += int(front.sum())
        left, rank = left[~front], rank + 1
    if violation is not None and (needed is None or placed < needed):
        infeasible = np.flatnonzero(~feasible)
        _, order = np.unique(violation[infeasible], return_inverse=True)
        ranks[infeasible] = rank + order.ravel()
    return ranks


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """(m,) the crowding distance of each point of one front (m, k) (Deb et al. 2002,
    section III-B): per objective, sorted, the gap between a point's two neighbours
    over the objective's range, summed; the extremes of each objective get inf."""
    m, k = points.shape
    distance = np.zeros(m)
    if m <= 2:
        return np.full(m, np.inf)
    for j in range(k):
        order = np.argsort(points[:, j], kind="stable")
        f = points[order, j]  # (m,) ascending
        distance[order[[0, -1]]] = np.inf
        span = f[-1] - f[0]
        if span > 0:
            distance[order[1:-1]] += (f[2:] - f[:-2]) / span
    return distance


def hypervolume_contributions(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(n,) what each point (n, k) alone adds to the hypervolume: HV(all) - HV(all but it)."""
    total = hypervolume(points, reference)
    keep = np.ones(len(points), dtype=bool)
    out = np.empty(len(points))
    for i in range(len(points)):
        keep[i] = False
        out[i] = total - hypervolume(points[keep], reference)
        keep[i] = True
    return np.maximum(out, 0.0)


def hypervolume_subset(points: np.ndarray, reference: np.ndarray, size: int) -> np.ndarray:
    """Indices of `size` of the points (n, k) chosen greedily for the largest hypervolume
    (the hypervolume subset selection problem, solved greedily as MOTPE does: Ozaki et
    al., 2022, JAIR 73, section 4.2, after Guerreiro, Fonseca & Paquete, 2016): each step
    adds the point that adds the most, the first on a tie.

    Lazily (Minoux's accelerated greedy): what a point adds can only shrink as the
    set grows (the hypervolume is submodular), so a point's last computed gain
    bounds its gain now; the best bound is recomputed until it stays the best.
    """
    n = len(points)
    chosen: list[int] = []
    bound = np.prod(np.maximum(reference - points, 0.0), axis=1)  # (n,) each point alone
    fresh = np.zeros(n, dtype=int) - 1  # the step each bound was computed at
    base = 0.0
    while len(chosen) < min(size, n):
        step = len(chosen)
        while True:
            i = int(np.argmax(bound))  # the first of the largest
            if fresh[i] == step:
                break
            bound[i] = hypervolume(points[[*chosen, i]], reference) - base
            fresh[i] = step
        chosen.append(i)
        base += bound[i]
        bound[i] = -np.inf
    return np.array(chosen, dtype=int)
