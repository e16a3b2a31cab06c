"""Commands that read and manage stored studies: `hpo studies`, `trials`, `best`,
`show`, `enqueue`, `export`, `delete`, `report`, `plot` and `samplers`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hpo.cli import UserError, cli, echo_json, json_option, say, storage_option
from hpo.errors import SpaceError
from hpo.export import FORMATS
from hpo.plot_kinds import COMPARISON_KINDS, STUDY_KINDS
from hpo.records import TrialState
from hpo.terminal import printable

if TYPE_CHECKING:
    from hpo.records import FrozenTrial
    from hpo.space import Param
    from hpo.study import Study


@cli.command(name="report")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write [default: NAME.html].",
)
@storage_option
def report_command(name: str, output: Path | None, storage: str | None) -> None:
    """Write an HTML report of study NAME, or of comparison NAME.

    One self-contained file (figures inline, nothing fetched): open it in
    any browser, offline.
    """
    from hpo import reports
    from hpo.connection import choose_storage

    path = reports.report(name, choose_storage(storage), output)
    say(f"wrote {path}")


@cli.command(name="plot")
@click.argument("name")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(STUDY_KINDS + COMPARISON_KINDS),
    help="Which figure: of a study, "
    + ", ".join(STUDY_KINDS)
    + "; of a comparison, "
    + ", ".join(COMPARISON_KINDS)
    + ".",
)
@click.option("--objective", help="best-so-far, fronts: which objective of the comparison.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write: .png or .svg.",
)
@storage_option
def plot_command(
    name: str, kind: str, objective: str | None, output: Path, storage: str | None
) -> None:
    """Draw one figure of study (or comparison) NAME into a PNG or SVG file."""
    from hpo import plots
    from hpo.connection import choose_storage

    path = plots.plot(name, kind, output, choose_storage(storage), objective)
    say(f"wrote {path}")


@cli.command(name="samplers")
@json_option
def samplers_command(as_json: bool) -> None:
    """List the samplers, their options and defaults."""
    from hpo.samplers import sampler_names, sampler_options, sampler_summary

    listing = [
        {"name": name, "summary": sampler_summary(name), "options": dict(sampler_options(name))}
        for name in sampler_names()
    ]
    if as_json:
        echo_json(listing)
        return
    for name in sampler_names():
        say(f"{name:14s} {sampler_summary(name)}")
        for option, default in sampler_options(name):
            say(f"{'':16s}{option} = {json.dumps(default)}")


@cli.command(name="studies")
@click.option(
    "--all",
    "every_study",
    is_flag=True,
    help="List each study of a comparison too (by default, a row per comparison).",
)
@storage_option
@json_option
def studies_command(every_study: bool, storage: str | None, as_json: bool) -> None:
    """List the studies in the storage."""
    from hpo.catalog import studies
    from hpo.connection import choose_storage
    from hpo.display import studies_table
    from hpo.storage import comparison_of

    summaries = studies(choose_storage(storage))
    if as_json:  # every study, each with the comparison it belongs to (or null)
        echo_json(
            [
                {
                    "name": s.info.name,
                    "direction": s.info.directions_text,
                    "directions": list(s.info.directions),
                    "sampler": s.info.sampler,
                    "objective": s.info.objective,
                    "budget": s.info.budget,
                    "seed": s.info.seed,
                    "created_at": s.info.created_at,
                    "counts": s.counts,
                    "best_value": s.best_value,
                    "comparison": comparison_of(s.info),
                }
                for s in summaries
            ]
        )
        return
    if not summaries:
        say("No studies.")
        return
    say(studies_table(summaries, every_study))


@cli.command()
@click.argument("name")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in TrialState], case_sensitive=False),
    help="Only trials in this state (repeatable).",
)
@click.option(
    "--sort",
    type=click.Choice(["number", "value", "duration"]),
    default="number",
    show_default=True,
    help="Order; value puts the best first.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many trials.")
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, help="Skip this many trials first."
)
@storage_option
@json_option
def trials(
    name: str,
    states: tuple[str, ...],
    sort: str,
    limit: int | None,
    offset: int,
    storage: str | None,
    as_json: bool,
) -> None:
    """List the trials of study NAME."""
    from hpo.connection import choose_storage
    from hpo.display import trials_table
    from hpo.storage import Storage

    # the database filters, sorts and cuts: a page costs the same in a study of any size
    # (and the command loads no Study, nor NumPy: it starts at once)
    with Storage(choose_storage(storage), create=False) as store:
        info = store.get_study(name)
        selected = store.page(info, states, sort, sort == "duration", limit, offset).trials
    if as_json:
        echo_json([t.to_dict() for t in selected])
    elif selected:
        say(trials_table(selected))
    else:
        say("No trials.")


@cli.command()
@click.argument("name")
@storage_option
@json_option
def best(name: str, storage: str | None, as_json: bool) -> None:
    """Show the best completed trial of study NAME (of a study of several objectives,
    its Pareto front: the trials no other beats in every objective)."""
    from hpo.catalog import load_study
    from hpo.connection import choose_storage
    from hpo.display import fmt_result, fmt_value, trials_table

    study = load_study(name, choose_storage(storage))
    if study.n_objectives > 1:
        front = study.best_trials
        if as_json:
            echo_json([t.to_dict() for t in front])
            return
        say(
            f"Pareto front of {name!r}: {len(front)} trials (objectives "
            f"{study.info.directions_text})"
        )
        say(trials_table(front))
        return
    trial = study.best_trial
    if as_json:
        echo_json(trial.to_dict())
        return
    say(f"trial {trial.number}: value {fmt_result(trial)}")
    for key, value in trial.params.items():
        say(f"  {key} = {fmt_value(value)}")


@cli.command()
@click.argument("name")
@click.argument("number", type=click.IntRange(min=0))
@storage_option
@json_option
def show(name: str, number: int, storage: str | None, as_json: bool) -> None:
    """Show trial NUMBER of study NAME in full."""
    from hpo.catalog import load_study
    from hpo.connection import choose_storage

    trial = load_study(name, choose_storage(storage)).trial(number)
    if as_json:
        echo_json(trial.to_dict())
    else:
        say(_trial_details(name, trial))


@cli.command()
@click.argument("name")
@click.option(
    "--param",
    "-p",
    "pairs",
    multiple=True,
    required=True,
    metavar="KEY=VALUE",
    help="A parameter value (repeatable); left-out ones are drawn at random.",
)
@storage_option
@json_option
def enqueue(name: str, pairs: tuple[str, ...], storage: str | None, as_json: bool) -> None:
    """Queue a point of study NAME to be evaluated before any sampled one."""
    from hpo.catalog import load_study
    from hpo.connection import choose_storage
    from hpo.display import command

    study = load_study(name, choose_storage(storage))
    record = study.enqueue(dict(_parse_pair(study, pair) for pair in pairs))
    if as_json:
        echo_json(record.to_dict())
        return
    say(f"queued trial {record.number}: {record.params}")
    if study.budget is not None and study.budget_met():
        hint = command(study.storage.url, "resume", name, "--trials", str(study.budget + 1))
        say(
            f"note: the budget of {study.budget} trials is met; to run this point, "
            f"raise it: {hint}",
            err=True,
        )


@cli.command(name="export")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "-o",
    "--output",
    help="Write to this file instead of stdout (optuna: an Optuna database URL or journal file).",
)
@storage_option
def export_command(name: str, fmt: str, output: str | None, storage: str | None) -> None:
    """Export the trials of study NAME as CSV or JSON, or as a study of an Optuna
    database (--format optuna -o URL_OR_JOURNAL_FILE: see docs/optuna.md)."""
    from hpo.catalog import load_study
    from hpo.connection import choose_storage
    from hpo.export import export

    study = load_study(name, choose_storage(storage))
    if fmt == "optuna":
        from hpo.optuna_export import export_optuna

        if output is None:
            raise UserError("--format optuna needs -o: an Optuna database URL or journal file")
        say(export_optuna(study, output))
        return
    text = export(study, fmt)
    if output is None:
        # exact into a pipe (color=True: click would strip what looks like a colour code)
        click.echo(printable(text) if sys.stdout.isatty() else text, nl=False, color=True)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from None
    say(f"wrote {output}", err=True)


@cli.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@storage_option
def delete(name: str, yes: bool, storage: str | None) -> None:
    """Delete study NAME and all its trials."""
    from hpo.catalog import delete_study, load_study
    from hpo.connection import choose_storage

    chosen = choose_storage(storage)
    study = load_study(name, chosen)  # fails clearly if there is no such study
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete study {name!r} without --yes")
        click.confirm(
            printable(f"Delete study {name!r} and its {len(study.trials)} trials?"), abort=True
        )
    delete_study(name, study.storage)
    say(f"deleted study {name!r}")


# -- helpers ----------------------------------------------------------------------


def _parse_pair(study: Study, pair: str) -> tuple[str, Any]:
    """'lr=0.01' -> ('lr', 0.01), typed by the parameter's kind in the study."""
    key, sep, text = pair.partition("=")
    if not sep or not key:
        raise UserError(f"--param {pair!r}: expected KEY=VALUE")
    params = [d.param for d in study.space.dims if d.param.name == key]
    params += [study.suggested_params[key]] if key in study.suggested_params else []
    if not params:
        return key, text  # the study reports the unknown name, with a suggestion
    return key, _typed(params[0], text, pair)


def _typed(param: Param, text: str, pair: str) -> Any:
    from hpo.space import Branch, Categorical, Numeric

    if isinstance(param, Numeric):
        try:
            number = float(text)
        except ValueError:
            raise UserError(f"--param {pair!r}: {text!r} is not a number") from None
        return int(number) if param.type == "int" and number.is_integer() else number
    if isinstance(param, Branch):
        return text
    assert isinstance(param, Categorical)
    for choice in param.choices:
        if text == str(choice) or text == json.dumps(choice):
            return choice
    raise SpaceError(f"parameter {param.name!r}: {text!r} is not one of {list(param.choices)}")


def _trial_details(name: str, trial: FrozenTrial) -> str:
    from hpo.display import curve, fmt_duration, fmt_result, fmt_time, fmt_value

    several = trial.objective_values is not None
    lines = [
        f"study {name!r}, trial {trial.number}: {trial.state}",
        f"{'values' if several else 'value '}    {fmt_result(trial)}",
        f"started   {fmt_time(trial.started_at)}",
        f"finished  {fmt_time(trial.finished_at)}",
        f"duration  {fmt_duration(trial.duration)}",
        f"worker    {trial.worker or '-'}",
    ]
    if trial.constraints is not None:
        verdict = "feasible" if trial.feasible else "infeasible"
        shown = ", ".join(fmt_value(c) for c in trial.constraints)
        lines.append(f"constraints ({shown}): {verdict}, each must be <= 0")
    lines.append("params:")
    lines += [f"  {k} = {fmt_value(v)}" for k, v in trial.params.items()] or ["  (none)"]
    if trial.intermediate:
        lines.append("intermediate values (step: value):")
        lines += [f"  {step}: {fmt_value(v)}" for step, v in sorted(trial.intermediate.items())]
        if len(trial.intermediate) > 1:
            lines.append(curve(trial.intermediate))
        if trial.state == TrialState.PRUNED:
            lines.append(f"pruned at step {trial.last_step}")
    if trial.user_attrs:
        lines.append("user attributes:")
        lines += [f"  {k} = {json.dumps(v)}" for k, v in trial.user_attrs.items()]
    for key in ("retry_of", "requeued_as"):
        if key in trial.system_attrs:
            lines.append(f"{key.replace('_', ' ')} trial {trial.system_attrs[key]}")
    if trial.error:
        lines.append("error:")
        lines += [f"  {line}" for line in trial.error.rstrip().splitlines()]
    return "\n".join(lines)
