"""A study's trials as CSV (one row per trial) or JSON (the study and every trial)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import TYPE_CHECKING, Any

from hpo.records import error_summary, param_names

if TYPE_CHECKING:
    from hpo.study import Study

FORMATS = ("csv", "json", "optuna")  # optuna: a study in an Optuna database (hpo.optuna_export)


def export(study: Study, format: str = "csv") -> str:  # noqa: A002 - the CLI's word
    """The study as text in `format` ("csv" or "json")."""
    if format == "csv":
        return _csv(study)
    if format == "json":
        return json.dumps(study_dict(study, with_trials=True), indent=2) + "\n"
    if format == "optuna":
        raise ValueError("the optuna format is a database: see hpo.optuna_export.export_optuna")
    raise ValueError(f"unknown export format {format!r}; expected one of {FORMATS}")


def study_dict(study: Study, with_trials: bool = False) -> dict[str, Any]:
    info = study.info
    data: dict[str, Any] = {
        "name": info.name,
        "direction": info.directions_text,
        "directions": list(info.directions),
        "space": info.space,
        "suggested_params": {n: p.to_spec() for n, p in study.suggested_params.items()},
        "sampler": info.sampler,
        "sampler_options": info.sampler_options,
        "objective": info.objective,
        "objective_options": info.objective_options,
        "budget": info.budget,
        "seed": info.seed,
        "created_at": info.created_at,
        "user_attrs": info.user_attrs,
    }
    if with_trials:
        data["trials"] = [trial.to_dict() for trial in study.trials]
    return data


def _csv(study: Study) -> str:
    trials = study.trials
    names = param_names(trials)
    attrs = list(dict.fromkeys(k for t in trials for k in t.user_attrs))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "number",
            "state",
            "value",
            "started_at",
            "finished_at",
            "duration_s",
            *(f"params_{n}" for n in names),
            *(f"user_attrs_{k}" for k in attrs),
            "last_step",
            "error",
        ]
    )
    for t in trials:
        writer.writerow(
            [
                t.number,
                t.state.value,
                _cell(t.value),
                _iso(t.started_at),
                _iso(t.finished_at),
                _cell(t.duration),
                *(_cell(t.params.get(n)) for n in names),
                *(_cell(t.user_attrs.get(k)) for k in attrs),
                _cell(t.last_step),
                error_summary(t.error),
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")
