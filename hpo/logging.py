"""Optuna's `optuna.logging` names for hpo's logger ("hpo"), so that a driver's
`optuna.logging.set_verbosity(optuna.logging.WARNING)` works with `hpo.` in its
place. Inside hpo, `import logging` still means the standard library's."""

from __future__ import annotations

import logging as _logging

CRITICAL = _logging.CRITICAL
FATAL = _logging.FATAL
ERROR = _logging.ERROR
WARNING = _logging.WARNING
WARN = _logging.WARN
INFO = _logging.INFO
DEBUG = _logging.DEBUG


def set_verbosity(level: int) -> None:
    _logging.getLogger("hpo").setLevel(level)


def get_verbosity() -> int:
    return _logging.getLogger("hpo").getEffectiveLevel()


def disable_default_handler() -> None:
    """(Optuna's: hpo adds no handler of its own; the command line sets one up.)"""


def enable_default_handler() -> None:
    """(Optuna's: hpo adds no handler of its own; the command line sets one up.)"""
