"""`hpo dashboard`: the web dashboard of `hpo serve` on this machine, in one command.

    hpo dashboard                          # the default storage, a browser tab opens
    hpo dashboard --storage runs.db --no-browser --url-file url.txt

It listens on 127.0.0.1 only (a free port unless --port) and makes a fresh
read-write token for this run, which it hands to the browser in the URL's
fragment (`#token=...`): browsers never send a fragment to a server, and the
page moves it into the tab's sessionStorage and out of the address bar at
once. The token is never logged. Where no browser opens, the link is printed
only to an interactive terminal (the user's own screen, as Jupyter does),
or written to --url-file (created readable by its owner only); with neither,
the command stops with a message rather than print the token into a log.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click

from hpo.cli import UserError, cli, say, storage_option

HOST = "127.0.0.1"
NOWHERE = (
    "hpo dashboard: no browser opened and no terminal to show the link in; "
    "give --url-file PATH, or run hpo serve with a token file"
)


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    help="Port on 127.0.0.1 [default: a free one].",
)
@click.option(
    "--browser/--no-browser",
    default=True,
    show_default=True,
    help="Open the dashboard in the default web browser.",
)
@click.option(
    "--url-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the link (with its token) to this file, readable by you only.",
)
@storage_option
def dashboard(port: int, browser: bool, url_file: Path | None, storage: str | None) -> None:
    """Serve the studies in the storage on this machine and open the live dashboard.

    A shortcut for `hpo serve` on 127.0.0.1 with a fresh token, good for this
    run only; Ctrl-C stops it.
    """
    show = sys.stderr.isatty()
    if not browser and url_file is None and not show:  # (before the slow imports)
        raise UserError(NOWHERE)
    from hpo.cli_serve import listen
    from hpo.connection import choose_storage
    from hpo.tokens import Tokens

    try:
        import uvicorn

        from hpo.server import create_app
    except ModuleNotFoundError as exc:
        raise UserError(
            f"hpo dashboard needs {exc.name}: pip install -e '.[server]' (in hpo's checkout)"
        ) from None
    token = secrets.token_urlsafe(32)
    app = create_app(choose_storage(storage), Tokens(write=(token,)))
    listening = listen(HOST, port)
    base = f"http://{HOST}:{listening.getsockname()[1]}/"
    link = f"{base}#token={token}"
    if url_file is not None:
        _write_private(url_file, link + "\n")
    opened = browser and _open(link)
    if opened or url_file is not None:
        where = "opened in your browser" if opened else f"link in {url_file}"
        say(f"hpo: dashboard of {app.state.storage.display_url} at {base} ({where})", err=True)
    elif show:
        say(
            f"hpo: dashboard of {app.state.storage.display_url}; open (token for this run "
            f"only, keep it to yourself):\n  {link}",
            err=True,
        )
    else:
        listening.close()
        raise UserError(NOWHERE)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,  # (an open tab keeps its connection: do not wait on it)
    )
    uvicorn.Server(config).run(sockets=[listening])


def _open(link: str) -> bool:
    """Open the link in a graphical browser. Without a display (a server, an ssh
    session) Python would fall back to a text browser in this terminal (lynx, w3m),
    which cannot run the page: then nothing is opened."""
    import webbrowser

    graphical = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if not graphical:
        return False
    try:
        return webbrowser.open(link)
    except webbrowser.Error:
        return False


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a new file only its owner can read (replacing any old one)."""
    try:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise UserError(f"cannot write {str(path)!r}: {exc.strerror}") from None
