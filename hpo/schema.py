"""The database schema: hpo's tables, their column types, the schema version and its
migrations. With `hpo.storage` and `hpo.queries`, the storage layer: the only
modules with SQL.

Everything is JSON text, never pickle. A database records its schema version
in hpo_meta; an older one is migrated in place by `migrate` (one transaction),
a newer one refused by `Storage`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hpo.records import TrialState

# 1 -> 2: studies got a pruner; 2 -> 3: trials got `requeued`; 3 -> 4: studies got
# `budget_taken`; 4 -> 5: studies got `directions`, trials `objective_values` and `constraints`
SCHEMA_VERSION = 5

metadata = sa.MetaData()


def _name_type() -> sa.types.TypeEngine:
    """Names compare exactly: MySQL's default collation ignores case and trailing spaces."""
    from sqlalchemy.dialects import mysql

    exact = mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.String(255).with_variant(exact, "mysql", "mariadb")


class JSONText(sa.TypeDecorator):
    """A JSON document stored as text (LONGTEXT on MySQL, TEXT elsewhere)."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import LONGTEXT

            return dialect.type_descriptor(LONGTEXT())
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        return None if value is None else json.dumps(value, allow_nan=False)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> Any:
        return None if value is None else json.loads(value)


class Loss(sa.TypeDecorator):
    """An intermediate value: NULL stands for NaN, which not every database stores."""

    impl = sa.Double
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: sa.Dialect) -> float | None:
        if value is None or math.isnan(value):
            return None
        if dialect.name in ("mysql", "mariadb"):  # no infinity there: the largest double
            return max(min(value, _FLOAT_MAX), -_FLOAT_MAX)
        return value

    def process_result_value(self, value: float | None, dialect: sa.Dialect) -> float:
        return math.nan if value is None else value


_FLOAT_MAX = 1.7976931348623157e308

meta_table = sa.Table(
    "hpo_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)
studies_table = sa.Table(
    "hpo_studies",
    metadata,
    sa.Column("study_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", _name_type(), nullable=False, unique=True),
    sa.Column("direction", sa.String(8), nullable=False),  # the first objective's
    sa.Column("directions", JSONText),  # every objective's, when there are several; else NULL
    sa.Column("space", JSONText, nullable=False),
    sa.Column("sampler", sa.String(64), nullable=False),
    sa.Column("sampler_options", JSONText, nullable=False),
    sa.Column("objective", sa.String(1024)),
    sa.Column("objective_options", JSONText, nullable=False),
    sa.Column("budget", sa.Integer),
    sa.Column("pruner", sa.String(64)),  # NULL: no pruner
    sa.Column("pruner_options", JSONText),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("user_attrs", JSONText, nullable=False),
    # places of the budget taken: trials not WAITING and not re-queued (see _take_places)
    sa.Column("budget_taken", sa.Integer, nullable=False, server_default="0"),
)
STATE_COLUMNS = ("study_id", "budget_taken")  # not part of a study's definition
suggested_table = sa.Table(
    "hpo_suggested_params",
    metadata,
    sa.Column("study_id", sa.ForeignKey("hpo_studies.study_id"), primary_key=True),
    sa.Column("name", _name_type(), primary_key=True),
    sa.Column("spec", JSONText, nullable=False),
)
trials_table = sa.Table(
    "hpo_trials",
    metadata,
    sa.Column("trial_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.ForeignKey("hpo_studies.study_id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("params", JSONText, nullable=False),
    sa.Column("value", sa.Double),  # of a study of one objective
    sa.Column("objective_values", JSONText),  # of a study of several: a list; else NULL
    sa.Column("constraints", JSONText),  # the values the objective set (feasible: all <= 0)
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("heartbeat_at", sa.Double),
    sa.Column("worker", sa.String(255)),
    sa.Column("user_attrs", JSONText, nullable=False),
    sa.Column("system_attrs", JSONText, nullable=False),
    # 1: a failure whose point was queued again; it does not count toward the budget
    sa.Column("requeued", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("study_id", "number", name="uq_hpo_trials_study_number"),
    sa.Index("ix_hpo_trials_study_state", "study_id", "state"),
)
values_table = sa.Table(
    "hpo_intermediate_values",
    metadata,
    sa.Column("trial_id", sa.ForeignKey("hpo_trials.trial_id"), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", Loss),
)

# What budget_taken counts, from the trials themselves (the migration that added it)
RECOUNT_TAKEN = (
    sa.select(sa.func.count())
    .where(
        trials_table.c.study_id == studies_table.c.study_id,
        trials_table.c.state != TrialState.WAITING.value,
        trials_table.c.requeued == 0,
    )
    .scalar_subquery()
)


def schema_version(conn: Connection) -> int | None:
    """The version a database was written with; None if it holds no hpo tables."""
    if "hpo_meta" not in sa.inspect(conn).get_table_names():
        return None
    version = conn.execute(
        sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
    ).scalar()
    return None if version is None else int(version)


def create_schema(conn: Connection) -> None:
    """Every table, and the current version."""
    metadata.create_all(conn)
    conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))


def migrate(conn: Connection) -> None:
    """Bring an older database up to SCHEMA_VERSION (in the caller's transaction)."""
    current = int(
        conn.execute(
            sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        ).scalar_one()
    )
    if current >= SCHEMA_VERSION:
        return  # another process migrated it meanwhile
    if current < 2:
        conn.exec_driver_sql("ALTER TABLE hpo_studies ADD COLUMN pruner VARCHAR(64)")
        conn.exec_driver_sql("ALTER TABLE hpo_studies ADD COLUMN pruner_options TEXT")
    if current < 3:
        conn.exec_driver_sql(
            "ALTER TABLE hpo_trials ADD COLUMN requeued INTEGER NOT NULL DEFAULT 0"
        )
        failed = conn.execute(
            sa.select(trials_table.c.trial_id, trials_table.c.system_attrs).where(
                trials_table.c.state == TrialState.FAIL.value
            )
        )
        requeued = [trial_id for trial_id, attrs in failed if "requeued_as" in attrs]
        if requeued:
            conn.execute(
                sa.update(trials_table)
                .where(trials_table.c.trial_id.in_(requeued))
                .values(requeued=1)
            )
    if current < 4:
        conn.exec_driver_sql(
            "ALTER TABLE hpo_studies ADD COLUMN budget_taken INTEGER NOT NULL DEFAULT 0"
        )
        conn.execute(sa.update(studies_table).values(budget_taken=RECOUNT_TAKEN))
    if current < 5:
        text = "LONGTEXT" if conn.dialect.name in ("mysql", "mariadb") else "TEXT"
        conn.exec_driver_sql(f"ALTER TABLE hpo_studies ADD COLUMN directions {text}")
        conn.exec_driver_sql(f"ALTER TABLE hpo_trials ADD COLUMN objective_values {text}")
        conn.exec_driver_sql(f"ALTER TABLE hpo_trials ADD COLUMN constraints {text}")
    conn.execute(
        sa.update(meta_table)
        .where(meta_table.c.key == "schema_version")
        .values(value=str(SCHEMA_VERSION))
    )
