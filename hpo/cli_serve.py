"""`hpo serve`: the HTTP API (hpo.server) on uvicorn.

    hpo serve                                  # http://127.0.0.1:8000, no token needed
    HPO_TOKEN=... hpo serve --host 0.0.0.0     # every address: a token is required
    hpo serve --token-file tokens.txt          # 'write TOKEN' / 'read TOKEN' lines
    hpo serve --workers 4 --storage postgresql+psycopg://...   # four processes, one port

Several worker processes (`--workers`, forked after the port is bound, so the
kernel spreads connections over them) let clients' asks run side by side: one
process samples one study's asks one at a time. They share nothing but the
database, which keeps the budget and the trial numbers exact as it does for
`hpo run --workers`.

Tokens: see `hpo.tokens`. Without one the server answers anybody who can
reach it, so it refuses to listen beyond the loopback address without one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Server processes on the one port, so asks run side by side (Linux, macOS; "
    "a database file or server, not in-memory).",
)
@storage_option
def serve(
    host: str,
    port: int,
    token_file: Path | None,
    access_log: bool,
    workers: int,
    storage: str | None,
) -> None:
    """Serve the studies in the storage over HTTP: a JSON API under /api, its
    schema at /openapi.json and browsable docs at /docs.

    Clients ask for trials and tell results (curl, hpo.connect(URL) in Python,
    hpo worker NAME --storage URL); no database credentials leave this machine.
    """
    from hpo.connection import choose_storage, is_memory_url, parse_url
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
    url = choose_storage(storage)
    if workers > 1 and not hasattr(os, "fork"):
        raise UserError("--workers needs fork (Linux, macOS): serve with --workers 1 here")
    if workers > 1 and is_memory_url(parse_url(url)):
        raise UserError(
            "--workers needs a database the processes share: an in-memory one is each "
            "process's own (give --storage a file or a server's URL)"
        )
    listening = listen(host, port)  # before anything is said: a port taken is one line
    app = create_app(url, tokens)  # opened here first: a bad storage is one line, once
    store = app.state.storage
    processes = f" in {workers} processes" if workers > 1 else ""
    access = f"{len(tokens.write)} read-write and {len(tokens.read)} read-only tokens"
    say(
        f"hpo: serving {store.display_url} at http://{host}:{port}/api (docs: /docs){processes}; "
        f"{access}",
        err=True,
    )

    def run(app: Any) -> None:
        config = uvicorn.Config(
            app,
            access_log=access_log,
            server_header=False,
            timeout_graceful_shutdown=5,  # requests cut short are retried by clients
            proxy_headers=False,  # X-Forwarded-For is not trusted: clients named as they connect
            log_level="info",
        )
        logging.getLogger("uvicorn.access").addFilter(_without_query)
        uvicorn.Server(config).run(sockets=[listening])

    if workers == 1:
        run(app)
        return
    store.close()  # no pooled connection may cross a fork: each process opens its own
    serve_forked(workers, lambda: run(create_app(url, tokens)))


def serve_forked(workers: int, run: Callable[[], None]) -> None:
    """Fork `workers` processes that each `run` a server on the inherited listening
    socket, and keep that many: one that dies (killed, out of memory) is replaced, at
    most one a second. SIGTERM or SIGINT here is passed on as SIGTERM, a graceful stop
    (Ctrl-C in a terminal reaches them all already, and a second SIGINT would make
    uvicorn drop the requests under way); then this returns once they have ended."""
    children: set[int] = set()
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):  # it has exited already
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        children.add(_fork(run))
    while children:
        pid, status = os.wait()
        children.discard(pid)
        if not stopping:
            code = os.waitstatus_to_exitcode(status)
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            say(f"hpo: server process {pid} ended ({how}); starting another", err=True)
            time.sleep(1.0)  # a process that cannot start must not make this spin
            if not stopping:
                children.add(_fork(run))


def _fork(run: Callable[[], None]) -> int:
    """A child process that runs `run` and exits (0 once stopped by a signal, 1 after a
    failure, said in one line); the parent gets its pid."""
    pid = os.fork()
    if pid:
        return pid
    for signum in (signal.SIGTERM, signal.SIGINT):  # not the parent's forwarding handler
        signal.signal(signum, signal.default_int_handler)
    status = 1
    try:
        run()
        status = 0
    except KeyboardInterrupt:  # the stop signal, raised again once uvicorn stopped
        status = 0
    except BaseException as exc:  # noqa: BLE001 - said in one line, then exit 1
        say(f"hpo: server process {os.getpid()} stopped: {exc!r}", err=True)
    finally:
        os._exit(status)


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
