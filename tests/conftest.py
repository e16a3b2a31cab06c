"""Shared fixtures: storages over every backend, and the repository's paths.

Server-backed storages run when their URL is in the environment (`.ci/run`
sets both) and skip otherwise, saying how to enable them:

    HPO_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test
    HPO_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306/test
"""

from __future__ import annotations

import importlib.util
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hpo.schema import metadata
from hpo.storage import Storage

REPO = Path(__file__).resolve().parent.parent
SERVER_URLS = {
    "postgres": ("HPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": ("HPO_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def default_sigint() -> None:
    """Popen's preexec_fn: Ctrl-C as a terminal gives it, whatever this process inherited.

    A test run started in the background by a non-interactive shell ignores
    SIGINT, and so would its children: Python then installs no
    KeyboardInterrupt handler, and the Ctrl-C tests would hang.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def bench_problems() -> dict:
    """The public benchmark problems, from the verbatim copy in bench/problems.py."""
    spec = importlib.util.spec_from_file_location("bench_problems", REPO / "bench" / "problems.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PROBLEMS


def server_url(kind: str) -> str:
    variable, example = SERVER_URLS[kind]
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{kind} tests need a server: set {variable} (e.g. {example})")
    return url


def drop_hpo_tables(url: str) -> None:
    """A clean database for each test on a shared server."""
    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite-file", "memory", "postgres", "mysql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh Storage on each backend."""
    kind = request.param
    if kind == "sqlite-file":
        url: str | None = str(tmp_path / "hpo.db")
    elif kind == "memory":
        url = None
    else:
        url = server_url(kind)
        drop_hpo_tables(url)
    store = Storage(url)
    yield store
    store.close()


@pytest.fixture(params=["sqlite-file", "postgres", "mysql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a fresh database that several Storage objects can open."""
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'hpo.db'}"
    url = server_url(request.param)
    drop_hpo_tables(url)
    return url


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hpo.db"
