"""Study files: a study's definition in TOML (or JSON), validated in full.

    name = "branin-random"
    objective = "branin"            # built-in, "pkg.module:fn" or "file.py:fn"
    direction = "minimize"          # several objectives: directions = ["minimize", "maximize"]
    # objective_names = ["error", "size"]  (several: what figures and tables call them)
    trials = 50                     # the study's budget (total trials)
    seed = 0
    sampler = "tpe"                 # the default; or a table: [sampler] name = "grid", points = 5
    pruner = "median"               # or a table: [pruner] name = "asha", reduction_factor = 3

    [[space]]                       # optional for built-in objectives
    name = "x1"
    type = "float"
    low = -5.0
    high = 10.0

An objective with options is a table: ``[objective] name = "...", <option> = ...``.
Relative file paths in ``objective`` are relative to the study file.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpo.checks import (
    check_count,
    check_name,
    check_objective_names,
    check_seed,
    check_timeout,
)
from hpo.direction import Direction
from hpo.errors import HpoError, StudyConfigError, StudyFileError, did_you_mean
from hpo.samplers import DEFAULT_SAMPLER

KEYS = (
    "name",
    "objective",
    "direction",
    "directions",
    "objective_names",
    "space",
    "sampler",
    "pruner",
    "trials",
    "timeout",
    "seed",
    "storage",
)


@dataclass(frozen=True)
class StudyConfig:
    """A validated study definition; flags override it with `with_overrides`."""

    name: str
    objective: str | None  # None: a study for ask and tell (`hpo create`)
    objective_options: dict[str, Any] = field(default_factory=dict)
    direction: str = "minimize"
    directions: list[str] | None = None  # a study of several objectives: one each
    objective_names: list[str] | None = None  # their names, for figures and tables
    space: list[dict[str, Any]] | None = None
    sampler: str = DEFAULT_SAMPLER
    sampler_options: dict[str, Any] = field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, Any] = field(default_factory=dict)
    trials: int | None = None
    timeout: float | None = None
    seed: int | None = None
    storage: str | None = None
    base_dir: Path = Path(".")  # where relative objective paths start
    source: str = field(default="study", compare=False)  # what messages call it: the path

    def with_overrides(self, **overrides: Any) -> StudyConfig:
        """Replace the fields given (None means: keep the file's value)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for key in ("sampler", "pruner"):
            if key in given and given[key] != getattr(self, key):
                given.setdefault(f"{key}_options", {})  # the file's options were for another
        config = replace(self, **given)
        _check_scalars(config, "command line")
        return config


def load_study_file(path: str | Path) -> StudyConfig:
    """Read and validate a study file (.toml or .json)."""
    path = Path(path)
    return config_from_dict(_read(path, "study file"), str(path), path.stem, path.parent)


def _read(path: Path, what: str) -> Mapping[str, Any]:
    """A study or comparison file's table of keys: TOML, or JSON for a .json file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(f"{what} {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyFileError(f"cannot read {what} {str(path)!r}: {exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise StudyFileError(f"{path}: invalid {kind}: {exc}") from None
    if not isinstance(data, Mapping):
        raise StudyFileError(f"{path}: a {what} must be a table of keys")
    return data


def _check_keys(data: Any, keys: tuple[str, ...], source: str, hint: str = "") -> None:
    if not isinstance(data, Mapping):
        raise StudyFileError(f"{source}: expected a table of keys, got {data!r}")
    for key in data:
        if key not in keys:
            raise StudyFileError(
                f"{source}: unknown key {key!r}{did_you_mean(key, keys)}; "
                f"allowed: {', '.join(keys)}{' ' + hint if hint else ''}"
            )


def config_from_dict(
    data: Mapping[str, Any],
    source: str = "study",
    default_name: str | None = None,
    base_dir: Path = Path("."),
) -> StudyConfig:
    _check_keys(data, KEYS, source)
    objective, objective_options = (
        _named_table(data["objective"], "objective", source)
        if "objective" in data
        else (None, {})  # a study for ask and tell: its trials are evaluated elsewhere
    )
    sampler, sampler_options = _named_table(data.get("sampler", DEFAULT_SAMPLER), "sampler", source)
    pruner, pruner_options = _named_table(data.get("pruner", "none"), "pruner", source)
    space = data.get("space")
    if space is not None and not isinstance(space, list):
        raise StudyFileError(
            f"{source}: 'space' must be a list of parameters ([[space]] tables in TOML)"
        )
    config = StudyConfig(
        name=data.get("name", default_name or ""),
        objective=objective,
        objective_options=objective_options,
        direction=data.get("direction", "minimize"),
        directions=_directions(data, source),
        objective_names=data.get("objective_names"),
        space=space,
        sampler=sampler,
        sampler_options=sampler_options,
        pruner=pruner,
        pruner_options=pruner_options,
        trials=data.get("trials"),
        timeout=data.get("timeout"),
        seed=data.get("seed"),
        storage=data.get("storage"),
        base_dir=base_dir,
        source=source,
    )
    _check_scalars(config, source)
    return config


def _directions(data: Mapping[str, Any], source: str) -> list[str] | None:
    """`directions`, one per objective (a study of several), checked."""
    if "directions" not in data:
        return None
    if "direction" in data:
        raise StudyFileError(f"{source}: give direction (one objective) or directions, not both")
    directions = data["directions"]
    if not isinstance(directions, list) or not directions:
        raise StudyFileError(
            f"{source}: directions must be a list, one 'minimize' or 'maximize' per "
            f"objective, got {directions!r}"
        )
    for direction in directions:
        try:
            Direction.parse(direction)
        except StudyConfigError as exc:
            raise StudyFileError(f"{source}: {exc}") from None
    return list(directions)


def _named_table(value: Any, key: str, source: str) -> tuple[str, dict[str, Any]]:
    """'name' or {name = 'name', option = ...} -> (name, options)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return value["name"], {k: v for k, v in value.items() if k != "name"}
    what = key if key.startswith("a ") else f"'{key}'"
    raise StudyFileError(
        f"{source}: {what} must be a name or a table with a 'name' key, got {value!r}"
    )


def _check_scalars(config: StudyConfig, source: str) -> None:
    try:
        check_name(config.name)
        Direction.parse(config.direction)
        if config.objective_names is not None:
            check_objective_names(config.objective_names, len(config.directions or ["one"]))
        check_count(config.trials, "trials")
        check_timeout(config.timeout)
        check_seed(config.seed)
    except StudyConfigError as exc:
        raise StudyFileError(f"{source}: {exc}") from None
    if config.storage is not None and not isinstance(config.storage, str):
        raise StudyFileError(f"{source}: storage must be a URL or path string")
    for what, options in (
        ("objective", config.objective_options),
        ("sampler", config.sampler_options),
        ("pruner", config.pruner_options),
    ):
        try:
            json.dumps(options, allow_nan=False)
        except (TypeError, ValueError):
            raise StudyFileError(
                f"{source}: the {what} options must be plain values "
                f"(strings, numbers, booleans, lists, tables), got "
                f"{options!r}"
            ) from None


# -- comparison files (`hpo compare`) ------------------------------------------------

COMPARE_KEYS = (
    "name",
    "objective",
    "objectives",
    "samplers",
    "seeds",
    "seed",
    "trials",
    "checkpoints",
    "storage",
    "objective_options",
    "direction",
    "directions",
    "reference_point",
)
DEFAULT_CHECKPOINTS = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class SamplerSpec:
    label: str  # what the tables and study names call it
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareConfig:
    name: str
    objectives: tuple[str, ...]
    samplers: tuple[SamplerSpec, ...]
    seeds: int = 5
    first_seed: int = 0
    trials: int = 50
    checkpoints: tuple[float, ...] = DEFAULT_CHECKPOINTS
    objective_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    direction: str | None = None  # None: each built-in objective's own
    directions: tuple[str, ...] | None = None  # several objectives: None, the objective's own
    # several objectives: the hypervolume's reference point per objective of the
    # comparison, in the objectives' values; none given: derived from every trial
    reference_point: dict[str, tuple[float, ...]] = field(default_factory=dict)
    storage: str | None = None
    base_dir: Path = Path(".")

    @property
    def n_studies(self) -> int:
        """One per objective, sampler and seed (what `plan` lays out)."""
        return self.seeds * len(self.objectives) * len(self.samplers)


def load_compare_file(path: str | Path) -> CompareConfig:
    """Read and validate a comparison file (.toml or .json)."""
    path = Path(path)
    data = _read(path, "comparison file")
    return compare_config_from_dict(data, str(path), path.stem, path.parent)


def compare_config_from_dict(
    data: Mapping[str, Any],
    source: str = "comparison",
    default_name: str | None = None,
    base_dir: Path = Path("."),
) -> CompareConfig:
    _check_keys(
        data, COMPARE_KEYS, source, "(sampler options go in the sampler's table in 'samplers')"
    )
    for key, kind, what in (
        ("checkpoints", list, "a list of fractions"),
        ("objective_options", Mapping, "a table per objective"),
    ):
        if key in data and not isinstance(data[key], kind):
            raise StudyFileError(f"{source}: '{key}' must be {what}, got {data[key]!r}")
    objectives = data.get("objectives", [data["objective"]] if "objective" in data else None)
    if (
        not objectives
        or not isinstance(objectives, list)
        or not all(isinstance(o, str) for o in objectives)
    ):
        raise StudyFileError(
            f"{source}: give 'objective' (a name) or 'objectives' (a list of names)"
        )
    samplers = data.get("samplers")
    if not samplers or not isinstance(samplers, list):
        raise StudyFileError(
            f"{source}: 'samplers' must be a non-empty list of sampler names "
            "(or tables with a 'name')"
        )
    config = CompareConfig(
        name=data.get("name", default_name or ""),
        objectives=tuple(objectives),
        samplers=tuple(_sampler_spec(s, source) for s in samplers),
        seeds=data.get("seeds", 5),
        first_seed=data.get("seed", 0),
        trials=data.get("trials", 50),
        checkpoints=tuple(data.get("checkpoints", DEFAULT_CHECKPOINTS)),
        objective_options=dict(data.get("objective_options", {})),
        direction=data.get("direction"),
        directions=_compare_directions(data, source),
        reference_point=_reference_points(data.get("reference_point"), objectives, source),
        storage=data.get("storage"),
        base_dir=base_dir,
    )
    check_config(config, source)
    return config


def _compare_directions(data: Mapping[str, Any], source: str) -> tuple[str, ...] | None:
    directions = _directions(data, source)
    return None if directions is None else tuple(directions)


def _reference_points(
    value: Any, objectives: Sequence[str], source: str
) -> dict[str, tuple[float, ...]]:
    """`reference_point`: a list of numbers (for every objective of the comparison) or a
    table of lists by objective name."""
    if value is None:
        return {}
    table = value if isinstance(value, Mapping) else {name: value for name in objectives}
    points = {}
    for name, point in table.items():
        if name not in objectives:
            raise StudyFileError(
                f"{source}: reference_point.{name}: not an objective of the comparison "
                f"{list(objectives)}"
            )
        if (
            not isinstance(point, list)
            or len(point) < 2
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in point
            )
        ):
            raise StudyFileError(
                f"{source}: reference_point must be a list of finite numbers, one per "
                f"objective (or a table of such lists by objective name), got {point!r}"
            )
        points[name] = tuple(float(v) for v in point)
    return points


def _sampler_spec(value: Any, source: str) -> SamplerSpec:
    """A sampler of the comparison: a name, or a table with a name, options and an
    optional 'label' (its name in the tables)."""
    label = value.get("label") if isinstance(value, Mapping) else None
    if isinstance(value, Mapping):
        value = {k: v for k, v in value.items() if k != "label"}
    name, options = _named_table(value, "a sampler", source)
    return SamplerSpec(str(label or name), name, options)


def check_config(config: CompareConfig, source: str = "comparison") -> None:
    """Scalars and names; objectives and samplers are checked by `plan`."""
    try:
        check_name(config.name)
        check_count(config.trials, "trials")
        check_count(config.seeds, "seeds")
        check_seed(config.first_seed)
    except HpoError as exc:
        raise StudyFileError(f"{source}: {exc}") from None
    if config.trials is None or config.seeds is None:
        raise StudyFileError(f"{source}: trials and seeds must be given")
    labels = [s.label for s in config.samplers]
    if len(set(labels)) != len(labels):
        raise StudyFileError(
            f"{source}: sampler labels must be unique, got {labels} (give "
            "a variant its own 'label')"
        )
    if len(set(config.objectives)) != len(config.objectives):
        raise StudyFileError(f"{source}: an objective is listed twice")
    if not config.checkpoints or not all(
        isinstance(c, (int, float)) and 0 < c <= 1 for c in config.checkpoints
    ):
        raise StudyFileError(
            f"{source}: checkpoints must be fractions in (0, 1], got {list(config.checkpoints)}"
        )
    for name, options in config.objective_options.items():
        if name not in config.objectives or not isinstance(options, Mapping):
            raise StudyFileError(
                f"{source}: objective_options.{name} must be a table for "
                f"one of the objectives {list(config.objectives)}"
            )
