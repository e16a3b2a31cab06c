"""Samplers, looked up by name: a sampler proposes the next point to evaluate.

A sampler is pure: ``sampler.ask(space, trials, rng, direction) -> params``
reads the space, the study's trials (finished and running, as FrozenTrial
records) and a ``numpy.random.Generator``, and returns the active parameters
of one point. It never touches storage, so the same inputs give the same
point. ``sampler.check(space)`` refuses a space it cannot work on, before a
study is created. Adding a sampler is adding an entry to ``SAMPLERS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hpo.errors import SamplerError, did_you_mean
from hpo.samplers.grid import GridSampler
from hpo.samplers.random import RandomSampler
from hpo.space import Space
from hpo.trial import FrozenTrial


class Sampler(Protocol):
    def check(self, space: Space) -> None:
        """Raise SamplerError if the sampler cannot work on this space."""

    def ask(self, space: Space, trials: Sequence[FrozenTrial], rng: np.random.Generator,
            direction: str = "minimize") -> dict[str, Any]:
        """The next point: the active parameters of `space`."""


SAMPLERS: dict[str, Callable[..., Sampler]] = {
    "random": RandomSampler,
    "grid": GridSampler,
}


def make_sampler(name: str, options: Mapping[str, Any] | None = None) -> Sampler:
    """Build a sampler by name; unknown names and options raise SamplerError."""
    if name not in SAMPLERS:
        raise SamplerError(f"unknown sampler {name!r}{did_you_mean(name, SAMPLERS)}; "
                           f"available: {', '.join(SAMPLERS)}")
    factory = SAMPLERS[name]
    accepted = list(inspect.signature(factory).parameters)
    for key in options or {}:
        if key not in accepted:
            listed = ", ".join(accepted) if accepted else "none"
            raise SamplerError(f"sampler {name!r} has no option {key!r}"
                               f"{did_you_mean(key, accepted)}; its options: {listed}")
    return factory(**(options or {}))


def sampler_names() -> list[str]:
    return list(SAMPLERS)
