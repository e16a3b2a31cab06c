"""Quasi-random search: scrambled Sobol and Halton sequences (scipy.stats.qmc).

The n-th sampled trial of a study takes the n-th point of the sequence, so a
resumed study continues the sequence where it stopped. The scramble is fixed
by the study's seed and the space. Coordinates of inactive parameters are
drawn and ignored, so branches are covered through the encoding.
"""

from __future__ import annotations

import json
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import qmc

from hpo.direction import Direction
from hpo.records import FrozenTrial
from hpo.samplers import check
from hpo.space import Space
from hpo.streams import Purpose, stream

# Beyond these dimensions the sequences lose most of their edge over random
# points at the budgets hyperparameter searches use (a few hundred points):
# Halton's projections on high-index coordinate pairs correlate, and Sobol
# needs ~2^d points to balance d coordinates.
WELL_HANDLED_DIMS = {"sobol": 40, "halton": 20}
_WARNED: set[tuple[str, int]] = set()


class _QMCSampler:
    kind = "sobol"
    multi_objective = True  # it does not read the values: any number of objectives

    def __init__(self, scramble: bool = True, seed: int = 0) -> None:
        check.flag(self.kind, "scramble", scramble)
        self.scramble = scramble
        self._seed = seed
        self._engines: dict[Space, tuple[qmc.QMCEngine, int]] = {}  # engine, next index

    def check(self, space: Space) -> None:
        limit = WELL_HANDLED_DIMS[self.kind]
        if len(space) > limit and (self.kind, len(space)) not in _WARNED:
            _WARNED.add((self.kind, len(space)))  # once per process, not per check
            warnings.warn(
                f"{self.kind}: the space has {len(space)} coordinates; beyond "
                f"{limit} the sequence does little better than random search",
                stacklevel=2,
            )

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Direction = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        index = sum(1 for t in trials if t.sample_index is not None)
        return space.decode(self._point(space, index))

    def _point(self, space: Space, index: int) -> np.ndarray:
        """The index-th point of this space's sequence, shape (d,)."""
        engine, position = self._engines.get(space, (None, 0))
        if engine is None or index < position:
            engine, position = self._engine(space), 0
        if index > position:  # (scipy's Sobol refuses a fast-forward by 0)
            engine.fast_forward(index - position)
        with warnings.catch_warnings():  # one point at a time is the point of it
            warnings.simplefilter("ignore", UserWarning)
            point = engine.random(1)[0]
        self._engines[space] = (engine, index + 1)
        return point

    def _engine(self, space: Space) -> qmc.QMCEngine:
        # Each space gets its own scramble: a parameter added by suggest_* has
        # a one-dimensional space of its own and must not copy another's draws.
        tag = zlib.crc32(json.dumps(space.to_spec(), sort_keys=True).encode())
        rng = stream(self._seed, Purpose.STARTUP, tag)
        if self.kind == "sobol":
            return qmc.Sobol(len(space), scramble=self.scramble, rng=rng)
        return qmc.Halton(len(space), scramble=self.scramble, rng=rng)


class SobolSampler(_QMCSampler):
    """Scrambled Sobol' sequence: low-discrepancy points over the space."""

    kind = "sobol"


class HaltonSampler(_QMCSampler):
    """Scrambled Halton sequence: low-discrepancy points over the space."""

    kind = "halton"
