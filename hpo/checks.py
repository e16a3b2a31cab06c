"""Checks of study settings, shared by `create_study`, `optimize` and study files.

Each raises StudyConfigError with a message that names the setting and the
value; study files prefix it with the file's name.
"""

from __future__ import annotations

import math
import numbers
import unicodedata
from typing import Any

from hpo.errors import StudyConfigError

MAX_NAME_LENGTH = 255
MAX_SEED = 2**63  # seeds are stored as signed 64-bit integers


def check_name(name: Any) -> None:
    if (
        not isinstance(name, str)
        or not name.strip()
        or name != name.strip()
        or len(name) > MAX_NAME_LENGTH
    ):
        raise StudyConfigError(
            f"study name must be a non-empty string of at most "
            f"{MAX_NAME_LENGTH} characters without outer whitespace, "
            f"got {name!r}"
        )
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise StudyConfigError(f"study name must not hold control characters, got {name!r}")


def check_seed(seed: Any) -> None:
    if seed is not None and not (_is_int(seed) and 0 <= seed < MAX_SEED):
        raise StudyConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")


def check_count(value: Any, what: str) -> None:
    """None, or a positive integer (a budget, a number of trials)."""
    if value is not None and not (_is_int(value) and value >= 1):
        raise StudyConfigError(f"{what} must be a positive integer, got {value!r}")


def check_timeout(timeout: Any) -> None:
    if timeout is not None and not (
        isinstance(timeout, numbers.Real)
        and not isinstance(timeout, bool)
        and math.isfinite(timeout)
        and float(timeout) > 0
    ):
        raise StudyConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")


def check_objective_names(names: Any, n_objectives: int) -> None:
    """One distinct, non-empty name per objective."""
    if (
        isinstance(names, str)
        or not isinstance(names, (list, tuple))
        or len(names) != n_objectives
        or not all(isinstance(n, str) and n.strip() for n in names)
        or len(set(names)) != len(names)
    ):
        raise StudyConfigError(
            f"objective_names must be {n_objectives} distinct non-empty strings, one per "
            f"objective, got {names!r}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
