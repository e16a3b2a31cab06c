"""Exhaustive grid search: every point of the space's grid, each once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpo.direction import Direction
from hpo.errors import SamplerError, SamplerExhausted, SpaceError
from hpo.records import FrozenTrial
from hpo.samplers import check
from hpo.space import Space


@dataclass(frozen=True)
class _Grid:
    points: list[dict[str, Any]]
    index: dict[tuple[Any, ...], int]  # a point's key -> its position in `points`
    names: frozenset[str]


class GridSampler:
    """Every point of a grid, each once, then the study stops.

    Proposes grid points no trial has tried yet (in any state).

    `points`: values per float (and per int with more values than that);
    `values`: explicit values by parameter name; `shuffle`: visit the
    remaining points in random order (the default, so that a study stopped
    early has spread out) or in grid order.
    """

    multi_objective = True  # it does not read the values: any number of objectives

    def __init__(
        self,
        points: int = 10,
        values: Mapping[str, Sequence[Any]] | None = None,
        shuffle: bool = True,
    ) -> None:
        check.integer("grid", "points", points, 2)
        check.flag("grid", "shuffle", shuffle)
        if values is not None and not isinstance(values, Mapping):
            raise SamplerError("grid: values must map parameter names to lists of values")
        self.points = points
        self.values = dict(values or {})
        self.shuffle = shuffle
        self._grids: dict[Space, _Grid] = {}

    def check(self, space: Space) -> None:
        if len(space) == 0:
            raise SamplerError("the grid sampler needs a declared space")
        self._grid(space)

    def grid(self, space: Space) -> list[dict[str, Any]]:
        return self._grid(space).points

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Direction = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        grid = self._grid(space)
        tried = np.zeros(len(grid.points), dtype=bool)  # (n_points,)
        for trial in trials:
            position = grid.index.get(_key(trial.params, grid.names))
            if position is not None:
                tried[position] = True
        remaining = np.flatnonzero(~tried)
        if remaining.size == 0:
            raise SamplerExhausted(f"all {len(grid.points)} grid points have been evaluated")
        pick = remaining[int(rng.integers(remaining.size))] if self.shuffle else remaining[0]
        return dict(grid.points[pick])

    def _grid(self, space: Space) -> _Grid:
        if space not in self._grids:
            try:
                points = space.grid(self.points, self.values)
            except SpaceError as exc:
                raise SamplerError(f"grid: {exc}") from None
            names = frozenset(dim.param.name for dim in space.dims)
            index = {_key(point, names): i for i, point in enumerate(points)}
            self._grids[space] = _Grid(points, index, names)
        return self._grids[space]


def _key(params: Mapping[str, Any], names: frozenset[str]) -> tuple[Any, ...]:
    """A point as a hashable key; the type is kept so that 1, 1.0 and True differ."""
    return tuple(sorted((k, type(v).__name__, v) for k, v in params.items() if k in names))
