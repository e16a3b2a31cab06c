"""The `hpo` command: a thin layer over the Python API (hpo.runner, hpo.study).

This module holds the command group, the options the commands share, how
they print and how errors end them; the commands themselves are in
`hpo.cli_run` (run, resume, worker, compare), `hpo.cli_inspect` (studies,
trials, best, show, enqueue, export, delete, report, plot, samplers) and
`hpo.cli_optuna` (import-optuna) and `hpo.cli_service` (create, ask, tell,
intermediate, heartbeat). They import the library where they use it,
so `hpo --help` starts at once.

Bad input of any kind (file, space, sampler, objective, study name, storage)
prints one line on stderr and exits with code 2, before anything is written.
Everything printed for people goes through `hpo.terminal.printable`.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from hpo import __version__
from hpo.errors import HpoError
from hpo.terminal import printable

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

    def main(  # type: ignore[override]  # always standalone: errors end the process here
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        extra.pop("standalone_mode", None)
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl-C before a study ran
                say("hpo: interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            say("hpo: aborted", err=True)
            sys.exit(1)
        except click.exceptions.NoArgsIsHelpError as exc:  # plain `hpo`: the help
            say(exc.format_message())
            sys.exit(0)
        except click.ClickException as exc:
            message = " ".join(exc.format_message().split())
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" (see: {exc.ctx.command_path} --help)"
            say(f"hpo: error: {message}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(result if isinstance(result, int) else 0)


storage_option = click.option(
    "--storage",
    metavar="URL",
    help="SQLAlchemy URL or SQLite file path [default: $HPO_STORAGE, else ./hpo.db]",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes to run on this machine (they share the budget) "
    "[default: 1; with --cluster, tasks on the cluster: one per Dask worker thread].",
)
cluster_option = click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Run the workers as tasks on a Dask cluster: its scheduler's address "
    "(tcp://host:8786), or 'local' for a LocalCluster on this machine.",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpo")
def cli() -> None:
    """hpo: hyperparameter optimization with every trial kept in a database.

    Start with `hpo run STUDY.toml`, then inspect with `hpo studies`,
    `hpo trials NAME` and `hpo best NAME`.
    """


def say(text: str, err: bool = False) -> None:
    """Print text for people: through `printable`, as it may hold names, values and
    errors from the database (--json output is escaped by the JSON encoder)."""
    click.echo(printable(text), err=err)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))  # JSON escapes control characters itself


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
    say(f"hpo: warning: {message}", err=True)


def main() -> None:
    """Entry point of the `hpo` command."""
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` is handled like Ctrl-C
    warnings.showwarning = _show_warning  # one line, no source location
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("hpo: %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.WARNING)
    cli()


class _PrintableFormatter(logging.Formatter):
    """Log lines name studies and quote errors: printable, like everything else."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


if __name__ == "__main__":
    main()


from hpo import cli_dashboard, cli_inspect, cli_optuna, cli_run, cli_serve, cli_service  # noqa: E402, F401 - join `cli`
