"""Commands for trials evaluated elsewhere: `hpo create`, `ask`, `tell`,
`intermediate` and `heartbeat` — a training loop in the shell, or in any
program that can run a command.

    hpo create study.toml                        # a study whose trials run elsewhere
    while trial=$(hpo ask NAME --format env); do
        eval "$trial"                            # HPO_TRIAL=3, HPO_PARAM_lr=0.01, ...
        loss=$(./train --lr "$HPO_PARAM_lr")     # report steps: hpo intermediate NAME N STEP V
        hpo tell NAME "$HPO_TRIAL" "$loss"
    done

(`while eval "$(hpo ask ...)"` would not end: eval of nothing succeeds.)

`hpo ask` exits with status 3 when no trial can be given (the budget is met,
or a grid exhausted), so such a loop ends by itself. A trial asked for here is
kept alive by `hpo heartbeat` or `hpo intermediate`; one with no sign of life
for its lease (`--lease`, 10 minutes by default) is found lost and its point
asked for again.
"""

from __future__ import annotations

import re
import shlex
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hpo.cli import cli, echo_json, json_option, say, storage_option
from hpo.errors import BudgetMet, SamplerExhausted

if TYPE_CHECKING:
    from hpo.records import FrozenTrial

EXIT_NO_TRIAL = 3  # hpo ask: the budget is met, or the sampler has nothing left
FORMATS = ("text", "json", "env")


@cli.command()
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Study name [default: the file's name, else its stem].")
@click.option("--sampler", help="Sampler name, overriding the file's.")
@click.option("--trials", type=click.IntRange(min=1), help="Budget: total trials.")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed.")
@click.option("--pruner", help="Pruner name, overriding the file's.")
@storage_option
@json_option
def create(
    study_file: Path,
    name: str | None,
    sampler: str | None,
    trials: int | None,
    seed: int | None,
    pruner: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Create the study STUDY_FILE describes, and run nothing.

    Its trials are asked for and told (hpo ask, hpo tell), or run later by
    workers; the file's objective is optional.
    """
    from hpo import runner
    from hpo.connection import choose_storage
    from hpo.export import study_dict
    from hpo.studyfile import load_study_file

    config = load_study_file(study_file)
    study = runner.create(
        config,
        name=name,
        sampler=sampler,
        trials=trials,
        seed=seed,
        pruner=pruner,
        storage=choose_storage(storage, config.storage),
    )
    if as_json:
        echo_json(study_dict(study))
        return
    budget = f", a budget of {study.budget} trials" if study.budget else ""
    say(f"created study {study.name!r} ({study.info.sampler}{budget})")


@cli.command()
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: for people; json; env: shell assignments, for eval "
    "(HPO_TRIAL=N, HPO_PARAM_<name>=<value>).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds without a heartbeat after which the trial is lost and its point "
    "asked again [default: 600].",
)
@click.option(
    "--worker", help="Who runs the trial, as hpo trials shows it [default: hpo-ask@HOST]."
)
@storage_option
@json_option
def ask(
    name: str,
    fmt: str,
    lease: float | None,
    worker: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Start the next trial of study NAME and print its number and parameters.

    Exits with status 3 when no trial can be given: the budget is met (or the
    rest of it is running elsewhere), or a grid is exhausted.
    """
    from hpo.catalog import load_study
    from hpo.connection import choose_storage

    study = load_study(name, choose_storage(storage))
    try:
        trial = study.ask(worker=worker or f"hpo-ask@{socket.gethostname()}", lease=lease)
    except (BudgetMet, SamplerExhausted) as exc:
        say(f"hpo: no trial: {exc}", err=True)
        sys.exit(EXIT_NO_TRIAL)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        echo_json({"study": study.name, "number": trial.number, "params": trial.params})
    elif fmt == "env":
        click.echo(shell_assignments(trial.number, trial.params))
    else:
        say(f"trial {trial.number}")
        from hpo.display import fmt_value

        for key, value in trial.params.items():
            say(f"  {key} = {fmt_value(value)}")


@cli.command()
@click.argument("name")
@click.argument("number", type=click.IntRange(min=0))
@click.argument("value", required=False)
@click.option(
    "--state",
    type=click.Choice(["complete", "pruned", "fail"]),
    help="pruned: keep its last intermediate value; fail: with --error [default: complete].",
)
@click.option("--error", help="Why it failed (--state fail).")
@storage_option
@json_option
def tell(
    name: str,
    number: int,
    value: str | None,
    state: str | None,
    error: str | None,
    storage: str | None,
    as_json: bool,
) -> None:
    """Finish trial NUMBER of study NAME with VALUE (or --state pruned or fail).

    Telling a trial again what it was told is harmless (a retry); anything
    else is refused and changes nothing.
    """
    from hpo.catalog import load_study
    from hpo.connection import choose_storage

    study = load_study(name, choose_storage(storage))
    told = study.tell(number, _number(value), state, error=error)
    if as_json:
        echo_json(told.to_dict())
        return
    _say_trial(told)


@cli.command()
@click.argument("name")
@click.argument("number", type=click.IntRange(min=0))
@click.argument("step", type=click.IntRange(min=0))
@click.argument("value")
@storage_option
@json_option
def intermediate(
    name: str, number: int, step: int, value: str, storage: str | None, as_json: bool
) -> None:
    """Report VALUE at STEP for trial NUMBER of study NAME; print the pruner's decision.

    Prints "prune" (stop the trial, then: hpo tell NAME NUMBER --state pruned)
    or "continue". Reporting also keeps the trial alive.
    """
    from hpo.catalog import load_study
    from hpo.connection import choose_storage

    study = load_study(name, choose_storage(storage))
    prune = study.report(number, _number(value), step)
    if as_json:
        echo_json({"number": number, "step": step, "prune": prune})
        return
    click.echo("prune" if prune else "continue")


@cli.command()
@click.argument("name")
@click.argument("number", type=click.IntRange(min=0))
@storage_option
def heartbeat(name: str, number: int, storage: str | None) -> None:
    """Keep trial NUMBER of study NAME alive while it runs elsewhere."""
    from hpo.catalog import load_study
    from hpo.connection import choose_storage

    load_study(name, choose_storage(storage)).heartbeat(number)


def shell_assignments(number: int, params: dict[str, Any]) -> str:
    """HPO_TRIAL=N and HPO_PARAM_<name>=<value> lines that a POSIX shell can eval: names
    made into identifiers, values quoted (so nothing in them runs)."""
    lines = [f"HPO_TRIAL={number}"]
    for key, value in params.items():
        variable = "HPO_PARAM_" + re.sub(r"\W", "_", key, flags=re.ASCII)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"{variable}={shlex.quote(text)}")
    return "\n".join(lines)


def _number(text: str | None) -> Any:
    """A value from the command line: a number, or the text itself, which tell then
    refuses with its own message."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # tell names the problem


def _say_trial(trial: FrozenTrial) -> None:
    from hpo.display import fmt_value

    value = f" {fmt_value(trial.value)}" if trial.value is not None else ""
    say(f"trial {trial.number} {trial.state}{value}")
