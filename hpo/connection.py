"""Connecting to a database: URLs, engines, SQLite's settings, readable errors.

`choose_storage` is the one place that decides which database a command or
call uses. The rest is used by `hpo.storage` only. SQLite gets a busy timeout, `BEGIN IMMEDIATE` for
write transactions (so that two processes never deadlock upgrading a read
lock) and `synchronous=NORMAL` (durable against a killed process in WAL
mode). Database errors become one-line StorageError messages with any
password hidden.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from hpo.errors import DroppedConnectionError, StorageError, TransientStorageError

BUSY_TIMEOUT_S = 60.0
DEFAULT_STORAGE = "hpo.db"  # an SQLite file in the current directory
STORAGE_VARIABLE = "HPO_STORAGE"


def choose_storage(given: str | None = None, from_file: str | None = None) -> str:
    """The database to use: `given` (--storage, or the `storage` argument), else
    $HPO_STORAGE, else a study file's `storage`, else hpo.db in the current folder.

    An empty value, given or in the environment, is an error rather than a
    silent hpo.db: it is almost always an unset shell variable.
    """
    if given is not None:
        return _not_empty(given, "--storage")
    if STORAGE_VARIABLE in os.environ:
        return _not_empty(os.environ[STORAGE_VARIABLE], STORAGE_VARIABLE)
    return from_file or DEFAULT_STORAGE


def _not_empty(url: str, where: str) -> str:
    if not url.strip():
        raise StorageError(
            f"{where} is empty: give a database URL or an SQLite file path "
            f"(leave {where} out for {DEFAULT_STORAGE} in the current folder)"
        )
    return url


def parse_url(url: str | None) -> sa.URL:
    """None -> in-memory SQLite; a path without '://' -> that SQLite file; else a URL."""
    if url is None:
        return sa.URL.create("sqlite")
    text = _not_empty(str(url), "the storage URL")
    if "://" not in text:
        return sa.URL.create("sqlite", database=text)  # no parsing: '?' stays in the name
    try:
        return sa.engine.make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise StorageError(f"invalid storage URL {_masked(text)!r}: {exc}") from None


def is_memory_url(url: sa.URL) -> bool:
    """An in-memory SQLite database: private to the process that opens it."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _masked(url: str) -> str:
    """The URL with its password replaced by ***, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


# the driver each of the clone's extras installs, and the URL scheme that uses it
_EXTRAS = {
    "postgresql": ("postgres", "postgresql+psycopg://"),
    "mysql": ("mysql", "mysql+pymysql://"),
    "mariadb": ("mysql", "mysql+pymysql://"),
}


def _driver_hint(url: sa.URL) -> str:
    extra = _EXTRAS.get(url.get_backend_name())
    if extra is None:
        return ""
    name, scheme = extra
    return (
        f"; the driver hpo is tested with: pip install -e '.[{name}]' in the hpo clone, "
        f"and a URL starting {scheme}"
    )


def make_engine(url: sa.URL, busy_timeout: float = BUSY_TIMEOUT_S) -> Engine:
    shown = url.render_as_string(hide_password=True)
    try:
        with warnings.catch_warnings():  # SQLAlchemy warns of URL options it ignores
            warnings.simplefilter("error", sa.exc.SAWarning)
            if url.get_backend_name() != "sqlite":
                return sa.create_engine(url, pool_pre_ping=False)
            memory = is_memory_url(url)
            engine = sa.create_engine(
                url,
                connect_args={"timeout": busy_timeout, "check_same_thread": False},
                poolclass=StaticPool if memory else None,
            )
    except sa.exc.SAWarning as exc:
        raise StorageError(f"storage URL {shown!r}: {str(exc).split(' (Background')[0]}") from None
    except (ValueError, TypeError) as exc:  # a URL option of the wrong type
        raise StorageError(f"invalid storage URL {shown!r}: {exc}") from None
    except NoSuchModuleError:  # a subclass of ArgumentError: test it first
        raise StorageError(f"unknown database in storage URL {shown!r}") from None
    except ArgumentError as exc:
        raise StorageError(f"invalid storage URL {shown!r}: {exc}") from None
    except ModuleNotFoundError as exc:
        raise StorageError(
            f"storage URL {shown!r} needs the Python module {exc.name!r}, "
            f"its database driver{_driver_hint(url)}"
        ) from None
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("hpo_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def check_sqlite_file(engine: Engine, create: bool) -> None:
    """Fail clearly, before SQLite creates or touches anything."""
    if engine.dialect.name != "sqlite":
        return
    path = engine.url.database
    if path in (None, "", ":memory:") or path.startswith("file:"):
        return
    if os.path.isdir(path):
        raise StorageError(f"storage {path!r} is a directory, not an SQLite file")
    check_local_disk(path)
    if os.path.exists(path):
        return
    if not create:
        raise StorageError(
            f"no hpo database at {path!r} (run a study first, or give --storage / HPO_STORAGE)"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StorageError(
            f"cannot create SQLite database {path!r}: folder {folder!r} does not exist"
        )


# Filesystems shared over a network, as /proc/mounts names them. SQLite's
# locks do not work reliably on them and WAL mode needs shared memory that
# they cannot give: two machines writing one file corrupt it
# (https://www.sqlite.org/useovernet.html).
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "davfs",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.ceph",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.gcsfuse",
        "fuse.davfs",
    }
)


def check_local_disk(path: str, mounts: str | None = None) -> None:
    """Refuse an SQLite file on a network filesystem, with what to do instead.

    `mounts`: the mount table in /proc/mounts format (default: this machine's).
    """
    kind = filesystem_type(os.path.dirname(os.path.abspath(path)), mounts)
    if kind in NETWORK_FILESYSTEMS:
        raise StorageError(
            f"storage {path!r} is on a network filesystem ({kind}): SQLite's locking is not "
            "reliable there and a shared study would be corrupted. Keep the SQLite file on "
            "a local disk, or share a study between machines through a PostgreSQL or MySQL "
            "URL (e.g. postgresql+psycopg://user@host/db)"
        )


def filesystem_type(folder: str, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding `folder` (the longest mount point above it)."""
    if mounts is None:
        try:
            with open("/proc/self/mounts", encoding="utf-8") as file:
                mounts = file.read()
        except OSError:  # not Linux: nothing to check against
            return None
    target = os.path.realpath(folder)
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")  # /proc/mounts escapes spaces
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


@contextmanager
def translated_errors(where: str) -> Iterator[None]:
    """Database errors -> StorageError with one readable line (IntegrityError passes)."""
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as exc:
        kind = (
            DroppedConnectionError
            if _is_dropped(exc)
            else TransientStorageError
            if is_transient(exc)
            else StorageError
        )
        raise kind(_describe_db_error(where, exc)) from exc
    except OverflowError as exc:  # sqlite3 refuses integers beyond 64 bits itself
        raise StorageError(f"value too large for {where}: {exc}") from exc


# Messages of errors that go away by themselves: a lock held too long, a
# deadlock victim, a connection the server dropped (restart, failover,
# pg_terminate_backend, MySQL's wait_timeout).
_DROPPED = (
    "terminating connection",
    "server closed the connection",
    "connection already closed",
    "the connection is closed",
    "the connection is lost",  # psycopg 3.1
    "lost connection",
    "gone away",
    "connection reset",
    "broken pipe",
    "consuming input failed",
    "socket closed",  # psycopg 3.2+: "connection socket closed"
    "ssl syscall",
)
_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "busy",
    "deadlock",
    "lock wait timeout",
    "could not serialize",
    "connection refused",
    "the database system is",
    *_DROPPED,
)


def is_transient(exc: DBAPIError) -> bool:
    """Whether retrying the transaction may succeed."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return False
    text = str(exc.orig or exc).lower()
    return any(marker in text for marker in _TRANSIENT)


def _is_dropped(exc: DBAPIError) -> bool:
    """A connection the server had accepted and then closed (not one it refused)."""
    text = str(exc.orig or exc).lower()
    return any(marker in text for marker in _DROPPED)


def _describe_db_error(where: str, exc: DBAPIError) -> str:
    original = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    lowered = original.lower()
    if "file is not a database" in lowered:
        return f"{where} is not an SQLite database"
    if "readonly" in lowered or "read-only" in lowered:
        return (
            f"cannot write to {where}: the database is read-only (SQLite also needs "
            "to write beside the file, in its folder)"
        )
    if "unable to open database file" in lowered:
        return f"cannot open {where}: unable to open the database file"
    if exc.connection_invalidated or "connect" in lowered or "connection" in lowered:
        return f"cannot connect to {where}: {original}"
    return f"database error on {where}: {original}"
