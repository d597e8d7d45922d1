"""PostgreSQL sources and outputs against a real server (Debian's postgresql, started here).

The server is a fresh cluster in a temp folder on a free localhost port (tests/pg_server.py).
Without the server binaries these tests fail with what to install: CI installs them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.cli import main
from builder.compiler import plan
from builder.engines.duckdb import DuckDBEngine
from builder.errors import PipelineError
from builder.model import load
from tests.pg_server import PgServer, start_server

DATA = (Path(__file__).parent / "fixtures" / "data").resolve()


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


def sql(cur: Any, text: str) -> None:
    """Run ';'-separated statements (a prepared statement holds one)."""
    for stmt in text.split(";\n"):
        if stmt.strip():
            cur.execute(stmt)


def rows(cur: Any, sql: str) -> list[tuple[Any, ...]]:
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


def write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    f = tmp_path / name
    f.write_text(textwrap.dedent(body).replace("{DATA}", str(DATA)), encoding="utf-8")
    return f


def run(path: Path) -> Any:
    p = plan(load(path))
    return DuckDBEngine(record=False).run(p)


ORDERS = """
    CREATE TABLE shop.orders (
        id integer PRIMARY KEY, user_id bigint, amount numeric(10,2), ratio numeric,
        placed timestamptz, attrs jsonb, tags text[], scores int[], paid boolean,
        spot point);
    INSERT INTO shop.orders VALUES
        (1, 1, 12.50, 0.333333333333, '2024-01-01 10:00:00+02', '{"a": 1}', '{x,y}',
         '{1,NULL,3}', true, '(1,2)'),
        (2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, 1, 7.25, 2, '2024-01-02 00:00:00+00', '[1, 2]', '{}', '{}', false, '(0,0)');
"""


def test_table_source_is_typed_from_the_catalog(pg, tmp_path):
    sql(pg, ORDERS)
    f = write(tmp_path, """\
        version: 1
        name: t
        sources:
          orders: {postgres: {dsn: {env: PG_DSN}, table: shop.orders}}
        steps:
          - id: all
            sql: SELECT * FROM orders
    """)
    p = plan(load(f))
    assert not p.errors, p.errors
    types = {c.name: c.type for c in p.schema("orders") or ()}
    assert types == {
        "id": "INTEGER", "user_id": "BIGINT", "amount": "DECIMAL(10,2)", "ratio": "DOUBLE",
        "placed": "TIMESTAMP WITH TIME ZONE", "attrs": "JSON", "tags": "VARCHAR[]",
        "scores": "INTEGER[]", "paid": "BOOLEAN", "spot": "VARCHAR"}
    from builder.preview import Previewer

    with Previewer(engine=DuckDBEngine(record=False)) as pv:
        cols, values = pv.fetch(p, "all")
    names = [c[0] for c in cols]
    got = sorted((dict(zip(names, r)) for r in values), key=lambda r: r["id"])
    assert got[0]["amount"] == decimal.Decimal("12.50")
    assert got[0]["placed"] == dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone.utc)
    assert got[0]["attrs"] == '{"a": 1}' and list(got[0]["tags"]) == ["x", "y"]
    assert list(got[0]["scores"])[0] == 1 and got[0]["spot"] == "(1,2)"
    assert got[1]["amount"] is None and got[1]["tags"] is None and got[1]["paid"] is None
