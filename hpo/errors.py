"""The exceptions hpo raises: one class per kind of problem, all under HpoError.

The CLI turns any HpoError into one line on stderr and exit code 2, so every
message here must name the problem on its own, without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HpoError(Exception):
    """Base class: a problem with the user's input or environment."""


class SpaceError(HpoError, ValueError):
    """An invalid search space or a point that does not belong to it."""


class StorageError(HpoError):
    """The database cannot be opened, read or written."""


class TransientStorageError(StorageError):
    """The database was briefly unavailable (locked, connection dropped): retrying may work."""


class DroppedConnectionError(TransientStorageError):
    """The server closed a connection it had accepted (restart, failover, termination)."""


class SchemaVersionError(StorageError):
    """The database was written by a newer hpo; it is left untouched."""


class StudyNotFoundError(HpoError, KeyError):
    """No study of that name in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TrialNotFoundError(StorageError):
    """A trial the caller holds is no longer in the database (its study was deleted)."""


class TrialStateError(HpoError, ValueError):
    """A trial that cannot be told or changed so: finished already with another outcome,
    or waiting (never asked for)."""


class InvalidValueError(HpoError, ValueError):
    """A value told or reported for a trial that is not a number (or a bad step)."""


class DuplicateStudyError(HpoError):
    """A study of that name already exists."""


class SamplerError(HpoError, ValueError):
    """An unknown sampler or a bad sampler option."""


class PrunerError(HpoError, ValueError):
    """An unknown pruner or a bad pruner option."""


class SamplerExhausted(HpoError):  # noqa: N818 - a signal, not a failure
    """The sampler has no new point to propose (a grid was fully evaluated)."""


class BudgetMet(HpoError):  # noqa: N818 - a signal, not a failure
    """No trial may start: the study's budget is taken by finished and running trials."""


class ObjectiveError(HpoError):
    """The objective cannot be found or loaded."""


class ClusterError(HpoError):
    """A Dask cluster that cannot be reached, or whose workers cannot run the study."""


class StudyConfigError(HpoError, ValueError):
    """An invalid study setting: name, direction, budget, seed, trial count, timeout."""


class StudyFileError(HpoError):
    """A study file that cannot be read or has invalid content."""


class NoCompletedTrialsError(HpoError, ValueError):
    """A best trial was asked for, but no trial has completed."""


class ServerError(StorageError):
    """The hpo server (`hpo serve`) cannot be reached, or failed on its side."""


class AccessDeniedError(HpoError):
    """The hpo server refused the request: no token, a wrong one, or a read-only one
    for a change."""


class TrialPruned(Exception):  # noqa: N818 - Optuna's name, kept for compatibility
    """Raised by an objective to stop its trial early; stored as PRUNED."""


def is_pruned(exc: BaseException) -> bool:
    """Whether an objective stopped its trial by pruning: it raised an exception of a
    class named TrialPruned, hpo's or Optuna's (`optuna.TrialPruned`, recognized by
    name, so that Optuna need not be imported, or even installed)."""
    return any(cls.__name__ == "TrialPruned" for cls in type(exc).__mro__)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''.

    Two neighbouring letters swapped ('lgo') first: difflib rates 'low' as close
    as 'log'.
    """
    choices = list(choices)
    swapped = [c for c in choices if _one_swap_apart(word, c)]
    close = swapped[:1] or difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _one_swap_apart(a: str, b: str) -> bool:
    """Whether swapping two neighbouring letters of `a` gives `b`."""
    if len(a) != len(b):
        return False
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return (
        len(differ) == 2
        and differ[1] == differ[0] + 1
        and a[differ[0]] == b[differ[1]]
        and a[differ[1]] == b[differ[0]]
    )
