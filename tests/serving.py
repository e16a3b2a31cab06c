"""A real `hpo serve` process on a free port, and plain HTTP requests to it (tests only)."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HPO = str(Path(sys.executable).parent / "hpo")
WRITE_TOKEN = "write-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """`hpo serve --storage STORAGE` as a subprocess; its output in `log`."""

    def __init__(
        self,
        storage: str,
        workdir: Path,
        token_file: Path | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.storage = storage
        self.options = options
        self.workdir = workdir
        self.token_file = token_file
        self.port = free_port()
        self.log = workdir / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Served:
        args = [HPO, "serve", "--port", str(self.port), "--storage", self.storage, *self.options]
        if self.token_file is not None:
            args += ["--token-file", str(self.token_file)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hpo serve exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"hpo serve did not start: {self.log.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = WRITE_TOKEN,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, decoded JSON or None) — errors are answers here, not exceptions."""
        if data is None and body is not None:
            data = json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers
        if raw and "json" not in (kind.get("content-type") or ""):
            raise AssertionError(f"{method} {path}: {status} not JSON: {raw[:200]!r}")
        return status, json.loads(raw) if raw else None


def guarded_server(workdir: Path) -> Served:
    """A started server on an SQLite file in `workdir`, with a read-write token
    (WRITE_TOKEN) and a read-only one (READ_TOKEN) in its token file."""
    tokens = workdir / "tokens.txt"
    tokens.write_text(f"# tokens\nwrite {WRITE_TOKEN}\nread {READ_TOKEN}\n")
    return Served(str(workdir / "hpo.db"), workdir, token_file=tokens).start()


def children_of(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux: read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


class Proxy:
    """A plain HTTP proxy in a thread of the test (tests only), in front of `target`
    (a server's URL): a forward proxy (requests name an absolute URL, as under
    http_proxy) and a reverse one (paths under `prefix`, which it strips). `forwarded`:
    the (method, path) of every request it passed on."""

    def __init__(self, target: str, prefix: str = "") -> None:
        self.target = urllib.parse.urlsplit(target)
        self.prefix = prefix
        self.forwarded: list[tuple[str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def forward(self) -> None:
                path = self.path
                if path.startswith("http://"):
                    parts = urllib.parse.urlsplit(path)
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                elif path.startswith(proxy.prefix):
                    path = path[len(proxy.prefix) :]
                proxy.forwarded.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                skip = {"host", "connection", "proxy-connection", "keep-alive"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                upstream = http.client.HTTPConnection(
                    proxy.target.hostname or "", proxy.target.port, timeout=30
                )
                upstream.request(self.command, path, body, headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                drop = {"transfer-encoding", "connection", "content-length", "server", "date"}
                for key, value in answer.getheaders():
                    if key.lower() not in drop:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = forward  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
