"""Databases for the queue tests: SQLite in a temp folder, and fresh PostgreSQL databases on the
local server (FIELD-NOTES: 127.0.0.1:5432, trust auth). Each test session creates its own
databases and drops them at the end; PostgreSQL tests skip, saying why, only when the server
cannot be reached.

Test modules import the fixtures they use: ``from db_fixtures import database_url``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PG_HOST = os.environ.get("OPENREEL_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("OPENREEL_TEST_PG_PORT", "5432"))


def _admin_connection():
    """A connection to the maintenance database, or the reason there is none."""
    try:
        import psycopg
    except ImportError:
        return None, None, "psycopg is not installed (pip install 'psycopg[binary]')"
    reasons = []
    for user in ("postgres", "root", os.environ.get("USER") or "postgres"):
        for dbname in ("test", "postgres"):
            try:
                conn = psycopg.connect(
                    host=PG_HOST, port=PG_PORT, user=user, dbname=dbname, autocommit=True, connect_timeout=3
                )
                return conn, user, None
            except Exception as exc:  # any failure just means: try the next, then skip
                reasons.append(f"{user}@{dbname}: {str(exc).strip().splitlines()[0]}")
    return None, None, f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} ({'; '.join(reasons[:2])})"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Callable[[], str]]:
    """A factory: each call creates a fresh, empty database and returns its URL."""
    conn, user, reason = _admin_connection()
    if conn is None:
        pytest.skip(reason)
    created: list[str] = []

    def create() -> str:
        name = f"openreel_test_{uuid.uuid4().hex[:12]}"
        conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{name}"

    yield create
    for name in created:
        with contextlib.suppress(Exception):  # a leftover test database is harmless
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test that takes this runs twice: on SQLite and on PostgreSQL, each time empty."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'openreel.db'}"
    factory = request.getfixturevalue("postgres_database")
    return factory()
