"""A study's trials as a pandas DataFrame, with Optuna's columns (`trials_dataframe`).

One row per trial. Columns, in Optuna's names: number, value, datetime_start,
datetime_complete, duration (a Timedelta), params_<name>, user_attrs_<key>,
system_attrs_<key>, state (its name); with `multi_index`, a two-level
column index instead ("params", "x"). pandas is optional: `pip install pandas`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError

if TYPE_CHECKING:
    import pandas

    from hpo.records import FrozenTrial

ATTRS = (
    "number",
    "value",
    "datetime_start",
    "datetime_complete",
    "duration",
    "params",
    "user_attrs",
    "system_attrs",
    "state",
)
_KEYED = ("params", "user_attrs", "system_attrs", "intermediate_values")
_ALLOWED = (*ATTRS, "intermediate_values")


def trials_dataframe(
    trials: Sequence[FrozenTrial], attrs: Sequence[str] | None = None, multi_index: bool = False
) -> pandas.DataFrame:
    try:
        import pandas as pd
    except ImportError:
        raise HpoError("trials_dataframe needs pandas: pip install pandas") from None
    attrs = tuple(attrs or ATTRS)
    unknown = [a for a in attrs if a not in _ALLOWED]
    if unknown:
        raise ValueError(f"unknown attrs {unknown}; choose from {', '.join(_ALLOWED)}")
    rows = [_row(trial, attrs) for trial in trials]
    columns = _columns(rows, attrs)
    frame = pd.DataFrame([[row.get(c) for c in columns] for row in rows])
    if multi_index:
        frame.columns = pd.MultiIndex.from_tuples(columns)
    else:
        frame.columns = pd.Index([f"{a}_{k}" if k else a for a, k in columns])
    return frame


def _row(trial: FrozenTrial, attrs: Sequence[str]) -> dict[tuple[str, str], Any]:
    """(attr, key) -> value; key "" for the plain attributes."""
    plain = {
        "number": trial.number,
        "value": trial.value,
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
        "duration": None if trial.duration is None else dt.timedelta(seconds=trial.duration),
        "state": trial.state.value,
    }
    keyed: dict[str, Mapping[Any, Any]] = {
        "params": trial.params,
        "user_attrs": trial.user_attrs,
        "system_attrs": trial.system_attrs,
        "intermediate_values": trial.intermediate,
    }
    row: dict[tuple[str, str], Any] = {}
    for attr in attrs:
        if attr in _KEYED:
            row.update({(attr, str(key)): value for key, value in keyed[attr].items()})
        else:
            row[(attr, "")] = plain[attr]
    return row


def _columns(
    rows: Sequence[dict[tuple[str, str], Any]], attrs: Sequence[str]
) -> list[tuple[str, str]]:
    """Plain attributes in `attrs` order; each keyed one's keys sorted, as Optuna does."""
    columns: list[tuple[str, str]] = []
    for attr in attrs:
        if attr in _KEYED:
            keys = sorted({key for row in rows for a, key in row if a == attr})
            columns += [(attr, key) for key in keys]
        else:
            columns.append((attr, ""))
    return columns
