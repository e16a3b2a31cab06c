"""Every random stream of a study, derived here from its seed with a named purpose.

A stream is ``numpy.random.SeedSequence(seed, spawn_key=(purpose, *keys))``,
the child that ``SeedSequence(seed).spawn`` would give at those indices: two
different (purpose, keys) give statistically independent streams, so the
sampler's draws, the objective's randomness (`trial.rng`) and the filling of
an enqueued point never share numbers, and each is reproducible from the
study's seed alone.

Keys are per trial: a sampled trial's index among sampled trials, or for a
trial enqueued by hand 2**32 plus its number (see FrozenTrial.seed_index);
a retry of a lost trial keeps its original's index, so it evaluates the same
point with the same objective randomness.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Purpose(IntEnum):
    """What a stream is for; each value is a distinct branch of the study's seed."""

    SAMPLING = 0  # the sampler's draws for one trial (keyed by its sample index)
    STARTUP = 1  # a sampler's fixed start-up sequence (scrambled Sobol / Halton)
    ENQUEUED = 2  # the parameters left out of an enqueued point (keyed by number)
    DEFINE_BY_RUN = 3  # a parameter met in suggest_* and drawn on its own
    OBJECTIVE = 4  # trial.rng: the objective's own randomness (weights, shuffling)
    DATA = 5  # an objective's data sample and split, the same for every trial of a study


def stream(seed: int, purpose: Purpose, *keys: int) -> np.random.Generator:
    """A generator for `purpose` and `keys` under the study's `seed`."""
    return np.random.default_rng(seed_sequence(seed, purpose, *keys))


def seed_sequence(seed: int, purpose: Purpose, *keys: int) -> np.random.SeedSequence:
    """The seed sequence of a stream (for libraries that take one, or to spawn from)."""
    return np.random.SeedSequence(seed, spawn_key=(int(purpose), *keys))
