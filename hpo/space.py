"""Search spaces: parameter kinds, the neutral spec, validation, encoding, grids.

A space is a tuple of parameters. Four kinds:

- ``float``: ``low``, ``high``, optional ``log`` and ``step``;
- ``int``: ``low``, ``high``, optional ``log`` and ``step`` (default 1);
- ``categorical``: ``choices``, a list of JSON scalars;
- ``branch``: ``choices`` maps a label to a sub-space; only the chosen
  label's parameters are active (a tree-structured space).

The neutral spec is a list of dicts with keys ``name``, ``type``, ``low``,
``high``, ``log``, ``step``, ``choices``; ``Space.from_spec`` validates it and
``Space.to_spec`` writes it back.

This module is the one place that maps points to the unit hypercube and
back. Every parameter, branches included, owns one coordinate ("dim") in
``[0, 1)``; a point's coordinates of parameters that are inactive (in an
unchosen branch) are NaN. Samplers work on these coordinates only.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Union

import numpy as np

from hpo.errors import SpaceError, did_you_mean

KINDS = ("float", "int", "categorical", "branch")
_NUMERIC_KEYS = ("name", "type", "low", "high", "log", "step")
_CHOICE_KEYS = ("name", "type", "choices")
ALLOWED_KEYS = {
    "float": _NUMERIC_KEYS,
    "int": _NUMERIC_KEYS,
    "categorical": _CHOICE_KEYS,
    "branch": _CHOICE_KEYS,
}
MAX_GRID_POINTS = 1_000_000
_RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Numeric:
    """A float or int parameter on [low, high], optionally log-scaled or stepped.

    Encoding (after Optuna's ``_SearchSpaceTransform``): a stepped or integer
    parameter has n = (high - low) / step + 1 values and each gets an equal
    slice of [0, 1), so rounding a uniform coordinate picks each value with
    the same probability; a log-scaled one is uniform in log space (log
    integers over [log(low - 0.5), log(high + 0.5)]).
    """

    name: str
    type: str  # "float" or "int"
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @property
    def grid_step(self) -> float | None:
        """The spacing of allowed values: step, 1 for ints, None when continuous."""
        if self.step is not None:
            return self.step
        return 1 if self.type == "int" else None

    @property
    def _step(self) -> float:
        """The grid step, for the methods that only an int or stepped parameter uses."""
        step = self.grid_step
        if step is None:
            raise TypeError(f"parameter {self.name!r} has no grid step")
        return step

    @cached_property
    def _bounds(self) -> tuple[float, float]:
        """Internal (possibly log) bounds that the unit interval maps onto."""
        half = self.grid_step / 2 if self.grid_step else 0.0
        if self.log:
            return math.log(self.low - half), math.log(self.high + half)
        return self.low - half, self.high + half

    def decode(self, u: float) -> float | int:
        lo, hi = self._bounds
        t = lo + u * (hi - lo)
        value = math.exp(t) if self.log else t
        return self.snap(value)

    def encode(self, value: float) -> float:
        lo, hi = self._bounds
        t = math.log(value) if self.log else value
        return (t - lo) / (hi - lo)

    def snap_unit(self, u: np.ndarray) -> np.ndarray:
        """Coordinates (m,) -> the coordinates of the grid values they decode to.

        For an int or stepped parameter: where a sampler working in [0, 1]
        lands when the space rounds its draw.
        """
        return self._encode_values(self._grid_values(u))

    def slice_of(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The slice of [0, 1] that decodes to the same grid value as each of u (m,)."""
        value, half = self._grid_values(u), self._step / 2
        return (
            np.clip(self._encode_values(value - half), 0.0, 1.0),
            np.clip(self._encode_values(value + half), 0.0, 1.0),
        )

    def _grid_values(self, u: np.ndarray) -> np.ndarray:
        """decode for many coordinates at once, as floats (an int or stepped parameter)."""
        lo, hi = self._bounds
        t = lo + u * (hi - lo)
        value = np.exp(t) if self.log else t
        step = self._step
        value = self.low + np.round((value - self.low) / step) * step
        return np.clip(value, self.low, self.high)

    def _encode_values(self, value: np.ndarray) -> np.ndarray:
        lo, hi = self._bounds
        with np.errstate(invalid="ignore", divide="ignore"):  # a slice edge below 0 (log)
            t = np.log(value) if self.log else value
        return np.nan_to_num((t - lo) / (hi - lo), nan=0.0, neginf=0.0)

    def snap(self, value: float) -> float | int:
        """Round to the allowed grid, clip to [low, high], give ints as int."""
        step = self.grid_step
        if step is not None:
            value = self.low + round((value - self.low) / step) * step
        value = min(max(value, self.low), self.high)
        if self.type == "int":
            return round(value)
        return float(f"{value:.15g}") if step is not None else float(value)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            return False
        if self.type == "int" and not float(value).is_integer():
            return False
        if not self.low <= float(value) <= self.high:
            return False
        step = self.grid_step
        return step is None or _is_multiple(float(value) - self.low, step)

    def coerce(self, value: Any) -> float | int:
        """A contained value in this parameter's own type (int or float)."""
        return int(value) if self.type == "int" else float(value)

    def grid_values(self, points: int) -> list[float | int]:
        """`points` values evenly spaced (in log space if log) over [low, high].

        A stepped or integer parameter with at most `points` values gives all
        of them.
        """
        step = self.grid_step
        if step is not None:
            count = round((self.high - self.low) / step) + 1
            if count <= points:
                return [self.snap(self.low + i * step) for i in range(count)]
        spaced = (
            np.geomspace(self.low, self.high, points)
            if self.log
            else np.linspace(self.low, self.high, points)
        )
        return list(dict.fromkeys(self.snap(float(v)) for v in spaced))

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "low": self.low,
            "high": self.high,
            "log": self.log,
        }
        if self.step is not None:
            spec["step"] = self.step
        return spec


def choice_index(u: Any, n: int) -> Any:
    """The choice a coordinate encodes: choice i owns the slice [i/n, (i+1)/n) of [0, 1]
    (1 itself belongs to the last). Works on a float or an array of any shape."""
    return np.minimum((np.asarray(u) * n).astype(int), n - 1)


def choice_coordinate(index: Any, n: int) -> Any:
    """The centre of choice `index`'s slice: what encoding a choice gives."""
    return (np.asarray(index) + 0.5) / n


@dataclass(frozen=True)
class Categorical:
    """One of a list of JSON scalars; encoded as an equal slice of [0, 1) each."""

    name: str
    choices: tuple[Any, ...]

    type = "categorical"

    @cached_property
    def _index(self) -> dict[str, int]:
        return {_choice_key(c): i for i, c in enumerate(self.choices)}

    def index(self, value: Any) -> int:
        try:
            return self._index[_choice_key(value)]
        except (KeyError, TypeError):
            raise SpaceError(
                f"parameter {self.name!r}: {value!r} is not one of {list(self.choices)}"
            ) from None

    def decode(self, u: float) -> Any:
        return self.choices[int(choice_index(u, len(self.choices)))]

    def encode(self, value: Any) -> float:
        return float(choice_coordinate(self.index(value), len(self.choices)))

    def contains(self, value: Any) -> bool:
        try:
            return _choice_key(value) in self._index
        except TypeError:
            return False

    def coerce(self, value: Any) -> Any:
        return self.choices[self.index(value)]

    def grid_values(self, points: int) -> list[Any]:
        return list(self.choices)

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "type": "categorical", "choices": list(self.choices)}


@dataclass(frozen=True)
class Branch:
    """A tree-structured choice: each label activates its own sub-space."""

    name: str
    branches: tuple[tuple[str, Space], ...]  # (label, sub-space), in spec order

    type = "branch"

    @property
    def choices(self) -> tuple[str, ...]:
        """The labels: a branch is a categorical choice of its label (as the spec's
        `choices` keys), with a sub-space behind each."""
        return tuple(label for label, _ in self.branches)

    def index(self, label: Any) -> int:
        try:
            return self.choices.index(label)
        except ValueError:
            raise SpaceError(
                f"parameter {self.name!r}: {label!r} is not one of {list(self.choices)}"
            ) from None

    def subspace(self, label: str) -> Space:
        return self.branches[self.index(label)][1]

    def decode(self, u: float) -> str:
        return self.choices[int(choice_index(u, len(self.choices)))]

    def encode(self, value: str) -> float:
        return float(choice_coordinate(self.index(value), len(self.choices)))

    def contains(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.choices

    def coerce(self, value: Any) -> str:
        return value

    def to_spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "branch",
            "choices": {label: space.to_spec() for label, space in self.branches},
        }


Param = Union[Numeric, Categorical, Branch]  # noqa: UP007 - a runtime alias


@dataclass(frozen=True)
class Dim:
    """One coordinate of the unit-cube encoding.

    `conditions` are the (branch name, label) pairs that must all hold for the
    parameter to be active; empty for a top-level parameter. `parents` says the
    same by position: (coordinate of the branch, index of the label) pairs.
    """

    param: Param
    conditions: tuple[tuple[str, str], ...]
    parents: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class _Node:
    """A parameter, its coordinate, and for a branch the nodes of each label."""

    param: Param
    index: int
    children: Mapping[str, tuple[_Node, ...]]


@dataclass(frozen=True)
class Space:
    """An immutable search space. Build it with `Space.from_spec`."""

    params: tuple[Param, ...] = ()

    # -- the neutral spec ---------------------------------------------------

    @classmethod
    def from_spec(cls, spec: Sequence[Mapping[str, Any]] | None) -> Space:
        """Validate a neutral spec (list of parameter dicts) and build the space."""
        if spec is None:
            return cls()
        space = _parse_space(spec, "space")
        _check_unique_names(space, set(), "space")
        return space

    def to_spec(self) -> list[dict[str, Any]]:
        return [param.to_spec() for param in self.params]

    def __len__(self) -> int:
        """The number of unit-cube coordinates (all parameters, all branches)."""
        return len(self.dims)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __contains__(self, name: object) -> bool:
        return any(dim.param.name == name for dim in self.dims)

    # -- the unit-cube encoding -------------------------------------------

    @cached_property
    def dims(self) -> tuple[Dim, ...]:
        """Coordinates in depth-first order: a branch, then its labels' parameters."""
        dims: list[Dim] = []
        _layout(self, (), dims)
        return tuple(dims)

    @cached_property
    def _nodes(self) -> tuple[_Node, ...]:
        return _layout(self, (), [])

    def decode(self, u: np.ndarray, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A point of the unit cube, u of shape (d,), -> the active parameters.

        Values in `fixed` are taken as they are instead of decoding their
        coordinate (an enqueued point that names only some parameters).
        Coordinates of inactive parameters are ignored.
        """
        if len(u) != len(self):
            raise SpaceError(f"expected {len(self)} coordinates, got {len(u)}")
        params: dict[str, Any] = {}
        _decode_nodes(self._nodes, u, fixed or {}, params)
        return params

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Active parameters -> a point of shape (d,); NaN where inactive."""
        x = np.full(len(self), np.nan)
        _encode_nodes(self._nodes, params, x, False)
        return x

    def active(self, u: np.ndarray) -> np.ndarray:
        """Which coordinates of points u (m, d) are active, as their branches decode: (m, d)."""
        mask = np.ones(u.shape, dtype=bool)
        for j, dim in enumerate(self.dims):
            for branch, label in dim.parents:
                parent = self.dims[branch].param
                assert isinstance(parent, Branch)  # only a branch has children
                mask[:, j] &= choice_index(u[:, branch], len(parent.choices)) == label
        return mask

    def encode_many(self, points: Sequence[Mapping[str, Any]], history: bool = False) -> np.ndarray:
        """Many points -> an array of shape (n, d); NaN where inactive.

        `history`: the points are trials a sampler learns from, where a choice
        outside a categorical's definition (an objective that changed the choices
        it asks for) is unknown to the model, NaN, instead of an error.
        """
        x = np.full((len(points), len(self)), np.nan)
        for row, params in zip(x, points, strict=True):
            _encode_nodes(self._nodes, params, row, history)
        return x

    # -- membership -------------------------------------------------------

    def validate(self, params: Mapping[str, Any], partial: bool = False) -> dict[str, Any]:
        """Check a point against the space; return it in the space's order.

        With `partial`, active parameters may be missing (they are drawn
        later); unknown or inactive ones are always an error.
        """
        known = {dim.param.name for dim in self.dims}
        for name in params:
            if name not in known:
                raise SpaceError(
                    f"unknown parameter {name!r}{did_you_mean(name, known)}; "
                    f"the space has {sorted(known)}"
                )
        checked: dict[str, Any] = {}
        _validate_nodes(self._nodes, params, partial, checked)
        inactive = set(params) - set(checked)
        if inactive:
            raise SpaceError(
                f"parameter(s) {sorted(inactive)} are not active with the branch choices given"
            )
        return checked

    # -- grids ------------------------------------------------------------

    def grid_size(self, points: int = 10, values: Mapping[str, Sequence[Any]] | None = None) -> int:
        return _grid_size(self.params, points, values or {})

    def grid(
        self, points: int = 10, values: Mapping[str, Sequence[Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Every point of the grid, in order.

        Floats take `points` evenly spaced values (log-spaced if log), ints
        and stepped floats all their values up to `points`, categoricals all
        choices, branches each label with its own sub-grid. `values` gives a
        parameter's values explicitly, by name.
        """
        if points < 2:
            raise SpaceError(f"grid points must be at least 2, got {points}")
        values = {
            name: _grid_values_given(self, name, given) for name, given in (values or {}).items()
        }
        size = self.grid_size(points, values)
        if size > MAX_GRID_POINTS:
            raise SpaceError(
                f"the grid has {size:,} points, more than {MAX_GRID_POINTS:,}; "
                "lower `points` or give fewer `values`"
            )
        return _grid_points(self.params, points, values)


# -- parsing and validation ---------------------------------------------------


def check_suggest_kind(definitions: Sequence[Param], name: str, kind: str) -> None:
    """SpaceError if a definition of parameter `name` is of another kind than the
    suggest_`kind` that asks for it (a branch is asked for as categorical)."""
    for param in definitions:
        actual = "categorical" if isinstance(param, Branch) else param.type
        if param.name == name and actual != kind:
            raise SpaceError(
                f"parameter {name!r} is a {actual} parameter in this study; "
                f"suggest_{kind} cannot ask for it"
            )


def _parse_space(spec: Any, where: str) -> Space:
    if not isinstance(spec, list | tuple):
        raise SpaceError(f"{where} must be a list of parameters, got {type(spec).__name__}")
    return Space(tuple(_parse_param(item, f"{where}[{i}]") for i, item in enumerate(spec)))


def _parse_param(spec: Any, where: str) -> Param:
    if not isinstance(spec, Mapping):
        raise SpaceError(f"{where} must be a table with name and type, got {type(spec).__name__}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpaceError(f"{where} needs a 'name' (a non-empty string)")
    if name != name.strip():
        raise SpaceError(f"{where}: name {name!r} starts or ends with whitespace")
    label = f"parameter {name!r}"
    kind = spec.get("type")
    if kind not in KINDS:
        hint = did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
        raise SpaceError(
            f"{label}: unknown type {kind!r}{hint}; expected one of {', '.join(KINDS)}"
        )
    for key in spec:
        if key not in ALLOWED_KEYS[kind]:
            raise SpaceError(
                f"{label}: unknown key {key!r} for type {kind}"
                f"{did_you_mean(str(key), ALLOWED_KEYS[kind])}; allowed: "
                f"{', '.join(ALLOWED_KEYS[kind])}"
            )
    if kind in ("float", "int"):
        return _parse_numeric(spec, name, kind, label)
    if kind == "categorical":
        return Categorical(name, _parse_choices(spec.get("choices"), label))
    return _parse_branch(spec.get("choices"), name, label, where)


def _parse_numeric(spec: Mapping[str, Any], name: str, kind: str, label: str) -> Numeric:
    low, high = (_number(spec.get(key), key, kind, label) for key in ("low", "high"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{label}: log must be true or false, got {log!r}")
    step = spec.get("step")
    if low >= high:
        raise SpaceError(f"{label}: low ({low}) must be less than high ({high})")
    if not math.isfinite(high - low):
        raise SpaceError(f"{label}: the range {low}..{high} is too wide to represent")
    if log and low <= 0:
        raise SpaceError(f"{label}: low ({low}) must be > 0 when log is true")
    if step is not None:
        step = _number(step, "step", kind, label)
        if step <= 0:
            raise SpaceError(f"{label}: step ({step}) must be > 0")
        if log and not (kind == "int" and step == 1):
            raise SpaceError(f"{label}: step and log cannot be combined")
        if not _is_multiple(high - low, step):
            raise SpaceError(
                f"{label}: step ({step}) does not divide the range "
                f"{low}..{high} (high - low = {high - low})"
            )
    return Numeric(name, kind, low, high, log, step)


def _number(value: Any, key: str, kind: str, label: str) -> float | int:
    if value is None:
        raise SpaceError(f"{label}: type {kind} needs '{key}'")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpaceError(f"{label}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SpaceError(f"{label}: {key} must be finite, got {value}")
    if kind == "int" and not float(value).is_integer():
        raise SpaceError(f"{label}: {key} must be an integer for type int, got {value}")
    return int(value) if kind == "int" else value


def _parse_choices(choices: Any, label: str) -> tuple[Any, ...]:
    if not isinstance(choices, list | tuple) or not choices:
        raise SpaceError(f"{label}: choices must be a non-empty list, got {choices!r}")
    seen: set[str] = set()
    for choice in choices:
        if choice is not None and not isinstance(choice, str | int | float | bool):
            raise SpaceError(
                f"{label}: choice {choice!r} must be a string, number, boolean or null"
            )
        if isinstance(choice, float) and not math.isfinite(choice):
            raise SpaceError(f"{label}: choice {choice!r} must be finite")
        key = _choice_key(choice)
        if key in seen:
            raise SpaceError(f"{label}: duplicate choice {choice!r}")
        seen.add(key)
    return tuple(choices)


def _parse_branch(choices: Any, name: str, label: str, where: str) -> Branch:
    if not isinstance(choices, Mapping) or not choices:
        raise SpaceError(
            f"{label}: a branch needs choices mapping each label to a list "
            f"of parameters, got {choices!r}"
        )
    branches = []
    for branch_label, sub in choices.items():
        if not isinstance(branch_label, str) or not branch_label:
            raise SpaceError(
                f"{label}: branch labels must be non-empty strings, got {branch_label!r}"
            )
        branches.append((branch_label, _parse_space(sub, f"{where}.choices[{branch_label!r}]")))
    return Branch(name, tuple(branches))


def _check_unique_names(space: Space, taken: set[str], where: str) -> None:
    """No name twice among parameters that can be active together.

    Labels of one branch are never active together, so they may reuse names;
    everything else at one level (each parameter with all it can activate)
    and above it (`taken`) can be.
    """
    seen = set(taken)
    subtrees = [_subtree_names(param) for param in space.params]
    for param, names in zip(space.params, subtrees, strict=True):
        clash = sorted(seen & names)
        if clash:
            raise SpaceError(
                f"parameter {clash[0]!r} appears twice on one active path "
                f"({_where_in(param, clash[0], where)}); names must be unique "
                "among parameters that can be active together"
            )
        seen |= names
    for param, names in zip(space.params, subtrees, strict=True):
        if isinstance(param, Branch):
            outside = (seen - names) | {param.name}
            for label, sub in param.branches:
                _check_unique_names(sub, outside, f"{where} -> {param.name}={label}")


def _where_in(param: Param, name: str, where: str) -> str:
    """The path to the first parameter called `name` in param's subtree."""
    if param.name == name or not isinstance(param, Branch):
        return where
    for label, sub in param.branches:
        for child in sub.params:
            if name in _subtree_names(child):
                return _where_in(child, name, f"{where} -> {param.name}={label}")
    return where


def _subtree_names(param: Param) -> set[str]:
    """The parameter's name and every name any of its labels can activate."""
    names = {param.name}
    if isinstance(param, Branch):
        for _, sub in param.branches:
            for child in sub.params:
                names |= _subtree_names(child)
    return names


def _choice_key(value: Any) -> str:
    """Choices compare by JSON text, so 1, 1.0 and True stay distinct."""
    return f"{type(value).__name__}:{json.dumps(value)}"


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) <= _RELATIVE_TOLERANCE * max(1.0, abs(ratio))


# -- tree walks -----------------------------------------------------------------


def _layout(
    space: Space,
    conditions: tuple[tuple[str, str], ...],
    dims: list[Dim],
    parents: tuple[tuple[int, int], ...] = (),
) -> tuple[_Node, ...]:
    """Assign coordinates depth-first; append one Dim per parameter to dims."""
    nodes = []
    for param in space.params:
        index = len(dims)
        dims.append(Dim(param, conditions, parents))
        children: dict[str, tuple[_Node, ...]] = {}
        if isinstance(param, Branch):
            for position, (label, sub) in enumerate(param.branches):
                children[label] = _layout(
                    sub, (*conditions, (param.name, label)), dims, (*parents, (index, position))
                )
        nodes.append(_Node(param, index, children))
    return tuple(nodes)


def _decode_nodes(
    nodes: tuple[_Node, ...], u: np.ndarray, fixed: Mapping[str, Any], out: dict[str, Any]
) -> None:
    for node in nodes:
        name = node.param.name
        value: Any = fixed[name] if name in fixed else node.param.decode(float(u[node.index]))
        out[name] = value
        if node.children:
            _decode_nodes(node.children[value], u, fixed, out)


def _encode_nodes(
    nodes: tuple[_Node, ...], params: Mapping[str, Any], x: np.ndarray, history: bool
) -> None:
    for node in nodes:
        name = node.param.name
        if name not in params:
            continue
        if (
            history
            and isinstance(node.param, Categorical)
            and not node.param.contains(params[name])
        ):
            continue  # a choice outside the definition: unknown, like an inactive one
        x[node.index] = node.param.encode(params[name])
        if node.children:
            _encode_nodes(node.children[params[name]], params, x, history)


def _validate_nodes(
    nodes: tuple[_Node, ...], params: Mapping[str, Any], partial: bool, out: dict[str, Any]
) -> None:
    for node in nodes:
        param = node.param
        if param.name not in params:
            if not partial:
                raise SpaceError(f"missing parameter {param.name!r}")
            continue
        value: Any = params[param.name]
        if not param.contains(value):
            raise SpaceError(f"parameter {param.name!r}: {value!r} is not in {_describe(param)}")
        value = out[param.name] = param.coerce(value)
        if node.children:
            _validate_nodes(node.children[value], params, partial, out)


def _describe(param: Param) -> str:
    if isinstance(param, Numeric):
        text = f"{param.type} [{param.low}, {param.high}]"
        if param.step is not None:
            text += f" with step {param.step}"
        return text + (" (log)" if param.log else "")
    label = "labels" if isinstance(param, Branch) else "choices"
    return f"{label} {list(param.choices)}"


# -- grids -----------------------------------------------------------------------


def _grid_values_given(space: Space, name: str, given: Sequence[Any]) -> list[Any]:
    """Explicit grid values, checked, in the parameter's type, without repeats."""
    params = [dim.param for dim in space.dims if dim.param.name == name]
    if not params:
        names = {dim.param.name for dim in space.dims}
        raise SpaceError(f"grid values for unknown parameter {name!r}{did_you_mean(name, names)}")
    if not isinstance(given, list | tuple) or not given:
        raise SpaceError(f"grid values for {name!r} must be a non-empty list")
    for param in params:
        for value in given:
            if not param.contains(value):
                raise SpaceError(f"grid value {value!r} for {name!r} is not in {_describe(param)}")
    coerced = [params[0].coerce(value) for value in given]
    return list({_choice_key(value): value for value in coerced}.values())


def _values_of(param: Param, points: int, values: Mapping[str, Sequence[Any]]) -> list[Any]:
    if param.name in values:
        return list(values[param.name])
    if isinstance(param, Branch):
        return list(param.choices)
    return param.grid_values(points)


def _grid_size(params: Sequence[Param], points: int, values: Mapping[str, Sequence[Any]]) -> int:
    size = 1
    for param in params:
        labels = _values_of(param, points, values)
        if isinstance(param, Branch):
            size *= sum(
                _grid_size(param.subspace(label).params, points, values) for label in labels
            )
        else:
            size *= len(labels)
    return size


def _grid_points(
    params: Sequence[Param], points: int, values: Mapping[str, Sequence[Any]]
) -> list[dict[str, Any]]:
    per_param: list[list[dict[str, Any]]] = []
    for param in params:
        options = []
        for value in _values_of(param, points, values):
            if isinstance(param, Branch):
                sub = param.subspace(value).params
                options += [
                    {param.name: value, **rest} for rest in _grid_points(sub, points, values)
                ]
            else:
                options.append({param.name: value})
        per_param.append(options)
    return [_merge(combo) for combo in itertools.product(*per_param)]


def _merge(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return merged
