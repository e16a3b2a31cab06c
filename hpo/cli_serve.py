"""`hpo serve`: the HTTP API (hpo.server) on uvicorn.

    hpo serve                                  # http://127.0.0.1:8000, no token needed
    HPO_TOKEN=... hpo serve --host 0.0.0.0     # every address: a token is required
    hpo serve --token-file tokens.txt          # 'write TOKEN' / 'read TOKEN' lines

Tokens: see `hpo.tokens`. Without one the server answers anybody who can
reach it, so it refuses to listen beyond the loopback address without one.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path

import click

from hpo.cli import UserError, cli, say, storage_option

DEFAULT_PORT = 8000


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; beyond the loopback address a token is required.",
)
@click.option(
    "--port", type=click.IntRange(min=1, max=65535), default=DEFAULT_PORT, show_default=True
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tokens, one a line: 'write TOKEN' or 'read TOKEN' "
    "[default: $HPO_TOKEN (read-write), $HPO_READ_TOKEN (read-only)].",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@storage_option
def serve(
    host: str, port: int, token_file: Path | None, access_log: bool, storage: str | None
) -> None:
    """Serve the studies in the storage over HTTP: a JSON API under /api, its
    schema at /openapi.json and browsable docs at /docs.

    Clients ask for trials and tell results (curl, hpo.connect(URL) in Python,
    hpo worker NAME --storage URL); no database credentials leave this machine.
    """
    from hpo.connection import choose_storage
    from hpo.tokens import load_tokens

    tokens = load_tokens(token_file)
    if not tokens.required and not is_loopback(host):
        raise UserError(
            f"--host {host} listens beyond this machine: give a token "
            "(--token-file, or $HPO_TOKEN) or listen on 127.0.0.1"
        )
    try:
        import uvicorn

        from hpo.server import create_app
    except ModuleNotFoundError as exc:
        raise UserError(
            f"hpo serve needs {exc.name}: pip install -e '.[server]' (in hpo's checkout)"
        ) from None
    listening = listen(host, port)  # before anything is said: a port taken is one line
    app = create_app(choose_storage(storage), tokens)
    shown = app.state.storage.display_url
    access = f"{len(tokens.write)} read-write and {len(tokens.read)} read-only tokens"
    say(f"hpo: serving {shown} at http://{host}:{port}/api (docs: /docs); {access}", err=True)
    config = uvicorn.Config(
        app,
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=5,  # requests cut short are retried by clients
        proxy_headers=False,  # X-Forwarded-For is not trusted: clients are named as they connect
        log_level="info",
    )
    logging.getLogger("uvicorn.access").addFilter(_without_query)
    uvicorn.Server(config).run(sockets=[listening])


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port for the server; UserError when that cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections whose
    # proto says TCP, and without it a keep-alive response's body waits ~40 ms for the
    # client's delayed ACK of its headers (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UserError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server "
            "there? choose one with --port)"
        ) from None
    return sock


def _without_query(record: logging.LogRecord) -> bool:
    """The access log shows each request's path without its query string: a client
    that put a token there by mistake must not find it in the log."""
    if isinstance(record.args, tuple) and len(record.args) >= 3:
        args = list(record.args)
        args[2] = str(args[2]).split("?", 1)[0]
        record.args = tuple(args)
    return True


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
