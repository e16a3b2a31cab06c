"""Samplers, looked up by name: a sampler proposes the next point to evaluate.

A sampler is pure: ``sampler.ask(space, trials, rng, direction) -> params``
reads the space, the study's trials (finished and running, as FrozenTrial
records) and a ``numpy.random.Generator``, and returns the active parameters
of one point. It never touches storage, so the same inputs give the same
point. ``sampler.check(space)`` refuses a space it cannot work on, before a
study is created. Adding a sampler is adding an entry to ``SAMPLERS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from hpo.direction import Direction
from hpo.errors import SamplerError
from hpo.records import FrozenTrial
from hpo.registry import Registry
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


SAMPLERS = Registry(
    "sampler",
    {
        "random": "hpo.samplers.random:RandomSampler",
        "grid": "hpo.samplers.grid:GridSampler",
        "sobol": "hpo.samplers.qmc:SobolSampler",
        "halton": "hpo.samplers.qmc:HaltonSampler",
        "tpe": "hpo.samplers.tpe:TPESampler",
        "gp": "hpo.samplers.gp:GPSampler",
        "nsga2": "hpo.samplers.nsga2:NSGA2Sampler",
        # reference backends: the libraries ours follow (pip install 'hpo[reference]')
        "optuna-tpe": "hpo.samplers.reference_optuna:OptunaTPESampler",
        "optuna-qmc": "hpo.samplers.reference_optuna:OptunaQMCSampler",
        "optuna-gp": "hpo.samplers.reference_optuna:OptunaGPSampler",
        "optuna-nsga2": "hpo.samplers.reference_optuna:OptunaNSGA2Sampler",
        "hyperopt-tpe": "hpo.samplers.reference_hyperopt:HyperoptTPESampler",
        "skopt-gp": "hpo.samplers.reference_skopt:SkoptGPSampler",
    },
    SamplerError,
    context=frozenset({"seed"}),  # a factory parameter `seed` receives the study's seed
)
check = SAMPLERS.check  # the option checks samplers use: check.integer("tpe", ...)
DEFAULT_SAMPLER = "tpe"  # as in Optuna; a study keeps the sampler it was created with


def make_sampler(name: str, options: Mapping[str, Any] | None = None, seed: int = 0) -> Sampler:
    """Build a sampler by name for a study with this seed (see Registry.make)."""
    sampler: Sampler = SAMPLERS.make(name, options, seed=seed)
    return sampler


def check_objectives(sampler: Sampler, name: str, n_objectives: int) -> None:
    """A study of several objectives needs a sampler made for them (its class says so
    with `multi_objective = True`, and `max_objectives` if it has a limit);
    SamplerError otherwise, naming those that are."""
    if n_objectives > 1 and not getattr(sampler, "multi_objective", False):
        able = [n for n in SAMPLERS if getattr(SAMPLERS.factory(n), "multi_objective", False)]
        raise SamplerError(
            f"sampler {name!r} optimizes one objective; with {n_objectives} objectives use "
            f"one of {', '.join(able)}"
        )
    limit = getattr(sampler, "max_objectives", None)
    if limit is not None and n_objectives > limit:
        raise SamplerError(
            f"sampler {name!r} takes at most {limit} objectives, not {n_objectives}; "
            "use nsga2, tpe or random"
        )


def sampler_options(name: str) -> list[tuple[str, Any]]:
    """A sampler's options and their defaults, as the study file sets them."""
    return SAMPLERS.options(name)


def sampler_summary(name: str) -> str:
    return SAMPLERS.summary(name)


def sampler_names() -> list[str]:
    return SAMPLERS.names()


# Optuna's class names, so that `hpo.samplers.TPESampler(seed=1)` works where
# `optuna.samplers.TPESampler(seed=1)` did; loaded when first used.
_CLASSES = {
    "RandomSampler": "random",
    "GridSampler": "grid",
    "SobolSampler": "sobol",
    "HaltonSampler": "halton",
    "TPESampler": "tpe",
    "GPSampler": "gp",
    "NSGAIISampler": "nsga2",
}
_NOT_IN_HPO = {
    "CmaEsSampler": "'gp' (few trials) or 'tpe'",
    "NSGAIIISampler": "NSGAIISampler ('nsga2'), 'tpe' or 'gp'",
    "QMCSampler": "SobolSampler or HaltonSampler ('sobol', 'halton')",
    "BruteForceSampler": "GridSampler ('grid')",
    "PartialFixedSampler": "study.enqueue_trial with the fixed parameters",
}


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return SAMPLERS.factory(_CLASSES[name])
    if name in _NOT_IN_HPO:
        raise AttributeError(f"hpo has no {name}; use {_NOT_IN_HPO[name]}")
    raise AttributeError(f"module 'hpo.samplers' has no attribute {name!r}")
