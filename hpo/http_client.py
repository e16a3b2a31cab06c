"""HTTP for `hpo.connect`: JSON requests to an hpo server with the standard library
(http.client), the bearer token, retries, and the server's errors turned back into
hpo's exceptions.

Connections are kept alive, one per thread, so a fast ask/tell loop does not pay a
TCP (and TLS) handshake per request. One idle for KEEP_ALIVE_S or more is not
reused: uvicorn closes its side after 5 s, and a request sent on a connection the
server has just closed fails in a way that looks like a dropped one. Through a
proxy (http_proxy / https_proxy, not bypassed by no_proxy) each request goes
through urllib, which knows proxies, on a connection of its own.

Retried, with backoff, for `retry_seconds`: a refused connection (the server
restarting), a dropped one, a timeout, a 502/503/504. A request that is not
safe to repeat (`idempotent=False`) is retried only when it surely never
reached the server: a refused connection, or a 503 (the server's database
briefly away: the server did nothing).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import select
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from hpo import errors
from hpo.errors import HpoError, ServerError, StudyConfigError
from hpo.tokens import TOKEN_VARIABLE

RETRY_SECONDS = 120.0  # long enough for a server to restart
TIMEOUT_S = 60.0  # one request
KEEP_ALIVE_S = 2.0  # reuse a connection idle for less (uvicorn's keep-alive: 5 s)


class _Retry(Exception):  # noqa: N818 - a signal inside Http
    """A failure worth another try; `unsent`: the server surely did not act on it."""

    def __init__(self, reason: str, unsent: bool) -> None:
        super().__init__(reason)
        self.unsent = unsent


class Http:
    """JSON requests to one server, with the token and the retries."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = TIMEOUT_S,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise StudyConfigError(
                f"an hpo server's URL starts with http:// or https://, got {url!r}"
            )
        self.url = url.rstrip("/")
        self._parts = parts
        self._origin = f"{parts.scheme}://{parts.netloc}"  # the URL's path goes in requests
        # urlopen's shared opener reads the proxies once, at its first use in the process
        self._proxy_opener = urllib.request.build_opener() if _proxied(parts) else None
        self._kept = threading.local()  # this thread's connection: (it, pid, idle since)
        token = os.environ.get(TOKEN_VARIABLE) if token is None else token
        self._headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    def __repr__(self) -> str:  # never the token
        return f"Http({self.url!r})"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        idempotent: bool = True,
        patience: float | None = None,
    ) -> Any:
        """The decoded JSON answer; an hpo exception for a 4xx (the server's class when
        it names one), ServerError when the server stays out of reach. `patience`: how
        long to retry (default retry_seconds), and the limit of one attempt too."""
        url = self.url + path + (f"?{urllib.parse.urlencode(query, doseq=True)}" if query else "")
        data = None if body is None else _encode(body)
        patience = self.retry_seconds if patience is None else patience
        timeout = self.timeout if patience >= self.timeout else max(patience, 1.0)
        deadline = time.monotonic() + patience
        for attempt in range(1_000_000):
            try:
                return self._once(method, url, data, timeout)
            except _Retry as exc:
                if not (idempotent or exc.unsent) or time.monotonic() >= deadline:
                    raise ServerError(f"hpo server {self.url}: {exc}") from None
                pause = min(2.0, 0.05 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0)
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, data: bytes | None, timeout: float) -> Any:
        if self._proxy_opener is not None:
            return self._once_by_urllib(self._proxy_opener, method, url, data, timeout)
        connection = self._connection(timeout)
        try:
            connection.request(method, url[len(self._origin) :], data, self._headers)
            response = connection.getresponse()
            raw = response.read()
        except ConnectionRefusedError as exc:
            self._drop()
            raise _Retry(f"connection refused ({exc.strerror or exc})", unsent=True) from None
        except (http.client.HTTPException, OSError) as exc:  # dropped, reset, timed out
            self._drop()
            raise _Retry(f"{type(exc).__name__}: {exc}", unsent=False) from None
        if response.will_close:
            self._drop()
        else:
            self._kept.idle_since = time.monotonic()
        if response.status >= 400:
            raise _http_error(response.status, response.reason, raw)
        return json.loads(raw) if raw else None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        """This thread's kept-alive connection, or a new one: none yet, idle too long,
        closed by the server (its socket reads as ready: end of file), or made before
        this process forked (a socket shared with the parent)."""
        kept = getattr(self._kept, "connection", None)
        if kept is not None and not (
            self._kept.pid == os.getpid()
            and time.monotonic() - self._kept.idle_since < KEEP_ALIVE_S
            and kept.sock is not None
            and not select.select([kept.sock], [], [], 0)[0]
        ):
            if self._kept.pid == os.getpid():
                kept.close()
            kept = None
        if kept is None:
            host, port = self._parts.hostname or "", self._parts.port
            kept = (
                http.client.HTTPSConnection(host, port, context=ssl.create_default_context())
                if self._parts.scheme == "https"
                else http.client.HTTPConnection(host, port)
            )
            self._kept.connection, self._kept.pid = kept, os.getpid()
        kept.timeout = timeout  # used when it connects
        if kept.sock is not None:
            kept.sock.settimeout(timeout)
        return kept

    def _drop(self) -> None:
        kept = getattr(self._kept, "connection", None)
        if kept is not None:
            kept.close()
            self._kept.connection = None

    def _once_by_urllib(
        self,
        opener: urllib.request.OpenerDirector,
        method: str,
        url: str,
        data: bytes | None,
        timeout: float,
    ) -> Any:
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
        try:
            with opener.open(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc.code, exc.reason, _body_of(exc)) from None
        except urllib.error.URLError as exc:
            refused = isinstance(exc.reason, ConnectionRefusedError)
            raise _Retry(str(exc.reason), unsent=refused) from None
        except (http.client.HTTPException, OSError) as exc:  # dropped, reset, timed out
            raise _Retry(f"{type(exc).__name__}: {exc}", unsent=False) from None
        return json.loads(raw) if raw else None


def _proxied(parts: urllib.parse.SplitResult) -> bool:
    """Whether the environment sends requests to this server through a proxy."""
    proxy = urllib.request.getproxies().get(parts.scheme)
    return bool(proxy) and not urllib.request.proxy_bypass(parts.netloc)


def _body_of(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except OSError:
        return b""


def _encode(body: Any) -> bytes:
    try:
        return json.dumps(body, allow_nan=False).encode()
    except ValueError:
        raise errors.InvalidValueError(
            f"a value that is not a finite number cannot be sent: {body!r:.200}"
        ) from None


def _http_error(status: int, reason: str, raw: bytes) -> Exception:
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    detail = str(payload.get("detail") or reason)
    if status == 503:  # the server's database, briefly away: nothing was done
        return _Retry(detail, unsent=True)
    if status in (502, 504):  # a proxy in between: the request may have been acted on
        return _Retry(detail, unsent=False)
    if status in (401, 403):
        return errors.AccessDeniedError(f"hpo server: {detail}")
    if status >= 500:
        return ServerError(f"hpo server: {detail}")
    kind = getattr(errors, str(payload.get("error")), None)
    if isinstance(kind, type) and issubclass(kind, HpoError):
        return kind(detail)
    return HpoError(detail)
