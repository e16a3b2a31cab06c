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

from hpo.direction import Direction
from hpo.errors import SamplerError, did_you_mean
from hpo.records import FrozenTrial
from hpo.samplers.gp import GPSampler
from hpo.samplers.grid import GridSampler
from hpo.samplers.qmc import HaltonSampler, SobolSampler
from hpo.samplers.random import RandomSampler
from hpo.samplers.reference_hyperopt import HyperoptTPESampler
from hpo.samplers.reference_optuna import OptunaGPSampler, OptunaQMCSampler, OptunaTPESampler
from hpo.samplers.reference_skopt import SkoptGPSampler
from hpo.samplers.tpe import TPESampler
from hpo.space import Space


class Sampler(Protocol):
    def check(self, space: Space) -> None:
        """Raise SamplerError if the sampler cannot work on this space."""

    def ask(
        self,
        space: Space,
        trials: Sequence[FrozenTrial],
        rng: np.random.Generator,
        direction: Direction = Direction.MINIMIZE,
    ) -> dict[str, Any]:
        """The next point: the active parameters of `space`."""


SAMPLERS: dict[str, Callable[..., Sampler]] = {
    "random": RandomSampler,
    "grid": GridSampler,
    "sobol": SobolSampler,
    "halton": HaltonSampler,
    "tpe": TPESampler,
    "gp": GPSampler,
    # reference backends: the libraries ours follow (pip install 'hpo[reference]')
    "optuna-tpe": OptunaTPESampler,
    "optuna-qmc": OptunaQMCSampler,
    "optuna-gp": OptunaGPSampler,
    "hyperopt-tpe": HyperoptTPESampler,
    "skopt-gp": SkoptGPSampler,
}

_STUDY_SEED = "seed"  # a factory parameter of this name receives the study's seed


def make_sampler(name: str, options: Mapping[str, Any] | None = None, seed: int = 0) -> Sampler:
    """Build a sampler by name for a study with this seed.

    Unknown names and options raise SamplerError, and so do bad option values
    (each sampler checks its own).
    """
    if name not in SAMPLERS:
        raise SamplerError(
            f"unknown sampler {name!r}{did_you_mean(name, SAMPLERS)}; "
            f"available: {', '.join(SAMPLERS)}"
        )
    factory = SAMPLERS[name]
    accepted = [option for option, _ in sampler_options(name)]
    for key in options or {}:
        if key not in accepted:
            listed = ", ".join(accepted) if accepted else "none"
            raise SamplerError(
                f"sampler {name!r} has no option {key!r}"
                f"{did_you_mean(key, accepted)}; its options: {listed}"
            )
    extra = {_STUDY_SEED: seed} if _STUDY_SEED in inspect.signature(factory).parameters else {}
    return factory(**(options or {}), **extra)


def sampler_options(name: str) -> list[tuple[str, Any]]:
    """A sampler's options and their defaults, as the study file sets them."""
    parameters = inspect.signature(SAMPLERS[name]).parameters.values()
    return [
        (p.name, None if p.default is p.empty else p.default)
        for p in parameters
        if p.name != _STUDY_SEED and p.kind is not p.VAR_KEYWORD
    ]


def sampler_summary(name: str) -> str:
    """The first line of the sampler's docstring."""
    doc = inspect.getdoc(SAMPLERS[name]) or ""
    return doc.splitlines()[0] if doc else ""


def sampler_names() -> list[str]:
    return list(SAMPLERS)
