"""scikit-optimize's GP-EI as a reference backend (see hpo.samplers.reference).

One ask: `skopt.Optimizer(base_estimator="GP", acq_func="EI",
n_initial_points=10, random_state=...)` over one dimension per coordinate,
`tell` with every completed trial, then `ask`. scikit-optimize has no
conditional spaces: an inactive coordinate (or one a trial lacks) is told
at a fixed value (the first choice, the middle of its range), and dropped
from the answer. A trial with none of the space's parameters is left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from hpo.direction import Direction
from hpo.errors import SamplerError
from hpo.records import FrozenTrial
from hpo.samplers import check
from hpo.samplers.reference import (
    SEEDS,
    active_params,
    from_library,
    grid_count,
    history,
    library_keys,
    present,
    quiet,
    require,
    to_library,
)
from hpo.space import Branch, Categorical, Param, Space

ACQUISITIONS = ("EI", "PI", "LCB", "gp_hedge")


class SkoptGPSampler:
    """scikit-optimize's Bayesian optimization: skopt.Optimizer with a GP and expected improvement.

    n_initial_points: random trials first; acq_func: "EI", "PI", "LCB" or
    "gp_hedge". Inactive coordinates are modelled at a fixed value (it has
    no conditional spaces). Running trials are not shown to it.
    """

    name = "skopt-gp"

    def __init__(self, n_initial_points: int = 10, acq_func: str = "EI") -> None:
        check.integer(self.name, "n_initial_points", n_initial_points, 1)
        if acq_func not in ACQUISITIONS:
            raise SamplerError(
                f"{self.name}: acq_func must be one of "
                f"{', '.join(map(repr, ACQUISITIONS))}, got {acq_func!r}"
            )
        self._skopt = require(self.name, "skopt", "scikit-optimize")
        self.n_initial_points, self.acq_func = n_initial_points, acq_func

    def check(self, space: Space) -> None:
        """Any space will do."""

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Direction = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        sign = direction.sign
        done = [(point, value) for point, value in history(space, trials)[0] if point]
        fixed = [_middle(dim.param) for dim in space.dims]  # (d,)
        with quiet():
            optimizer = self._skopt.Optimizer(
                _dimensions(self._skopt, space),
                base_estimator="GP",
                acq_func=self.acq_func,
                n_initial_points=self.n_initial_points,
                random_state=int(rng.integers(SEEDS)),
            )
            if done:
                xs = [_point(space, params, fixed) for params, _ in done]  # (n, d)
                optimizer.tell(xs, [sign * value for _, value in done])
            x = optimizer.ask()  # (d,)
        return active_params(space, lambda j, param: from_library(param, x[j]))


def _dimensions(skopt: ModuleType, space: Space) -> list[Any]:
    """One dimension per coordinate, built per ask (skopt.Optimizer sets their transforms)."""
    dimensions = []
    for dim, key in zip(space.dims, library_keys(space), strict=True):
        param = dim.param
        if isinstance(param, Branch | Categorical):
            n = len(param.choices)
            dimensions.append(skopt.space.Categorical(list(range(n)), name=key))
        elif (count := grid_count(param)) is not None:
            dimensions.append(skopt.space.Integer(0, count - 1, name=key))
        else:
            kind = skopt.space.Integer if param.type == "int" else skopt.space.Real
            dimensions.append(
                kind(
                    param.low, param.high, name=key, prior="log-uniform" if param.log else "uniform"
                )
            )
    return dimensions


def _middle(param: Param) -> Any:
    """Where an inactive coordinate is held: the first choice, or the middle of the range."""
    if isinstance(param, Branch | Categorical):
        return 0
    if (count := grid_count(param)) is not None:
        return (count - 1) // 2
    mid = math.sqrt(param.low * param.high) if param.log else (param.low + param.high) / 2
    return round(mid) if param.type == "int" else mid


def _point(space: Space, params: dict[str, Any], fixed: list[Any]) -> list[Any]:
    """A point of ours as skopt's x: its active values, the fixed ones elsewhere."""
    x = list(fixed)
    for j, param, value in present(space, params):
        x[j] = to_library(param, value)
    return x
