"""Fixtures shared by test modules: a PostgreSQL server for the postgres tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.pg_server import PgServer, start_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = start_server()  # raises (the test fails) when PostgreSQL is not installed
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A connection to the test server; PG_DSN is set for the pipelines."""
    import adbc_driver_postgresql.dbapi as dbapi

    monkeypatch.setenv("PG_DSN", pg_server.dsn)
    con = dbapi.connect(pg_server.dsn, autocommit=True)
    cur = con.cursor()
    cur.execute("DROP SCHEMA IF EXISTS shop CASCADE")
    cur.execute("CREATE SCHEMA shop")
    try:
        yield cur
    finally:
        con.close()
