"""Uniform random search over the space's unit-cube encoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hpo.direction import Direction
from hpo.records import FrozenTrial
from hpo.space import Space


class RandomSampler:
    """Uniform random search.

    Each coordinate uniform on [0, 1); the space maps it to a value.

    Log-scaled parameters are therefore log-uniform, integers and steps
    equally likely, categoricals and branches uniform over their choices.
    """

    multi_objective = True  # it does not read the values: any number of objectives

    def check(self, space: Space) -> None:
        """Any space will do."""

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Direction = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        return space.decode(rng.random(len(space)))
