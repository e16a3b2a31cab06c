"""The statements of the storage layer, built once, and the functions that run them
inside a Storage transaction (so that its public methods and their retries share
them). Statements on the per-trial path are built at import: building and hashing
a statement costs more than SQLite takes to run it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hpo.direction import Direction
from hpo.errors import BudgetMet
from hpo.records import FrozenTrial, StudyInfo, TrialState
from hpo.schema import JSONText, studies_table, trials_table, values_table

# Statements of the per-trial path, built once: building and hashing a
# statement costs more than SQLite takes to run it.
_t, _v = trials_table, values_table
# the last number: one step back from the end of the (study_id, number) index
MAX_NUMBER = (
    sa.select(_t.c.number)
    .where(_t.c.study_id == sa.bindparam("b_sid"))
    .order_by(_t.c.number.desc())
    .limit(1)
)
INSERT_TRIAL = sa.insert(_t)
_s = studies_table
_LOCK_STUDY = (
    sa.select(_s.c.study_id).where(_s.c.study_id == sa.bindparam("b_sid")).with_for_update()
)
_TAKE_PLACES = (
    sa.update(_s)
    .where(_s.c.study_id == sa.bindparam("b_sid"))
    .values(budget_taken=_s.c.budget_taken + sa.bindparam("b_n"))
)
_TAKE_PLACES_WITHIN = _TAKE_PLACES.where(
    _s.c.budget_taken + sa.bindparam("b_n") <= sa.bindparam("b_budget")
)
_FINISHED_COLUMNS = (
    "state",
    "params",
    "value",
    "objective_values",
    "constraints",
    "error",
    "finished_at",
)
_FINISH = (
    sa.update(_t)
    .where(_t.c.trial_id == sa.bindparam("b_trial_id"), _t.c.state == TrialState.RUNNING.value)
    .values({name: sa.bindparam(f"b_{name}") for name in _FINISHED_COLUMNS})
)
_FINISH_IF_HEARTBEAT = _FINISH.where(_t.c.heartbeat_at == sa.bindparam("b_heartbeat"))


# Bulk reads fetch JSON as text and intermediate values as stored (NULL for NaN), and
# trials_from_rows decodes them a column at a time: SQLAlchemy's per-value result
# processing cost five times the query when loading 100,000 trials.
_TRIAL_FIELDS = (
    "trial_id",
    "number",
    "state",
    "params",
    "value",
    "error",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "worker",
    "user_attrs",
    "system_attrs",
    "objective_values",
    "constraints",
)
TRIAL_COLUMNS = [
    sa.type_coerce(_t.c[name], sa.Text).label(name)
    if isinstance(_t.c[name].type, JSONText)
    else _t.c[name]
    for name in _TRIAL_FIELDS
]
# (labelled: SQLite matches a compound ORDER BY only to named result columns)
VALUE_COLUMNS = [
    _v.c.trial_id.label("trial_id"),
    _v.c.step.label("step"),
    sa.type_coerce(_v.c.value, sa.Double).label("value"),
]


def _selection(*wheres: Any) -> tuple[sa.Executable, sa.Executable]:
    """The trials matching any of `wheres` (disjoint conditions), and their intermediate
    values, each by number.

    Several conditions are one SELECT each joined by UNION ALL, not an OR: planners
    turn `number > ? OR number IN (...)` into a scan of the whole study, while each
    branch alone is a range of the (study_id, number) index.
    """
    trials = [sa.select(*TRIAL_COLUMNS).where(where) for where in wheres]
    values = [
        sa.select(*VALUE_COLUMNS).join(_t, _t.c.trial_id == _v.c.trial_id).where(where)
        for where in wheres
    ]
    if len(wheres) == 1:
        return trials[0].order_by(_t.c.number), values[0].order_by(_v.c.trial_id, _v.c.step)
    all_trials, all_values = sa.union_all(*trials), sa.union_all(*values)
    return (
        all_trials.order_by(all_trials.selected_columns.number),
        all_values.order_by(all_values.selected_columns.trial_id, all_values.selected_columns.step),
    )


_IN_STUDY = _t.c.study_id == sa.bindparam("b_study_id")
_AFTER = _t.c.number > sa.bindparam("b_after")
# (only numbers up to `after`, so that the branches of TRIALS_SINCE never overlap; the
# caller filters them: a `number <= ?` here turns SQLite's plan into a range scan)
_LISTED = _t.c.number.in_(sa.bindparam("b_numbers", expanding=True))
TRIALS_ALL = _selection(_IN_STUDY)
TRIALS_AFTER = _selection(sa.and_(_IN_STUDY, _AFTER))
TRIALS_SINCE = _selection(sa.and_(_IN_STUDY, _AFTER), sa.and_(_IN_STUDY, _LISTED))


PAGE_KEYS = {
    "number": _t.c.number,
    "value": _t.c.value,
    "duration": _t.c.finished_at - _t.c.started_at,
}


PAGE_BY_IDS = 1000  # pages up to this size are read by their ids (binds are limited)


def paged(query: sa.Select[Any], limit: int | None, offset: int) -> sa.Select[Any]:
    """`query` limited to `limit` rows (all without one) from `offset` on."""
    if limit is not None:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def page_by_ids(
    conn: Connection, where: Any, ordered: tuple[Any, ...], limit: int, offset: int
) -> tuple[Sequence[Any], Sequence[Any]]:
    """A page's rows and intermediate values: its ids first (a deep offset then sorts
    narrow rows, not whole trials), then those trials and their values."""
    ids = (
        conn.execute(paged(sa.select(_t.c.trial_id).where(where).order_by(*ordered), limit, offset))
        .scalars()
        .all()
    )
    found = conn.execute(sa.select(*TRIAL_COLUMNS).where(_t.c.trial_id.in_(ids))).all()
    place = {trial_id: i for i, trial_id in enumerate(ids)}
    values = conn.execute(
        sa.select(*VALUE_COLUMNS).where(_v.c.trial_id.in_(ids)).order_by(_v.c.trial_id, _v.c.step)
    ).all()
    return sorted(found, key=lambda row: place[row[0]]), values


def same_value(stored: float, value: float) -> bool:
    return stored == value or (math.isnan(stored) and math.isnan(value))


def lock_study(conn: Connection, study_id: int) -> None:
    """Hold the study's row until commit: its trial inserts and claims go one at a time."""
    if conn.dialect.name != "sqlite":  # BEGIN IMMEDIATE has locked the whole file
        conn.execute(_LOCK_STUDY, {"b_sid": study_id})


def take_places(conn: Connection, study_id: int, n: int, budget: int | None = None) -> None:
    """Add `n` to the study's count of places taken in its budget, holding its row
    until commit (so this is also the lock of `lock_study`).

    A place is taken by every trial that is neither WAITING nor re-queued (the SQL
    form of FrozenTrial.counts_toward_budget, plus RUNNING trials): each
    transaction that moves a trial in or out of that set changes the count, so
    it is exact whatever happens to the workers, and reading it costs the same
    at any size of study. With `budget`, check it under the same lock: BudgetMet
    when the places would exceed it, and nothing is written.
    """
    binds = {"b_sid": study_id, "b_n": n, "b_budget": budget}
    if budget is None:
        conn.execute(_TAKE_PLACES, binds)
        return
    taken = conn.execute(_TAKE_PLACES_WITHIN, binds).rowcount == 1
    # (no row changed and no row found: the study is gone, and the insert that
    # follows fails on its foreign key)
    if not taken and conn.execute(_LOCK_STUDY, binds).first() is not None:
        raise BudgetMet(f"the budget of {budget} trials is taken")


def insert_trial(
    conn: Connection,
    study_id: int,
    state: TrialState,
    params: dict[str, Any],
    worker: str | None,
    system_attrs: dict[str, Any],
    number: int | None = None,
    user_attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    if number is None:
        last = conn.execute(MAX_NUMBER, {"b_sid": study_id}).scalar()
        number = 0 if last is None else last + 1
    now = time.time() if state == TrialState.RUNNING else None
    row = {
        "study_id": study_id,
        "number": number,
        "state": state.value,
        "params": params,
        "started_at": now,
        "heartbeat_at": now,
        "worker": worker,
        "user_attrs": user_attrs or {},
        "system_attrs": system_attrs,
        "value": None,
        "objective_values": None,
        "constraints": None,
        "error": None,
        "finished_at": None,
    }
    (trial_id,) = conn.execute(INSERT_TRIAL, row).inserted_primary_key or (None,)
    return _trial_from_row({**row, "trial_id": trial_id}, {})


def row_of(trial: FrozenTrial, study_id: int, number: int) -> dict[str, Any]:
    """The row of a trial added in bulk (finished, or WAITING in an import)."""
    return {
        "study_id": study_id,
        "number": number,
        "state": trial.state.value,
        "params": trial.params,
        "value": trial.value,
        "objective_values": trial.objective_values,
        "constraints": trial.constraints,
        "error": trial.error,
        "started_at": trial.started_at,
        "finished_at": trial.finished_at,
        "heartbeat_at": trial.heartbeat_at,
        "worker": trial.worker,
        "user_attrs": trial.user_attrs,
        "system_attrs": trial.system_attrs,
        "requeued": int("requeued_as" in trial.system_attrs),  # (see counts_toward_budget)
    }


def finish(
    conn: Connection,
    trial_id: int,
    state: TrialState,
    params: dict[str, Any],
    finished_at: float,
    value: float | None = None,
    error: str | None = None,
    heartbeat: float | None = None,
    values: list[float] | None = None,
    constraints: list[float] | None = None,
) -> int:
    """RUNNING -> `state`, guarded (optionally also on the heartbeat seen); rows changed.
    `values`: a study of several objectives' (then `value` is None)."""
    binds = {
        "b_trial_id": trial_id,
        "b_state": state.value,
        "b_params": params,
        "b_value": value,
        "b_objective_values": values,
        "b_constraints": constraints,
        "b_error": error,
        "b_finished_at": finished_at,
        "b_heartbeat": heartbeat,
    }
    statement = _FINISH if heartbeat is None else _FINISH_IF_HEARTBEAT
    return conn.execute(statement, binds).rowcount


def study_from_row(row: Any) -> StudyInfo:
    fields = dict(row)
    del fields["budget_taken"]
    first = Direction(fields.pop("direction"))
    several = fields.pop("directions")
    fields["directions"] = tuple(map(Direction, several)) if several else (first,)
    fields["pruner"] = fields["pruner"] or "none"  # (NULL in studies from schema 1)
    fields["pruner_options"] = fields["pruner_options"] or {}
    return StudyInfo(**fields)


_STATES = {state.value: state for state in TrialState}  # (a dict: faster than TrialState())


def trials_from_rows(
    rows: Sequence[Any], values: Sequence[Any], param_defs: Mapping[str, Any] | None = None
) -> list[FrozenTrial]:
    """Trials from rows of TRIAL_COLUMNS, with their rows of VALUE_COLUMNS (and the
    study's parameter definitions, given by the caller, attached to each).

    The JSON of a column is decoded for all rows in one call, as one array: a
    single parse in C, where a json.loads per value spends most of its time
    getting there.
    """
    per_trial: dict[int, dict[int, float]] = {}
    for trial_id, step, value in values:
        per_trial.setdefault(trial_id, {})[step] = math.nan if value is None else value
    params, user_attrs, system_attrs = (_decode_all([row[i] for row in rows]) for i in (3, 10, 11))
    defs = {} if param_defs is None else param_defs
    return [
        FrozenTrial(
            trial_id=row[0],
            number=row[1],
            state=_STATES[row[2]],
            params=params[i],
            value=row[4],
            intermediate=per_trial.get(row[0], {}),
            started_at=row[6],
            finished_at=row[7],
            heartbeat_at=row[8],
            worker=row[9],
            error=row[5],
            user_attrs=user_attrs[i],
            system_attrs=system_attrs[i],
            objective_values=None if row[12] is None else json.loads(row[12]),
            constraints=None if row[13] is None else json.loads(row[13]),
            param_defs=defs,
        )
        for i, row in enumerate(rows)
    ]


def _decode_all(texts: list[str]) -> list[Any]:
    """JSON documents (as stored by JSONText: never NULL here) decoded in one call."""
    return json.loads(f"[{','.join(texts)}]") if texts else []


def _trial_from_row(row: Any, intermediate: dict[int, float]) -> FrozenTrial:
    return FrozenTrial(
        trial_id=row["trial_id"],
        number=row["number"],
        state=TrialState(row["state"]),
        params=row["params"],
        value=row["value"],
        intermediate=intermediate,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        worker=row["worker"],
        error=row["error"],
        user_attrs=row["user_attrs"],
        system_attrs=row["system_attrs"],
        objective_values=row.get("objective_values"),
        constraints=row.get("constraints"),
    )
