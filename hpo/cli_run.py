"""Commands that run trials: `hpo run`, `resume`, `worker` and `compare`."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from hpo.cli import (
    EXIT_INTERRUPTED,
    UserError,
    cli,
    cluster_option,
    echo_json,
    json_option,
    say,
    storage_option,
    workers_option,
)
from hpo.errors import HpoError

if TYPE_CHECKING:
    from hpo.study import Callback, Study
    from hpo.studyfile import CompareConfig


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
@cluster_option
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
    workers: int | None,
    cluster: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Create the study STUDY_FILE describes and run it to its budget."""
    from hpo import runner
    from hpo.connection import choose_storage
    from hpo.studyfile import load_study_file

    config = load_study_file(study_file).with_overrides(
        name=name, sampler=sampler, trials=trials, timeout=timeout, seed=seed, pruner=pruner
    )
    chosen = choose_storage(storage, config.storage)
    _run_with_progress(
        lambda callbacks: runner.run(
            config,
            storage=chosen,
            workers=_workers(workers, cluster),
            callbacks=callbacks,
            cluster=cluster,
        ),
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
@cluster_option
@storage_option
@json_option
def resume(
    name: str,
    trials: int | None,
    timeout: float | None,
    sampler: str | None,
    pruner: str | None,
    workers: int | None,
    cluster: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Continue study NAME until its budget is met.

    Trials left RUNNING by a process that died are marked FAIL and their
    points are evaluated again first.
    """
    from hpo import runner
    from hpo.connection import choose_storage

    chosen = choose_storage(storage)
    _run_with_progress(
        lambda callbacks: runner.resume(
            name,
            chosen,
            trials=trials,
            timeout=timeout,
            sampler=sampler,
            pruner=pruner,
            workers=_workers(workers, cluster),
            callbacks=callbacks,
            cluster=cluster,
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
@click.option(
    "--objective-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The study's objective file is here on this machine (a copy of the file, "
    "of the same name), not at the path stored.",
)
@storage_option
@json_option
def worker(
    name: str,
    timeout: float | None,
    quiet: bool,
    objective_file: Path | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Join study NAME as one more worker, from this or another machine.

    The workers share the study's budget: together they run exactly the
    budgeted number of trials. Share a study between machines through a
    PostgreSQL or MySQL URL; an SQLite file only between processes of one
    machine (on its local disk); or through an hpo server: --storage
    http://HOST:8000 (hpo serve), with its token in $HPO_TOKEN.
    """
    from hpo import runner
    from hpo.connection import choose_storage
    from hpo.remote import is_server_url
    from hpo.workers import watch_parent

    chosen = choose_storage(storage)
    watch_parent()
    if is_server_url(chosen):
        _remote_worker(name, chosen, timeout, quiet, as_json)
        return
    if quiet:
        runner.worker(name, chosen, timeout=timeout, objective_file=objective_file)
        return
    _run_with_progress(
        lambda callbacks: cast(
            "Study",
            runner.worker(
                name, chosen, timeout=timeout, callbacks=callbacks, objective_file=objective_file
            ),
        ),
        name,
        chosen,
        as_json,
    )


def _remote_worker(name: str, url: str, timeout: float | None, quiet: bool, as_json: bool) -> None:
    """hpo worker against an hpo server: trials run here, their results stored there."""
    from hpo import runner
    from hpo.display import Progress, fmt_value

    progress = None if quiet else Progress(sys.stderr if as_json else sys.stdout)
    start = time.monotonic()
    try:
        study = runner.worker(name, url, timeout=timeout, callbacks=[progress] if progress else [])
    finally:
        if progress is not None:
            progress.close()
    if quiet:
        return
    counts = study.n_counted
    try:
        best = study.best_trial
    except HpoError:
        best = None
    if as_json:
        echo_json({"name": name, "n_counted": counts, "best_trial": best and best.to_dict()})
        return
    shown = f"; best value {fmt_value(best.value)} (trial {best.number})" if best else ""
    say(f"study {name!r}: {counts} trials done{shown} ({time.monotonic() - start:.1f} s)")


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
@workers_option
@cluster_option
@storage_option
@json_option
def compare_command(
    compare_file: Path | None,
    name: str | None,
    objectives: str | None,
    samplers: str | None,
    seeds: int | None,
    trials: int | None,
    workers: int | None,
    cluster: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Run the same objective(s) under each sampler and seed, and compare.

    COMPARE_FILE is a TOML comparison file (see studies/compare_*.toml), or
    give --objective and --samplers. Re-running continues: finished studies
    are kept, unfinished ones resume.
    """
    from hpo import comparison, reports
    from hpo.connection import choose_storage, parse_url
    from hpo.display import CompareProgress, command, comparison_table, password_note

    if workers is not None and workers > 1 and cluster is None:
        raise UserError("hpo compare runs one worker here; --workers N needs --cluster")
    config = _compare_config(compare_file, name, objectives, samplers, seeds, trials)
    chosen = choose_storage(storage, config.storage)
    progress = CompareProgress(
        config.n_studies, config.trials, sys.stderr if as_json else sys.stdout
    )
    try:
        summary = comparison.compare(
            config,
            chosen,
            on_study=progress.on_study,
            callbacks=[progress],
            cluster=cluster,
            workers=workers,
        )
    except KeyboardInterrupt:
        progress.close()
        say(
            "\ninterrupted: the finished studies are kept and the running trial is "
            "stored as interrupted; run the same command again to continue",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    progress.close()
    if as_json:
        echo_json(summary)
        return
    say(comparison_table(summary))
    url = parse_url(chosen)
    say(
        f"Report: {command(url, 'report', config.name)}{password_note(url)}  (writes "
        f"{reports.default_report_path(config.name)})"
    )


def _compare_config(
    path: Path | None,
    name: str | None,
    objectives: str | None,
    samplers: str | None,
    seeds: int | None,
    trials: int | None,
) -> CompareConfig:
    from hpo.studyfile import (
        SamplerSpec,
        check_config,
        compare_config_from_dict,
        load_compare_file,
    )

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
        return compare_config_from_dict(data, "command line")
    config = load_compare_file(path)
    overrides: dict[str, Any] = {"name": name, "seeds": seeds, "trials": trials}
    if objectives:
        overrides["objectives"] = tuple(_split(objectives))
    if samplers:
        overrides["samplers"] = tuple(SamplerSpec(s, s) for s in _split(samplers))
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    check_config(config, "command line")
    return config


def _workers(workers: int | None, cluster: str | None) -> int | None:
    """--workers as given; left out: 1 here, one per thread of a cluster (None)."""
    return workers if workers is not None or cluster is not None else 1


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _run_with_progress(
    action: Callable[[list[Callback]], Study], name: str, storage: str, as_json: bool
) -> None:
    from hpo.connection import parse_url
    from hpo.display import Progress, command, state_counts, study_summary
    from hpo.export import study_dict

    progress = Progress(sys.stderr if as_json else sys.stdout)
    start = time.monotonic()
    try:
        study = action([progress])
    except KeyboardInterrupt:
        progress.close()
        hint = command(parse_url(storage), "resume", name)
        say(
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
        echo_json(data)
    else:
        say(study_summary(study, time.monotonic() - start))


def _print_summary_if_exists(name: str, storage: str, elapsed: float) -> None:
    from hpo.catalog import load_study
    from hpo.display import study_summary

    with contextlib.suppress(HpoError):
        say(study_summary(load_study(name, storage), elapsed), err=True)


def _best_or_none(study: Study) -> dict[str, Any] | None:
    try:
        return study.best_trial.to_dict()
    except HpoError:
        return None
