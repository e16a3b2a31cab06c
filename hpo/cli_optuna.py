"""`hpo import-optuna`: Optuna studies into an hpo database (a thin layer over
`hpo.optuna_io.import_optuna`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hpo.cli import cli, echo_json, json_option, say, storage_option

if TYPE_CHECKING:
    import sqlalchemy as sa

    from hpo.optuna_io import ImportedStudy


@cli.command(name="import-optuna")
@click.argument("url", metavar="URL")
@click.option(
    "--study",
    "studies",
    multiple=True,
    metavar="NAME",
    help="An Optuna study to import (repeat for several) [default: the only one in URL].",
)
@click.option("--all", "all_studies", is_flag=True, help="Import every study in URL.")
@click.option("--name", help="The hpo study's name, for one study [default: Optuna's].")
@click.option(
    "--objective",
    metavar="REF",
    help="module:function or path/file.py:function, stored so that `hpo resume` runs it.",
)
@click.option("--sampler", help="Sampler for the trials to come [default: hpo's default].")
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    help="Budget: total trials, the imported ones included [default: none].",
)
@click.option("--seed", type=click.IntRange(min=0), help="The hpo study's random seed.")
@storage_option
@json_option
def import_optuna_command(
    url: str,
    studies: tuple[str, ...],
    all_studies: bool,
    name: str | None,
    objective: str | None,
    sampler: str | None,
    trials: int | None,
    seed: int | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Copy Optuna studies from URL into the hpo database, to continue with `hpo resume`.

    URL: an Optuna RDB database (an SQLAlchemy URL such as
    sqlite:///optuna.db or postgresql+psycopg://..., or an SQLite file's
    path) or an Optuna journal file's path. Distributions become the study's
    define-by-run parameters; trials keep their states, values, intermediate
    values, attributes and times; a trial still RUNNING in Optuna is stored
    FAIL and its point queued again. Needs Optuna (pip install optuna).
    """
    from hpo.connection import choose_storage, parse_url
    from hpo.optuna_io import import_optuna

    chosen = choose_storage(storage)
    imported = import_optuna(
        url,
        list(studies),
        chosen,
        all_studies=all_studies,
        name=name,
        objective=objective,
        sampler=sampler,
        trials=trials,
        seed=seed,
    )
    if as_json:
        echo_json({"studies": [study.to_dict() for study in imported]})
        return
    for study in imported:
        say(summary(study, parse_url(chosen)))


def summary(study: ImportedStudy, url: sa.URL) -> str:
    """What was imported, and the command (or call) that continues it."""
    from hpo.display import password_note

    renamed = "" if study.name == study.optuna_name else f" as {study.name!r}"
    counts = ", ".join(f"{n} {state}" for state, n in study.counts.items())
    lines = [
        f"imported Optuna study {study.optuna_name!r} from {study.source}{renamed}: "
        f"{sum(study.counts.values())} trials ({counts or 'none'})"
    ]
    if study.requeued:
        its = "its point" if study.requeued == 1 else "their points"
        lines.append(f"  {study.requeued} running in Optuna: stored FAIL, {its} queued again")
    lines.append(f"  parameters (define-by-run): {', '.join(study.params) or 'none yet'}")
    if study.best is not None:
        lines.append(f"  best value {study.best[1]:.6g} (trial {study.best[0]})")
    budget = "none" if study.budget is None else f"{study.budget} trials ({study.counted} taken)"
    lines.append(f"  sampler {study.sampler}; budget {budget}")
    lines.append(_how_to_continue(study, url) + password_note(url))
    return "\n".join(lines)


def _how_to_continue(study: ImportedStudy, url: sa.URL) -> str:
    from hpo.display import command

    if study.objective is None:
        where = url.render_as_string(hide_password=True)
        return (
            "no objective is stored (Optuna's database holds none): continue from Python "
            f"with hpo.load_study({study.name!r}, {where!r}).optimize(objective, "
            "n_trials=...); for `hpo resume`, import it again with --objective "
            f"module:function (after {command(url, 'delete', study.name)})"
        )
    resume = command(url, "resume", study.name)
    return f"continue with: {resume}" + ("" if study.budget else " --trials TOTAL")
