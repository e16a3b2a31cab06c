"""Study files: a study's definition in TOML (or JSON), validated in full.

    name = "branin-random"
    objective = "branin"            # built-in, "pkg.module:fn" or "file.py:fn"
    direction = "minimize"
    trials = 50                     # the study's budget (total trials)
    seed = 0
    sampler = "random"              # or a table: [sampler] name = "grid", points = 5
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
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpo.checks import check_count, check_name, check_seed, check_timeout
from hpo.direction import Direction
from hpo.errors import StudyConfigError, StudyFileError, did_you_mean

KEYS = (
    "name",
    "objective",
    "direction",
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
    objective: str
    objective_options: dict[str, Any] = field(default_factory=dict)
    direction: str = "minimize"
    space: list[dict[str, Any]] | None = None
    sampler: str = "random"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, Any] = field(default_factory=dict)
    trials: int | None = None
    timeout: float | None = None
    seed: int | None = None
    storage: str | None = None
    base_dir: Path = Path(".")  # where relative objective paths start

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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(f"study file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyFileError(f"cannot read study file {str(path)!r}: {exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise StudyFileError(f"{path}: invalid {kind}: {exc}") from None
    if not isinstance(data, Mapping):
        raise StudyFileError(f"{path}: a study file must be a table of keys")
    return config_from_dict(data, str(path), path.stem, path.parent)


def config_from_dict(
    data: Mapping[str, Any],
    source: str = "study",
    default_name: str | None = None,
    base_dir: Path = Path("."),
) -> StudyConfig:
    for key in data:
        if key not in KEYS:
            raise StudyFileError(
                f"{source}: unknown key {key!r}{did_you_mean(key, KEYS)}; "
                f"allowed: {', '.join(KEYS)}"
            )
    if "objective" not in data:
        raise StudyFileError(
            f"{source}: 'objective' is missing (a built-in name such as "
            "'branin', or module:function, or path/file.py:function)"
        )
    objective, objective_options = _named_table(data["objective"], "objective", source)
    sampler, sampler_options = _named_table(data.get("sampler", "random"), "sampler", source)
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
    )
    _check_scalars(config, source)
    return config


def _named_table(value: Any, key: str, source: str) -> tuple[str, dict[str, Any]]:
    """'name' or {name = 'name', option = ...} -> (name, options)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return value["name"], {k: v for k, v in value.items() if k != "name"}
    raise StudyFileError(
        f"{source}: '{key}' must be a name or a table with a 'name' key, got {value!r}"
    )


def _check_scalars(config: StudyConfig, source: str) -> None:
    try:
        check_name(config.name)
        Direction.parse(config.direction)
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
