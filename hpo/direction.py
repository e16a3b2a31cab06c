"""Direction: whether a study minimizes or maximizes, and what "better" and "best" mean.

Every comparison of objective values goes through this type, so no module
compares direction strings. A Direction is a StrEnum: it is stored, printed
and compared as "minimize" or "maximize".

`sign` turns a value into a loss (lower is better): loss = sign * value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from hpo.errors import StudyConfigError

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


class Direction(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    @classmethod
    def parse(cls, value: Any) -> Direction:
        """A Direction from its name; StudyConfigError names the bad value."""
        try:
            return cls(value)
        except ValueError:
            raise StudyConfigError(
                f"direction must be 'minimize' or 'maximize', got {value!r}"
            ) from None

    @property
    def sign(self) -> float:
        """+1 when minimizing, -1 when maximizing: sign * value is a loss."""
        return 1.0 if self is Direction.MINIMIZE else -1.0

    @property
    def best_word(self) -> str:
        """How the best value reads: 'lowest' or 'highest'."""
        return "lowest" if self is Direction.MINIMIZE else "highest"

    def loss(self, value: float) -> float:
        """The value as a loss: lower is better."""
        return self.sign * value

    def is_better(self, a: float, b: float) -> bool:
        """Whether `a` is strictly better than `b`."""
        return self.sign * a < self.sign * b

    def best(self, values: Iterable[float]) -> float:
        """The best of the values."""
        return min(values) if self is Direction.MINIMIZE else max(values)

    def best_of(self, items: Iterable[T], key: Callable[[T], float]) -> T:
        """The item whose key is best (the first one on a tie)."""
        return min(items, key=lambda item: self.sign * key(item))

    def best_so_far(self, values: np.ndarray) -> np.ndarray:
        """The running best along the last axis, ignoring NaN; shape of `values`."""
        import numpy as np  # (here: the CLI imports this module and starts without NumPy)

        ufunc = np.fmin if self is Direction.MINIMIZE else np.fmax
        return ufunc.accumulate(values, axis=-1)
