"""What the dashboard's charts show, computed from a study's trials on the server.

Each function takes the stored records (`FrozenTrial`, loaded once and kept
fresh by the server's Study) and returns a small JSON-ready dict whose size
does not grow with the study: the browser never receives 100,000 trials.

- history: every completed value when there are few; else, per bucket of
  consecutive trials, its lowest and highest value (the "min-max" decimation
  of time series plots: the envelope a full plot would draw, at 2 points per
  pixel column), plus the exact best-so-far steps (few: they change only on
  an improvement).
- a sample for slice plots and parallel coordinates: the best trials and an
  even stride through the rest, so the good region is always drawn.
- the empirical distribution of values at fixed quantiles, intermediate
  values of a bounded number of trials, the timeline of the latest trials.

- front: a study of several objectives, its completed trials' objective values
  (the Pareto front of the feasible ones in full, an even stride of the rest)
  and which are on the front.

The other charts draw a study of several objectives on its first objective
(they say so).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.direction import Direction
from hpo.records import FrozenTrial, TrialState
from hpo.space import Branch, Categorical, Numeric, Param

HISTORY_POINTS = 2000  # points of the history chart beyond which it is decimated
SAMPLE_POINTS = 1000  # trials drawn in slice plots and parallel coordinates
CURVES = 100  # trials whose intermediate values are drawn
CURVE_STEPS = 400  # steps drawn per curve
TIMELINE_TRIALS = 2000  # the latest trials on the timeline
FRONT_POINTS = 2000  # trials drawn on the Pareto front chart (the front itself always)
QUANTILES = 200  # points of the empirical distribution


class Completed:
    """The completed trials with a finite (first) value, by number, and those values as
    an array (n,): computed once per request and shared by the charts."""

    def __init__(self, trials: Sequence[FrozenTrial]) -> None:
        import numpy as np

        done = TrialState.COMPLETE
        kept = [t for t in trials if t.state is done and (t.value is not None or t.values)]
        values = np.array([_first(t) for t in kept], dtype=float)  # (n,)
        finite = np.isfinite(values)
        if not finite.all():
            kept = [t for t, ok in zip(kept, finite, strict=True) if ok]
            values = values[finite]
        self.trials = kept
        self.values = values
        self.numbers = np.array([t.number for t in kept], dtype=np.int64)  # (n,)

    def __len__(self) -> int:
        return len(self.trials)


def front(
    trials: Sequence[FrozenTrial], directions: Sequence[Direction], points: int = FRONT_POINTS
) -> dict[str, Any]:
    """The Pareto front chart: per objective (k columns) the values of the completed
    trials drawn, with their numbers and what each is: on the front (feasible and
    dominated by no feasible trial), feasible, or infeasible. Every front trial is
    drawn; past `points`, an even stride of the others."""
    import numpy as np

    from hpo.pareto import front_mask, losses

    k = len(directions)
    done = [
        t
        for t in trials
        if t.state is TrialState.COMPLETE
        and t.objective_values is not None
        and len(t.objective_values) == k
        and all(math.isfinite(v) for v in t.objective_values)
    ]
    feasible = np.array([t.feasible for t in done], dtype=bool)  # (n,)
    on_front = np.zeros(len(done), dtype=bool)
    if feasible.any():
        mine = np.flatnonzero(feasible)
        on_front[mine[front_mask(losses([done[i] for i in mine], directions))]] = True
    rest = np.flatnonzero(~on_front)
    room = max(points - int(on_front.sum()), 0)
    if len(rest) > room:
        rest = rest[np.linspace(0, len(rest) - 1, room).astype(np.int64)]
    drawn = np.union1d(np.flatnonzero(on_front), rest).astype(np.int64)
    return {
        "total": len(done),
        "shown": len(drawn),
        "front_size": int(on_front.sum()),
        "number": [done[i].number for i in drawn],
        "values": [[done[i].objective_values[j] for i in drawn] for j in range(k)],  # (k, m)
        "kind": [
            "front" if on_front[i] else "feasible" if feasible[i] else "infeasible" for i in drawn
        ],
    }


def _first(trial: FrozenTrial) -> float:
    if trial.value is not None:
        return trial.value
    return trial.objective_values[0] if trial.objective_values else math.nan


def history(
    done: Completed, direction: Direction, last: int | None, points: int = HISTORY_POINTS
) -> dict[str, Any]:
    """Completed values by trial number (decimated past `points`) and the best so far:
    the points where it improved."""
    import numpy as np

    n = len(done)
    kept = np.arange(n) if n <= points else _min_max(done.values, points // 2)
    running = direction.best_so_far(done.values)  # (n,)
    steps = np.flatnonzero(np.r_[True, running[1:] != running[:-1]]) if n else np.arange(0)
    return {
        "total": n,
        "shown": len(kept),
        "x": done.numbers[kept].tolist(),
        "y": done.values[kept].tolist(),
        "best_x": done.numbers[steps].tolist(),
        "best_y": running[steps].tolist(),
        "last": last,
    }


def _min_max(values: Any, buckets: int) -> Any:
    """Indices of the lowest and highest value in each of `buckets` runs of consecutive
    values, in order: what a plot of every point draws at that resolution."""
    import numpy as np

    edges = np.linspace(0, len(values), buckets + 1).astype(int)
    kept = []
    for start, stop in itertools.pairwise(edges):
        if stop > start:
            run = values[start:stop]
            kept += sorted({start + int(np.argmin(run)), start + int(np.argmax(run))})
    return np.array(kept, dtype=np.int64)


def sample(done: Completed, direction: Direction, size: int = SAMPLE_POINTS) -> Any:
    """Indices of at most `size` of the completed trials: the best fifth of them, then an
    even stride through all, in number order."""
    import numpy as np

    n = len(done)
    if n <= size:
        return np.arange(n)
    best = np.argsort(direction.sign * done.values, kind="stable")[: size // 5]
    spread = np.linspace(0, n - 1, size - len(best)).astype(np.int64)
    return np.union1d(best, spread)


def axis(param: Param) -> dict[str, Any]:
    """How the browser draws a parameter's axis."""
    if isinstance(param, Numeric):
        return {"name": param.name, "kind": "numeric", "low": param.low, "high": param.high,
                "log": param.log}  # fmt: skip
    choices = param.choices if isinstance(param, Categorical | Branch) else ()
    return {"name": param.name, "kind": "categorical", "choices": [str(c) for c in choices]}


def position(param: Param, value: Any) -> float | None:
    """A value's coordinate on its axis: itself (numeric) or its choice's index; None
    where the trial lacks the parameter (inactive in its branch)."""
    if value is None or not param.contains(value):
        return None
    if isinstance(param, Numeric):
        return float(value)
    return float(param.index(value))


def points(params: Sequence[Param], done: Completed, direction: Direction) -> dict[str, Any]:
    """The sample behind the slice plots and parallel coordinates: per trial its
    number, value and a coordinate per parameter."""
    chosen = sample(done, direction)
    trials = [done.trials[i] for i in chosen]
    return {
        "total": len(done),
        "shown": len(trials),
        "axes": [axis(p) for p in params],
        "numbers": [t.number for t in trials],
        "values": done.values[chosen].tolist(),
        "coords": [[position(p, t.params.get(p.name)) for t in trials] for p in params],
    }


def distribution(done: Completed, quantiles: int = QUANTILES) -> dict[str, Any]:
    """The empirical distribution function of the completed values at `quantiles`
    points: (value, fraction of trials at or below it)."""
    import numpy as np

    values = np.sort(done.values)  # (n,)
    n = len(values)
    at = np.arange(n) if n <= quantiles else np.linspace(0, n - 1, quantiles).round()
    at = at.astype(np.int64)
    return {"total": n, "x": values[at].tolist(), "y": ((at + 1) / max(n, 1)).tolist()}


def curves(trials: Sequence[FrozenTrial], count: int = CURVES) -> dict[str, Any]:
    """Intermediate values of the latest `count` trials that reported any, each cut to
    CURVE_STEPS evenly spaced steps (the last one kept); pruned ones flagged."""
    reporting = [t for t in trials if t.intermediate]
    shown = []
    for trial in reporting[-count:]:
        steps = sorted(trial.intermediate)
        if len(steps) > CURVE_STEPS:
            stride = len(steps) / CURVE_STEPS
            steps = [steps[int(i * stride)] for i in range(CURVE_STEPS)] + [steps[-1]]
        shown.append(
            {
                "number": trial.number,
                "state": str(trial.state),
                "steps": steps,
                "values": [_finite(trial.intermediate[s]) for s in steps],
            }
        )
    return {"total": len(reporting), "trials": shown}


def timeline(
    trials: Sequence[FrozenTrial], now: float, count: int = TIMELINE_TRIALS
) -> dict[str, Any]:
    """The latest `count` trials that started, as bars per worker (a running one ends
    now), in columns, seconds from the first start: idle workers show as gaps,
    stragglers as long bars."""
    started = [t for t in trials if t.started_at is not None][-count:]
    workers = sorted({t.worker or "-" for t in started})
    row = {name: i for i, name in enumerate(workers)}
    origin = min((t.started_at or now for t in started), default=now)
    return {
        "total": sum(t.started_at is not None for t in trials),
        "origin": origin,
        "workers": workers,
        "number": [t.number for t in started],
        "worker": [row[t.worker or "-"] for t in started],
        "start": [round((t.started_at or now) - origin, 3) for t in started],
        "end": [round((t.finished_at or now) - origin, 3) for t in started],
        "state": [str(t.state) for t in started],
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def filtered(
    trials: Sequence[FrozenTrial],
    param: Param,
    op: str,
    operand: str,
) -> list[FrozenTrial]:
    """The trials whose parameter `param` compares to `operand` as `op` says
    ("=", "!=", "<", "<=", ">", ">="; numbers compare as numbers, choices as text)."""
    if isinstance(param, Numeric):
        bound = float(operand)
        return [t for t in trials if _compare(t.params.get(param.name), op, bound)]
    if op not in ("=", "!="):
        raise ValueError(f"a choice compares with = or !=, got {op!r}")
    want = op == "="
    return [
        t
        for t in trials
        if param.name in t.params and (str(t.params[param.name]) == operand) == want
    ]


_OPS: Mapping[str, Any] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(value: Any, op: str, bound: float) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return bool(_OPS[op](float(value), bound))


def sorted_by_param(
    trials: Sequence[FrozenTrial], name: str, descending: bool
) -> list[FrozenTrial]:
    """Trials by a parameter's value (those without it last, ties by number)."""
    having = [t for t in trials if name in t.params]
    lacking = [t for t in trials if name not in t.params]
    having.sort(key=lambda t: t.number)
    having.sort(key=lambda t: _sort_key(t.params[name]), reverse=descending)
    return having + lacking


def _sort_key(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def page(
    trials: Sequence[FrozenTrial],
    direction: Direction,
    states: Sequence[TrialState],
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[FrozenTrial], int]:
    """A page of `trials` in memory (for what the database cannot sort or filter on:
    parameters): states kept, sorted as Storage.page sorts ("value" best first,
    "param:NAME" by that parameter), cut; and how many the filter keeps."""
    kept = [t for t in trials if not states or t.state in states]
    if sort.startswith("param:"):
        ordered = sorted_by_param(kept, sort.removeprefix("param:"), descending)
    else:
        ordered = sorted(kept, key=lambda t: t.number)
        key = _value_key(direction) if sort == "value" else _duration_key
        keyed = [(key(t), t) for t in ordered]
        having = [(k, t) for k, t in keyed if k is not None]
        having.sort(key=lambda kt: kt[0], reverse=descending)  # (stable: ties by number)
        ordered = [t for _, t in having] + [t for k, t in keyed if k is None]
    return ordered[offset : offset + limit], len(kept)


def _value_key(direction: Direction) -> Any:
    def key(t: FrozenTrial) -> float | None:
        value = _first(t)
        return None if math.isnan(value) else direction.loss(value)

    return key


def _duration_key(t: FrozenTrial) -> float | None:
    return t.duration
