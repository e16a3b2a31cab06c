"""Reference backends: Optuna's, hyperopt's and scikit-optimize's samplers behind our interface.

They let a benchmark compare our samplers with the libraries they follow, on
identical terms. Each ask replays the study's history into the library
(completed trials with their values; running ones where the library has a
notion of them), asks it for one point and throws its state away, so a
sampler stays a pure function of (space, trials, rng) and a study can switch
to or from any of them when it resumes.

    optuna-tpe, optuna-qmc, optuna-gp   reference_optuna: an in-memory Optuna study;
                                        the space is walked define-by-run (a branch is
                                        a suggest_categorical over its labels, then
                                        that label's parameters)
    hyperopt-tpe                        reference_hyperopt: tpe.suggest on a Trials
                                        object; a branch is hp.choice over one dict
                                        per label
    skopt-gp                            reference_skopt: skopt.Optimizer (GP, EI); no
                                        conditional spaces, so every coordinate is
                                        given, an inactive one at a fixed value

This module holds what they share: the history as points of the space, the
walk that turns a library's answer into active parameters, the names the
libraries know coordinates by, and the index encoding of choices and grids
(stepped and integer parameters go to hyperopt and scikit-optimize as the index
of their value, 0 .. n-1, an affine map both are indifferent to).

The libraries are imported when a sampler is built: `import hpo` needs none of
them, and a missing one is a SamplerError that says what to install.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from hpo.errors import SamplerError
from hpo.records import FrozenTrial, TrialState
from hpo.space import Branch, Categorical, Numeric, Param, Space

REFERENCE_EXTRA = "'hpo[reference]'"
SEEDS = 2**31  # a library's seed for one ask: rng.integers(SEEDS)


def require(sampler: str, module: str, package: str, fix: str = REFERENCE_EXTRA) -> ModuleType:
    """Import a library for a sampler, or say what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == module.split(".")[0]
        detail = "" if missing else f" (importing {module} failed: {exc})"
        raise SamplerError(
            f"sampler {sampler!r} needs {package}: pip install {fix}{detail}"
        ) from None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The libraries' warnings (experimental features, repeated points, GP fits) are noise here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def history(
    space: Space, trials: Sequence[FrozenTrial]
) -> tuple[list[tuple[dict[str, Any], float]], list[dict[str, Any]]]:
    """Completed trials as (point, value), and the points of pending ones (running or queued).

    A point holds a trial's values of this space's active parameters. Others
    (suggested by the objective, outside this space) are dropped, and so is a
    value the space does not hold (a range changed). A parameter a trial lacks
    (the objective did not ask for it; an enqueued partial point) counts as
    inactive, as in Optuna's define-by-run studies.
    """
    done, pending = [], []
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            done.append((point(space, trial.params), float(trial.value)))
        elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
            pending.append(point(space, trial.params))
    return done, pending


def point(space: Space, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's values of the space's active parameters, as `history` describes."""
    point: dict[str, Any] = {}
    for dim in space.dims:  # a branch before its labels' parameters
        param, value = dim.param, params.get(dim.param.name)
        if (
            param.name in params
            and param.contains(value)
            and all(point.get(b) == lbl for b, lbl in dim.conditions)
        ):
            point[param.name] = param.coerce(value)
    return point


def active_params(space: Space, value_of: Callable[[int, Param], Any]) -> dict[str, Any]:
    """The active parameters, reading coordinate j's value with value_of(j, param).

    `space.dims` lists a branch before its labels' parameters, and a
    coordinate's conditions name its whole path, so they are settled by the
    time it is reached. The result is checked by `space.validate`.
    """
    params: dict[str, Any] = {}
    for j, dim in enumerate(space.dims):
        if all(params.get(branch) == label for branch, label in dim.conditions):
            params[dim.param.name] = value_of(j, dim.param)
    return space.validate(params)


def present(space: Space, params: dict[str, Any]) -> Iterator[tuple[int, Param, Any]]:
    """(coordinate, parameter, value) for each active parameter of a point."""
    for j, dim in enumerate(space.dims):
        name = dim.param.name
        if name in params and all(params.get(b) == lbl for b, lbl in dim.conditions):
            yield j, dim.param, params[name]


@functools.lru_cache(maxsize=64)
def library_keys(space: Space) -> tuple[str, ...]:
    """The name of each coordinate in a library: its own, or with its branch path where
    sibling labels reuse the name (the libraries want one definition per name)."""
    counts = Counter(dim.param.name for dim in space.dims)
    return tuple(
        dim.param.name
        if counts[dim.param.name] == 1
        else dim.param.name + "".join(f"|{b}={lbl}" for b, lbl in dim.conditions)
        for dim in space.dims
    )


def index_step(param: Numeric) -> float | None:
    """The step between the values of a non-log parameter with a grid (an int, or a float
    with a step); None when continuous or log: such values go to the libraries by index."""
    return None if param.log else param.grid_step


def grid_count(param: Numeric) -> int | None:
    """How many values a non-log parameter with a grid step has (None: continuous or log)."""
    step = index_step(param)
    return None if step is None else round((param.high - param.low) / step) + 1


def to_library(param: Param, value: Any) -> Any:
    """A value as hyperopt and skopt see it: a choice's or grid value's index, else itself."""
    if isinstance(param, Categorical | Branch):
        return param.index(value)
    if (step := index_step(param)) is not None:
        return round((value - param.low) / step)
    return value


def from_library(param: Param, raw: Any) -> Any:
    """The inverse of to_library, clipped and rounded into the parameter's own type."""
    if isinstance(param, Branch | Categorical):
        values = param.choices
        return values[min(max(int(raw), 0), len(values) - 1)]
    if (step := index_step(param)) is not None:
        return param.snap(param.low + float(raw) * step)
    return param.snap(float(raw))
