"""The `hpo` command: a thin layer over the Python API (hpo.runner, hpo.study).

Bad input of any kind (file, space, sampler, objective, study name, storage)
prints one line on stderr and exits with code 2, before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import click

from hpo import __version__, comparison, plots, reports, runner
from hpo.connection import parse_url
from hpo.display import (
    CompareProgress,
    Progress,
    command,
    comparison_table,
    curve,
    fmt_duration,
    fmt_time,
    fmt_value,
    state_counts,
    studies_table,
    study_summary,
    trials_table,
)
from hpo.errors import HpoError, SpaceError
from hpo.export import FORMATS, export, study_dict
from hpo.samplers import sampler_names, sampler_options, sampler_summary
from hpo.space import Branch, Categorical, Numeric, Param
from hpo.storage import comparison_of
from hpo.study import Callback, Study, delete_study, load_study, studies
from hpo.studyfile import load_study_file
from hpo.trial import FrozenTrial, TrialState

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UserError(click.ClickException):
    """Bad input: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE


class _Group(click.Group):
    """Every error, click's own usage errors included, as one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HpoError as exc:
            raise UserError(str(exc)) from None

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> NoReturn:
        extra.pop("standalone_mode", None)
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("hpo: aborted", err=True)
            sys.exit(1)
        except click.exceptions.NoArgsIsHelpError as exc:  # plain `hpo`: the help
            click.echo(exc.format_message())
            sys.exit(0)
        except click.ClickException as exc:
            message = " ".join(exc.format_message().split())
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" (see: {exc.ctx.command_path} --help)"
            click.echo(f"hpo: error: {message}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(result if isinstance(result, int) else 0)


storage_option = click.option(
    "--storage",
    envvar="HPO_STORAGE",
    metavar="URL",
    help="SQLAlchemy URL or SQLite file path [default: $HPO_STORAGE, else ./hpo.db]",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes to run on this machine (they share the budget).",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpo")
def cli() -> None:
    """hpo: hyperparameter optimization with every trial kept in a database.

    Start with `hpo run STUDY.toml`, then inspect with `hpo studies`,
    `hpo trials NAME` and `hpo best NAME`.
    """


@cli.command()
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Study name [default: the file's name, else its stem].")
@click.option("--sampler", help="Sampler name, overriding the file's.")
@click.option("--trials", type=click.IntRange(min=1), help="Budget: total trials.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop starting trials after this many seconds.",
)
@click.option("--seed", type=click.IntRange(min=0), help="Random seed.")
@click.option("--pruner", help="Pruner name, overriding the file's (none to switch off).")
@workers_option
@storage_option
@json_option
def run(
    study_file: Path,
    name: str | None,
    sampler: str | None,
    trials: int | None,
    timeout: float | None,
    seed: int | None,
    pruner: str | None,
    workers: int,
    storage: str | None,
    as_json: bool,
) -> None:
    """Create the study STUDY_FILE describes and run it to its budget."""
    config = load_study_file(study_file).with_overrides(
        name=name, sampler=sampler, trials=trials, timeout=timeout, seed=seed, pruner=pruner
    )
    chosen = runner.storage_for(config, storage)
    _run_with_progress(
        lambda callbacks: runner.run(config, storage=chosen, workers=workers, callbacks=callbacks),
        config.name,
        chosen,
        as_json,
    )


@cli.command()
@click.argument("name")
@click.option("--trials", type=click.IntRange(min=1), help="Raise the budget to this total.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop starting trials after this many seconds.",
)
@click.option("--sampler", help="Switch to this sampler for the trials to come.")
@click.option("--pruner", help="Switch to this pruner for the trials to come.")
@workers_option
@storage_option
@json_option
def resume(
    name: str,
    trials: int | None,
    timeout: float | None,
    sampler: str | None,
    pruner: str | None,
    workers: int,
    storage: str | None,
    as_json: bool,
) -> None:
    """Continue study NAME until its budget is met.

    Trials left RUNNING by a process that died are marked FAIL and their
    points are evaluated again first.
    """
    chosen = storage or runner.default_storage()
    _run_with_progress(
        lambda callbacks: runner.resume(
            name,
            chosen,
            trials=trials,
            timeout=timeout,
            sampler=sampler,
            pruner=pruner,
            workers=workers,
            callbacks=callbacks,
        ),
        name,
        chosen,
        as_json,
    )


@cli.command()
@click.argument("name")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop starting trials after this many seconds.",
)
@click.option("--quiet", is_flag=True, help="No progress and no summary (warnings only).")
@storage_option
@json_option
def worker(
    name: str, timeout: float | None, quiet: bool, storage: str | None, as_json: bool
) -> None:
    """Join study NAME as one more worker, from this or another machine.

    The workers share the study's budget: together they run exactly the
    budgeted number of trials. Share a study between machines through a
    PostgreSQL or MySQL URL; an SQLite file only between processes of one
    machine (on its local disk).
    """
    chosen = storage or runner.default_storage()
    if quiet:
        runner.worker(name, chosen, timeout=timeout)
        return
    _run_with_progress(
        lambda callbacks: runner.worker(name, chosen, timeout=timeout, callbacks=callbacks),
        name,
        chosen,
        as_json,
    )


@cli.command(name="compare")
@click.argument("compare_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Comparison name [default: the file's name, else its stem].")
@click.option(
    "--objective",
    "objectives",
    metavar="A,B",
    help="Objective name(s), comma-separated (overrides the file's).",
)
@click.option(
    "--samplers", metavar="A,B,C", help="Sampler names, comma-separated (overrides the file's)."
)
@click.option("--seeds", type=click.IntRange(min=1), help="Studies per sampler and objective.")
@click.option("--trials", type=click.IntRange(min=1), help="Each study's budget.")
@storage_option
@json_option
def compare_command(
    compare_file: Path | None,
    name: str | None,
    objectives: str | None,
    samplers: str | None,
    seeds: int | None,
    trials: int | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Run the same objective(s) under each sampler and seed, and compare.

    COMPARE_FILE is a TOML comparison file (see studies/compare_*.toml), or
    give --objective and --samplers. Re-running continues: finished studies
    are kept, unfinished ones resume.
    """
    config = _compare_config(compare_file, name, objectives, samplers, seeds, trials)
    chosen = comparison.storage_for(config, storage)
    progress = CompareProgress(
        config.n_studies, config.trials, sys.stderr if as_json else sys.stdout
    )
    try:
        summary = comparison.compare(
            config, chosen, on_study=progress.on_study, callbacks=[progress]
        )
    except KeyboardInterrupt:
        progress.close()
        click.echo(
            "\ninterrupted: the finished studies are kept and the running trial is "
            "stored as interrupted; run the same command again to continue",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    if as_json:
        _echo_json(summary)
        return
    click.echo(comparison_table(summary))
    url = parse_url(chosen).render_as_string(hide_password=True)
    click.echo(
        f"Report: {command(url, 'report', config.name)}  (writes "
        f"{reports.default_report_path(config.name)})"
    )


def _compare_config(
    path: Path | None,
    name: str | None,
    objectives: str | None,
    samplers: str | None,
    seeds: int | None,
    trials: int | None,
) -> comparison.CompareConfig:
    if path is None:
        if not objectives or not samplers:
            raise UserError("give a comparison file, or --objective and --samplers")
        data: dict[str, Any] = {"objectives": _split(objectives), "samplers": _split(samplers)}
        default = f"compare-{'-'.join(data['objectives'])}"
        data.update(
            {
                k: v
                for k, v in (("name", name or default), ("seeds", seeds), ("trials", trials))
                if v is not None
            }
        )
        return comparison.config_from_dict(data, "command line")
    config = comparison.load_compare_file(path)
    overrides: dict[str, Any] = {"name": name, "seeds": seeds, "trials": trials}
    if objectives:
        overrides["objectives"] = tuple(_split(objectives))
    if samplers:
        overrides["samplers"] = tuple(comparison.SamplerSpec(s, s) for s in _split(samplers))
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    comparison.check_config(config, "command line")
    return config


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


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
    path = reports.report(name, _storage(storage), output)
    click.echo(f"wrote {path}")


@cli.command(name="plot")
@click.argument("name")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(plots.STUDY_KINDS + plots.COMPARISON_KINDS),
    help="Which figure: of a study, "
    + ", ".join(plots.STUDY_KINDS)
    + "; of a comparison, "
    + ", ".join(plots.COMPARISON_KINDS)
    + ".",
)
@click.option("--objective", help="best-so-far: which objective of the comparison.")
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
    path = plots.plot(name, kind, output, _storage(storage), objective)
    click.echo(f"wrote {path}")


@cli.command(name="samplers")
@json_option
def samplers_command(as_json: bool) -> None:
    """List the samplers, their options and defaults."""
    listing = [
        {"name": name, "summary": sampler_summary(name), "options": dict(sampler_options(name))}
        for name in sampler_names()
    ]
    if as_json:
        _echo_json(listing)
        return
    for entry in listing:
        click.echo(f"{entry['name']:14s} {entry['summary']}")
        for option, default in entry["options"].items():
            click.echo(f"{'':16s}{option} = {json.dumps(default)}")


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
    summaries = studies(_storage(storage))
    if as_json:  # every study, each with the comparison it belongs to (or null)
        _echo_json(
            [
                {
                    "name": s.info.name,
                    "direction": s.info.direction,
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
        click.echo("No studies.")
        return
    click.echo(studies_table(summaries, every_study))


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
    study = load_study(name, _storage(storage))
    # the database filters, sorts and cuts: a page costs the same in a study of any size
    page = study.trials_page(states, sort, sort == "duration", limit, offset)
    selected = page.trials
    if as_json:
        _echo_json([t.to_dict() for t in selected])
    elif selected:
        click.echo(trials_table(selected))
    else:
        click.echo("No trials.")


@cli.command()
@click.argument("name")
@storage_option
@json_option
def best(name: str, storage: str | None, as_json: bool) -> None:
    """Show the best completed trial of study NAME."""
    trial = load_study(name, _storage(storage)).best_trial
    if as_json:
        _echo_json(trial.to_dict())
        return
    click.echo(f"trial {trial.number}: value {fmt_value(trial.value)}")
    for key, value in trial.params.items():
        click.echo(f"  {key} = {fmt_value(value)}")


@cli.command()
@click.argument("name")
@click.argument("number", type=click.IntRange(min=0))
@storage_option
@json_option
def show(name: str, number: int, storage: str | None, as_json: bool) -> None:
    """Show trial NUMBER of study NAME in full."""
    trial = load_study(name, _storage(storage)).trial(number)
    if as_json:
        _echo_json(trial.to_dict())
    else:
        click.echo(_trial_details(name, trial))


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
    study = load_study(name, _storage(storage))
    record = study.enqueue(dict(_parse_pair(study, pair) for pair in pairs))
    if as_json:
        _echo_json(record.to_dict())
        return
    click.echo(f"queued trial {record.number}: {record.params}")
    if study.budget_met():
        hint = command(study.storage.display_url, "resume", name, "--trials", str(study.budget + 1))
        click.echo(
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
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
@storage_option
def export_command(name: str, fmt: str, output: Path | None, storage: str | None) -> None:
    """Export the trials of study NAME as CSV or JSON."""
    text = export(load_study(name, _storage(storage)), fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote {output}", err=True)


@cli.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@storage_option
def delete(name: str, yes: bool, storage: str | None) -> None:
    """Delete study NAME and all its trials."""
    chosen = _storage(storage)
    study = load_study(name, chosen)  # fails clearly if there is no such study
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"refusing to delete study {name!r} without --yes")
        click.confirm(f"Delete study {name!r} and its {len(study.trials)} trials?", abort=True)
    delete_study(name, study.storage)
    click.echo(f"deleted study {name!r}")


# -- helpers ----------------------------------------------------------------------


def _storage(storage: str | None) -> str:
    return storage or runner.default_storage()


def _run_with_progress(
    action: Callable[[list[Callback]], Study], name: str, storage: str, as_json: bool
) -> None:
    progress = Progress(sys.stderr if as_json else sys.stdout)
    start = time.monotonic()
    try:
        study = action([progress])
    except KeyboardInterrupt:
        progress.close()
        hint = command(parse_url(storage).render_as_string(hide_password=True), "resume", name)
        click.echo(
            f"\ninterrupted: the running trial is stored as FAIL and will run again "
            f"first; continue with: {hint}",
            err=True,
        )
        _print_summary_if_exists(name, storage, time.monotonic() - start)
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    if as_json:
        data = study_dict(study)
        data["counts"] = state_counts(study.trials)
        data["best_trial"] = _best_or_none(study)
        _echo_json(data)
    else:
        click.echo(study_summary(study, time.monotonic() - start))


def _print_summary_if_exists(name: str, storage: str, elapsed: float) -> None:
    with contextlib.suppress(HpoError):
        click.echo(study_summary(load_study(name, storage), elapsed), err=True)


def _best_or_none(study: Study) -> dict[str, Any] | None:
    try:
        return study.best_trial.to_dict()
    except HpoError:
        return None


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
    lines = [
        f"study {name!r}, trial {trial.number}: {trial.state}",
        f"value     {fmt_value(trial.value)}",
        f"started   {fmt_time(trial.started_at)}",
        f"finished  {fmt_time(trial.finished_at)}",
        f"duration  {fmt_duration(trial.duration)}",
        f"worker    {trial.worker or '-'}",
        "params:",
    ]
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


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _raise_interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    click.echo(f"hpo: warning: {message}", err=True)


def main() -> None:
    """Entry point of the `hpo` command."""
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` is handled like Ctrl-C
    warnings.showwarning = _show_warning  # one line, no source location
    logging.basicConfig(format="hpo: %(message)s", level=logging.WARNING)
    cli()


if __name__ == "__main__":
    main()
