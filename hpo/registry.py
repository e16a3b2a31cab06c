"""Registries of named parts with options (samplers, pruners), and the checks of options.

A registry maps a name to where its factory lives, "module:attribute",
imported the first time the part is used: `hpo --help` loads no SciPy, and a
reference sampler's library is needed only by a study that uses it. A
factory's keyword parameters are the part's options, their defaults the
defaults; its docstring's first line is its summary (`hpo samplers`).

Both registries give the same one-line errors: an unknown name or option
(with the closest valid one), and through `OptionChecks` a bad value (an
integer below its minimum, a number out of range, not a flag, not one of
the choices), each naming the part, the option and the value.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpo.errors import HpoError, did_you_mean


@dataclass(frozen=True)
class OptionChecks:
    """Checks of option values that raise `error` ("tpe: gamma must be ...")."""

    error: type[HpoError]

    def integer(self, part: str, name: str, value: Any, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise self.error(f"{part}: {name} must be an integer >= {minimum}, got {value!r}")
        return int(value)

    def number(
        self,
        part: str,
        name: str,
        value: Any,
        low: float = -math.inf,
        high: float = math.inf,
        *,
        open_low: bool = False,
        open_high: bool = False,
    ) -> float:
        """A finite number in [low, high]; `open_low` / `open_high` leave an end out."""
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        inside = (
            is_number
            and low <= value <= high
            and not (open_low and value == low)
            and not (open_high and value == high)
        )
        if not inside or not math.isfinite(value):
            raise self.error(
                f"{part}: {name} must be {_range(low, high, open_low, open_high)}, got {value!r}"
            )
        return float(value)

    def flag(self, part: str, name: str, value: Any, allow_none: bool = False) -> bool | None:
        if not isinstance(value, bool) and not (allow_none and value is None):
            extra = " (or null for the library's default)" if allow_none else ""
            raise self.error(f"{part}: {name} must be true or false{extra}, got {value!r}")
        return value

    def one_of(self, part: str, name: str, value: Any, choices: Sequence[Any]) -> Any:
        if value not in choices:
            hint = did_you_mean(value, map(str, choices)) if isinstance(value, str) else ""
            listed = ", ".join(str(c) for c in choices)
            raise self.error(f"{part}: {name} must be one of {listed}, got {value!r}{hint}")
        return value


@dataclass
class Registry:
    """Named factories of one kind of part, loaded when first used.

    `context`: factory parameters that are not options but given by the
    caller of `make` (a sampler's `seed`: the study's).
    """

    kind: str  # "sampler", "pruner": for messages
    entries: dict[str, str]  # name -> "module:attribute"
    error: type[HpoError]
    context: frozenset[str] = frozenset()
    _loaded: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)

    @property
    def check(self) -> OptionChecks:
        return OptionChecks(self.error)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        return list(self.entries)

    def factory(self, name: str) -> Callable[..., Any]:
        """The factory registered as `name` (imported now if not yet)."""
        self.check_name(name)
        if name not in self._loaded:
            module, _, attribute = self.entries[name].partition(":")
            self._loaded[name] = getattr(importlib.import_module(module), attribute)
        return self._loaded[name]

    def check_name(self, name: Any) -> None:
        if name not in self.entries:
            raise self.error(
                f"unknown {self.kind} {name!r}{did_you_mean(str(name), self.entries)}; "
                f"available: {', '.join(self.entries)}"
            )

    def options(self, name: str) -> list[tuple[str, Any]]:
        """The part's options and their defaults (None when required)."""
        parameters = inspect.signature(self.factory(name)).parameters.values()
        return [
            (p.name, None if p.default is p.empty else p.default)
            for p in parameters
            if p.name not in self.context and p.kind is not p.VAR_KEYWORD
        ]

    def summary(self, name: str) -> str:
        """The first line of the factory's docstring."""
        doc = inspect.getdoc(self.factory(name)) or ""
        return doc.splitlines()[0] if doc else ""

    def make(self, name: str, options: Mapping[str, Any] | None = None, **context: Any) -> Any:
        """Build the part: unknown names and options raise the registry's error, and
        so do bad values (each factory checks its own, with `check`)."""
        accepted = [option for option, _ in self.options(name)]
        for key in options or {}:
            if key not in accepted:
                raise self.error(
                    f"{self.kind} {name!r} has no option {key!r}{did_you_mean(key, accepted)}; "
                    f"its options: {', '.join(accepted) or 'none'}"
                )
        factory = self.factory(name)
        wanted = inspect.signature(factory).parameters
        given = {key: value for key, value in context.items() if key in wanted}
        return factory(**(options or {}), **given)

    def resolve(
        self, part: Any, options: Mapping[str, Any] | None = None
    ) -> tuple[str, dict[str, Any], int | None]:
        """A part given by name (and options) or as an object: its name, its options,
        and the seed an object was made with (None for a name, or none kept)."""
        if isinstance(part, str):
            return part, dict(options or {}), None
        if options:
            raise self.error(
                f"{self.kind} options go either in the {self.kind} object or in "
                f"{self.kind}_options with its name, not both"
            )
        name, described, context = self.describe(part)
        return name, described, context.get("seed")

    def describe(self, part: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A part built by its class (`TPESampler(gamma=0.2, seed=1)`) as what a study
        stores: its name, its options, and its context values (a sampler's seed).

        Each option is read back from the attribute of the same name (or with a
        leading underscore), as every registered class keeps them.
        """
        for name in self.entries:
            if type(part) is self.factory(name):
                break
        else:
            raise self.error(
                f"{type(part).__name__} is not a {self.kind} hpo knows; give one of "
                f"{', '.join(self.entries)} by name, or its class from hpo"
            )
        values: dict[str, Any] = {}
        for option in inspect.signature(type(part)).parameters:
            for attribute in (option, f"_{option}"):
                if hasattr(part, attribute):
                    values[option] = getattr(part, attribute)
                    break
        options = {k: v for k, v in values.items() if k not in self.context}
        return name, options, {k: v for k, v in values.items() if k in self.context}


def _range(low: float, high: float, open_low: bool, open_high: bool) -> str:
    """'a number in (0.0, 1.0)', or 'a finite number' when unbounded."""
    if (low, high) == (-math.inf, math.inf):
        return "a finite number"
    return f"a number in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
