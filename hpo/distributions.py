"""Optuna's distribution names, giving hpo's parameter definitions (`hpo.space`).

For code written against Optuna's API: `study.ask({"x": FloatDistribution(0, 1)})`,
`hpo.create_trial(..., distributions=...)`, and `FrozenTrial.distributions`, which
holds the study's definitions. A definition made here is named by the key it
is given under; the constructors check it as the space checks a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from hpo.space import Categorical, Numeric, Param, Space

UNNAMED = "_"  # what a definition is called until the key it is given under names it


def FloatDistribution(  # noqa: N802 - Optuna's class name
    low: float, high: float, log: bool = False, step: float | None = None
) -> Numeric:
    spec: dict[str, Any] = {"name": UNNAMED, "type": "float", "low": low, "high": high}
    spec.update({"log": log} if log else {}, **({"step": step} if step is not None else {}))
    return _one(spec, Numeric)


def IntDistribution(  # noqa: N802 - Optuna's class name
    low: int, high: int, log: bool = False, step: int = 1
) -> Numeric:
    spec: dict[str, Any] = {"name": UNNAMED, "type": "int", "low": low, "high": high}
    spec.update({"log": log} if log else {}, **({"step": step} if step != 1 else {}))
    return _one(spec, Numeric)


def CategoricalDistribution(choices: Sequence[Any]) -> Categorical:  # noqa: N802 - Optuna's
    return _one({"name": UNNAMED, "type": "categorical", "choices": list(choices)}, Categorical)


def named(definitions: Mapping[str, Param | Mapping[str, Any]]) -> dict[str, Param]:
    """Definitions keyed by name (from the constructors above, or spec dicts) as
    parameters carrying those names."""
    out: dict[str, Param] = {}
    for name, definition in definitions.items():
        if isinstance(definition, Mapping):
            out[name] = Space.from_spec([{**definition, "name": name}]).params[0]
        else:
            out[name] = replace(definition, name=name)
    return out


def _one(spec: dict[str, Any], kind: type) -> Any:
    param = Space.from_spec([spec]).params[0]
    assert isinstance(param, kind)
    return param
