"""The studies in a storage: create, load, list and delete them (the module-level API).

`create_study` validates everything — space, sampler, pruner, objective,
direction, budget, seed — before it writes anything. Its names follow
Optuna's where the concept is the same (`study_name`, `directions`,
`load_if_exists`, sampler and pruner objects such as
`hpo.samplers.TPESampler(seed=1)`), so a driver written for Optuna runs with
`hpo.` in place of `optuna.`; hpo's own names (`name`, `space`, `budget`, ...)
are the same ones the study files and the CLI use.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from hpo.checks import check_count, check_name, check_objective_names, check_seed
from hpo.direction import Direction
from hpo.errors import DuplicateStudyError, StudyConfigError
from hpo.objectives import Objective, load_objective
from hpo.pruners import PRUNERS, check_pruner_objectives, make_pruner
from hpo.records import OBJECTIVE_NAMES_ATTR, StudyInfo, StudySummary
from hpo.samplers import DEFAULT_SAMPLER, SAMPLERS, check_objectives, make_sampler
from hpo.space import Space
from hpo.storage import Storage
from hpo.study import Study


def create_study(
    name: str | None = None,
    storage: str | Storage | None = None,
    space: Sequence[Mapping[str, Any]] | Space | None = None,
    sampler: Any = DEFAULT_SAMPLER,
    seed: int | None = None,
    direction: str | Direction | None = None,
    load_if_exists: bool = False,
    *,
    sampler_options: Mapping[str, Any] | None = None,
    objective: str | Objective | None = None,
    objective_options: Mapping[str, Any] | None = None,
    budget: int | None = None,
    user_attrs: Mapping[str, Any] | None = None,
    pruner: Any = "none",
    pruner_options: Mapping[str, Any] | None = None,
    study_name: str | None = None,
    directions: Sequence[str | Direction] | None = None,
    objective_names: Sequence[str] | None = None,
) -> Study:
    """Create a study (validated in full before anything is written).

    `storage`: an SQLAlchemy URL, an SQLite file path, a Storage, or None for
    an in-memory database. `sampler`, `pruner`: a name (options in
    `sampler_options`, `pruner_options`) or an object such as
    `hpo.samplers.TPESampler(gamma=0.2, seed=1)`, whose seed becomes the
    study's unless `seed` is given. `objective`: a built-in name or reference
    stored with the study so that `hpo resume` can run it; a built-in objective
    also supplies the space when none is given. `budget`: the total number of
    trials the study aims for. `seed`: None draws one, which is stored, so
    every study can be replayed. `study_name` and `directions` are Optuna's
    spellings of `name` and `direction`. `objective_names`: one name per
    objective, for figures and tables (a bundled objective of several names its
    own); kept in the study's user attribute "objective_names".
    """
    name = _one_of("name", name, "study_name", study_name)
    check_count(budget, "budget")
    if name is not None:
        check_name(name)
    sampler, sampler_options, sampler_seed = SAMPLERS.resolve(sampler, sampler_options)
    pruner, pruner_options, _ = PRUNERS.resolve(pruner, pruner_options)
    seed = seed if seed is not None else sampler_seed
    check_seed(seed)
    loaded = (
        objective
        if isinstance(objective, Objective) or objective is None
        else load_objective(objective, objective_options)
    )
    if direction is None and directions is None and loaded is not None:
        directions = loaded.directions  # a bundled objective of several states its own
    goals = _the_directions(direction, directions)
    names = _objective_names(objective_names, loaded, len(goals))
    if space is None and loaded is not None:
        space = loaded.space
    space = space if isinstance(space, Space) else Space.from_spec(space)
    if loaded is not None and loaded.space is not None:
        _check_builtin_names(loaded, space)
    built = make_sampler(sampler, sampler_options, seed or 0)  # before writing anything
    built.check(space)
    check_objectives(built, sampler, len(goals))
    make_pruner(pruner, pruner_options)
    check_pruner_objectives(pruner, len(goals))
    info = StudyInfo(
        study_id=-1,
        name=name or f"study-{uuid.uuid4().hex[:8]}",
        directions=goals,
        space=space.to_spec(),
        sampler=sampler,
        sampler_options=sampler_options,
        objective=loaded.ref if loaded else None,
        objective_options=dict(objective_options or {}),
        budget=budget,
        seed=secrets.randbits(31) if seed is None else int(seed),
        created_at=time.time(),
        user_attrs={**(user_attrs or {}), **({OBJECTIVE_NAMES_ATTR: names} if names else {})},
        pruner=pruner,
        pruner_options=pruner_options,
    )
    store = open_storage(storage)
    try:
        return Study(store, store.create_study(info))
    except DuplicateStudyError:
        if load_if_exists:
            return load_study(info.name, store)
        raise


def load_study(
    name: str | None = None,
    storage: str | Storage | None = None,
    *,
    study_name: str | None = None,
    sampler: Any = None,
    pruner: Any = None,
) -> Study:
    """The stored study `name` (Optuna: `study_name`). `sampler` and `pruner`, if given,
    replace the stored ones for the trials to come, as in `hpo resume --sampler`."""
    name = _one_of("name", name, "study_name", study_name)
    if name is None or storage is None:
        raise StudyConfigError("load_study needs the study's name and its storage")
    store = open_storage(storage, create=False)
    study = Study(store, store.get_study(name))
    if sampler is not None:
        study.set_sampler(sampler)
    if pruner is not None:
        study.set_pruner(pruner)
    return study


def delete_study(
    name: str | None = None, storage: str | Storage | None = None, *, study_name: str | None = None
) -> None:
    name = _one_of("name", name, "study_name", study_name)
    if name is None or storage is None:
        raise StudyConfigError("delete_study needs the study's name and its storage")
    with borrowed(storage) as store:
        store.delete_study(name)


def studies(storage: str | Storage) -> list[StudySummary]:
    """Every study in the storage with its trial counts and best value."""
    with borrowed(storage) as store:
        return store.list_studies()


@contextmanager
def borrowed(storage: str | Storage, create: bool = False) -> Iterator[Storage]:
    """A Storage for one call: opened (and closed) here unless the caller gave one."""
    store = open_storage(storage, create=create)
    try:
        yield store
    finally:
        if store is not storage:
            store.close()


def open_storage(storage: str | Storage | None, create: bool = True) -> Storage:
    return storage if isinstance(storage, Storage) else Storage(storage, create=create)


def _one_of(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    if value is not None and alias_value is not None and value != alias_value:
        raise StudyConfigError(f"give {name} or {alias} (Optuna's name for it), not both")
    return value if value is not None else alias_value


def _the_directions(
    direction: str | Direction | None, directions: Sequence[str | Direction] | None
) -> tuple[Direction, ...]:
    """One direction per objective, from `direction` (one objective) or `directions`."""
    if directions is None:
        return (Direction.parse(direction if direction is not None else Direction.MINIMIZE),)
    if isinstance(directions, str) or not directions:
        raise StudyConfigError(
            f"directions must be a list of 'minimize' / 'maximize', one per objective, "
            f"got {directions!r}"
        )
    if direction is not None:
        raise StudyConfigError("give direction (one objective) or directions, not both")
    return tuple(Direction.parse(d) for d in directions)


def _objective_names(
    given: Sequence[str] | None, objective: Objective | None, n_objectives: int
) -> list[str] | None:
    """The objectives' names: those given, else a bundled objective's own; checked
    against the directions (a bundled objective of k values needs k directions)."""
    own = objective.names if objective is not None else None
    if objective is not None and own is not None and len(own) != n_objectives:
        raise StudyConfigError(
            f"objective {objective.ref!r} returns {len(own)} values ({', '.join(own)}); "
            f"the study has {n_objectives} direction(s): give directions, one per objective"
        )
    names = given if given is not None else own
    if names is None:
        return None
    check_objective_names(names, n_objectives)
    return list(names)


def _check_builtin_names(objective: Objective, space: Space) -> None:
    """A built-in objective reads its own parameter names: the space must have them."""
    needed = {dim.param.name for dim in Space.from_spec(objective.space).dims}
    missing = sorted(needed - {dim.param.name for dim in space.dims})
    if missing:
        raise StudyConfigError(
            f"objective {objective.ref!r} reads parameters "
            f"{sorted(needed)}; the space lacks {missing}"
        )
