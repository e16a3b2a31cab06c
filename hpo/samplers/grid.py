"""Exhaustive grid search: every point of the space's grid, each once."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpo.errors import SamplerError, SamplerExhausted, SpaceError
from hpo.space import Space
from hpo.trial import FrozenTrial


class GridSampler:
    """Proposes grid points not yet tried (by any trial, in any state).

    `points`: values per float (and per int with more values than that);
    `values`: explicit values by parameter name; `shuffle`: visit the
    remaining points in random order (the default, so that a study stopped
    early has spread out) or in grid order.
    """

    def __init__(self, points: int = 10, values: Mapping[str, Sequence[Any]] | None = None,
                 shuffle: bool = True) -> None:
        if isinstance(points, bool) or not isinstance(points, int) or points < 2:
            raise SamplerError(f"grid: points must be an integer >= 2, got {points!r}")
        if not isinstance(shuffle, bool):
            raise SamplerError(f"grid: shuffle must be true or false, got {shuffle!r}")
        if values is not None and not isinstance(values, Mapping):
            raise SamplerError("grid: values must map parameter names to lists of values")
        self.points = points
        self.values = dict(values or {})
        self.shuffle = shuffle
        self._cache: dict[Space, list[dict[str, Any]]] = {}

    def grid(self, space: Space) -> list[dict[str, Any]]:
        if space not in self._cache:
            try:
                self._cache[space] = space.grid(self.points, self.values)
            except SpaceError as exc:
                raise SamplerError(f"grid: {exc}") from None
        return self._cache[space]

    def ask(self, space: Space, trials: Sequence[FrozenTrial], rng: np.random.Generator,
            direction: str = "minimize") -> dict[str, Any]:
        grid = self.grid(space)
        names = {dim.param.name for dim in space.dims}
        seen = {_key(trial.params, names) for trial in trials}
        remaining = [point for point in grid if _key(point, names) not in seen]
        if not remaining:
            raise SamplerExhausted(f"all {len(grid)} grid points have been evaluated")
        return dict(remaining[int(rng.integers(len(remaining)))] if self.shuffle
                    else remaining[0])


def _key(params: Mapping[str, Any], names: set[str]) -> str:
    return json.dumps({k: v for k, v in params.items() if k in names}, sort_keys=True)
