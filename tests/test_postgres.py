"""PostgreSQL sources and outputs against a real server (Debian's postgresql, started here).

The server is a fresh cluster in a temp folder on a free localhost port (tests/pg_server.py).
Without the server binaries these tests fail with what to install: CI installs them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from builder.cli.main import main
from builder.engines.duckdb import DuckDBEngine
from builder.errors import PipelineError
from builder.pipeline.model import load
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec

pytestmark = pytest.mark.postgres

DATA = (Path(__file__).parent / "fixtures" / "data").resolve()


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
    return DuckDBEngine().run(RunSpec.from_plan(p))


ORDERS = """
    CREATE TABLE shop.orders (
        id integer PRIMARY KEY, user_id bigint, amount numeric(10,2), ratio numeric,
        placed timestamptz, attrs jsonb, tags text[], scores int[], paid boolean,
        spot point, spots point[]);
    INSERT INTO shop.orders VALUES
        (1, 1, 12.50, 0.333333333333, '2024-01-01 10:00:00+02', '{"a": 1}', '{x,y}',
         '{1,NULL,3}', true, '(1,2)', ARRAY[point(1,2)]),
        (2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, 1, 7.25, 2, '2024-01-02 00:00:00+00', '[1, 2]', '{}', '{}', false, '(0,0)', '{}');
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
        "scores": "INTEGER[]", "paid": "BOOLEAN", "spot": "VARCHAR", "spots": "VARCHAR[]"}
    from builder.engines.preview import Previewer

    with Previewer() as pv:
        cols, values = pv.fetch(p, "all")
    names = [c[0] for c in cols]
    got = sorted((dict(zip(names, r)) for r in values), key=lambda r: r["id"])
    assert got[0]["amount"] == decimal.Decimal("12.50")
    assert got[0]["placed"] == dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone.utc)
    assert got[0]["attrs"] == '{"a": 1}' and list(got[0]["tags"]) == ["x", "y"]
    assert list(got[0]["scores"]) == [1, None, 3] and got[0]["spot"] == "(1,2)"
    assert list(got[0]["spots"]) == ["(1,2)"]
    assert got[1]["amount"] is None and got[1]["tags"] is None and got[1]["paid"] is None


def test_query_source_joined_with_a_file_runs_to_parquet(pg, tmp_path):
    sql(pg, ORDERS)
    f = write(tmp_path, """\
        version: 1
        name: t
        sources:
          orders:
            postgres:
              dsn: {env: PG_DSN}
              query: SELECT user_id, sum(amount) AS total FROM shop.orders GROUP BY user_id;
          users: {path: '{DATA}/users.csv'}
        steps:
          - id: joined
            sql: |
              SELECT u.name, o.total FROM orders o JOIN users u USING (user_id)
        outputs:
          joined: {path: out/joined.parquet}
    """)
    p = plan(load(f))
    assert {c.name: c.type for c in p.schema("orders") or ()} == {
        "user_id": "BIGINT", "total": "DOUBLE"}
    res = DuckDBEngine().run(RunSpec.from_plan(p))
    assert res.outputs[0].rows == 2
    import duckdb

    got = duckdb.sql(f"SELECT * FROM '{tmp_path}/out/joined.parquet' ORDER BY name").fetchall()
    assert got == [("Ann", 19.75), ("O'Brien", None)]


def out_pipeline(tmp_path: Path, mode: str, pk: str = "[id]", select: str = "",
                 name: str = "p.yaml") -> Path:
    return write(tmp_path, f"""\
        version: 1
        name: t
        sources:
          users: {{path: '{{DATA}}/users.csv'}}
        steps:
          - id: picked
            sql: SELECT user_id AS id, name, country FROM users {select}
        outputs:
          picked:
            postgres: {{dsn: {{env: PG_DSN}}, table: shop.people, mode: {mode},
                        primary_key: {pk}}}
    """, name)


def test_replace_creates_then_swaps_the_table(pg, tmp_path):
    res = run(out_pipeline(tmp_path, "replace"))
    assert res.outputs[0].rows == 3 and res.outputs[0].target == "postgres:shop.people"
    assert rows(pg, "SELECT id, name, country FROM shop.people ORDER BY id") == [
        (1, "Ann", "DE"), (2, "O'Brien", "IE"), (4, "Zed", "US")]
    # The primary key is created, so a later merge can use it.
    assert rows(pg, "SELECT count(*) FROM pg_index WHERE indrelid = 'shop.people'::regclass "
                    "AND indisprimary") == [(1,)]
    run(out_pipeline(tmp_path, "replace", select="WHERE user_id = 4"))
    assert rows(pg, "SELECT id, name FROM shop.people") == [(4, "Zed")]
    assert rows(pg, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%dockyard%'") == [(0,)]


def test_append_inserts_into_the_existing_table(pg, tmp_path):
    sql(pg, "CREATE TABLE shop.people (id bigint, name text, country text, "
            "loaded timestamptz DEFAULT now())")
    sql(pg, "INSERT INTO shop.people (id, name, country) VALUES (9, 'Old', 'FR')")
    res = run(out_pipeline(tmp_path, "append", pk="[]"))
    run(out_pipeline(tmp_path, "append", pk="[]", select="WHERE user_id = 1"))
    assert res.outputs[0].rows == 3
    assert rows(pg, "SELECT id, name FROM shop.people ORDER BY id, name") == [
        (1, "Ann"), (1, "Ann"), (2, "O'Brien"), (4, "Zed"), (9, "Old")]
    assert rows(pg, "SELECT count(*) FROM shop.people WHERE loaded IS NULL") == [(0,)]


def test_merge_updates_and_inserts_by_primary_key(pg, tmp_path):
    sql(pg, "CREATE TABLE shop.people (id bigint PRIMARY KEY, name text, country text)")
    sql(pg, "INSERT INTO shop.people VALUES (1, 'Old Ann', 'XX'), (7, 'Kept', 'NL')")
    res = run(out_pipeline(tmp_path, "merge"))
    assert res.outputs[0].rows == 3
    assert rows(pg, "SELECT id, name, country FROM shop.people ORDER BY id") == [
        (1, "Ann", "DE"), (2, "O'Brien", "IE"), (4, "Zed", "US"), (7, "Kept", "NL")]


def test_merge_without_a_unique_key_in_postgres_is_refused(pg, tmp_path):
    sql(pg, "CREATE TABLE shop.people (id bigint, name text, country text)")
    sql(pg, "INSERT INTO shop.people VALUES (1, 'Old Ann', 'XX')")
    with pytest.raises(PipelineError) as e:
        run(out_pipeline(tmp_path, "merge"))
    assert str(e.value).splitlines()[0].endswith(
        "output 'picked' (postgres table 'shop.people'): mode 'merge' needs a primary key or "
        "unique constraint on (id) in PostgreSQL. Add one (ALTER TABLE ... ADD PRIMARY KEY), "
        "or write once with mode 'replace' and this primary_key.")
    assert rows(pg, "SELECT id, name FROM shop.people") == [(1, "Old Ann")]


@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_a_failing_write_leaves_the_table_as_it_was(pg, tmp_path, mode):
    """The step's rows repeat a key: the load fails after the rows went in (the primary key
    of replace's new table, merge's ON CONFLICT), and the transaction rolls back."""
    sql(pg, "CREATE TABLE shop.people (id bigint PRIMARY KEY, name text, country text)")
    sql(pg, "INSERT INTO shop.people VALUES (1, 'Old Ann', 'XX')")
    f = out_pipeline(tmp_path, mode, select="UNION ALL SELECT 1, 'Dup', 'DE'")
    with pytest.raises(PipelineError) as e:
        run(f)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and "The table is unchanged." in msg, msg
    assert "repeat a primary_key" in msg or "not unique" in msg, msg
    assert rows(pg, "SELECT id, name, country FROM shop.people") == [(1, "Old Ann", "XX")]
    assert rows(pg, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%dockyard%'") == [(0,)]


@pytest.mark.slow
def test_a_killed_run_leaves_the_table_as_it_was(pg, tmp_path):
    """SIGKILL while the rows stream into PostgreSQL: the server rolls the load back."""
    import signal
    import subprocess
    import sys
    import time

    sql(pg, "CREATE TABLE shop.people (id bigint PRIMARY KEY, name text, country text)")
    sql(pg, "INSERT INTO shop.people VALUES (1, 'Old Ann', 'XX')")
    f = write(tmp_path, """\
        version: 1
        name: t
        sources: {}
        steps:
          - id: picked
            sql: SELECT i AS id, repeat('x', 200) AS name, 'DE' AS country FROM range(3000000) t(i)
        outputs:
          picked: {postgres: {dsn: {env: PG_DSN}, table: shop.people, mode: replace}}
    """)
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", "run", str(f)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if rows(pg, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%'") != [(0,)]:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.3)  # some rows are in
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30  # the server notices the dropped connection
    while time.time() < deadline and rows(
            pg, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%'") != [(0,)]:
        time.sleep(0.05)
    assert rows(pg, "SELECT id, name, country FROM shop.people") == [(1, "Old Ann", "XX")]
    assert rows(pg, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%dockyard%'") == [(0,)]


def source_pipeline(tmp_path: Path, postgres: str) -> Path:
    return write(tmp_path, f"""\
        version: 1
        name: t
        sources:
          orders: {{postgres: {postgres}}}
        steps:
          - id: all
            sql: SELECT * FROM orders
        outputs:
          all: {{path: out/all.parquet}}
    """)


def cli_error(capsys: pytest.CaptureFixture[str], f: Path, *extra: str) -> str:
    assert main(["run", str(f), *extra]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_unknown_table_names_the_source_and_suggests(pg, tmp_path, capsys):
    sql(pg, ORDERS)
    f = source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, table: shop.order}")
    assert cli_error(capsys, f).endswith(
        "source 'orders': table 'shop.order' not found in PostgreSQL. Did you mean "
        "'shop.orders'?")


def test_a_bad_query_is_one_line(pg, tmp_path, capsys):
    f = source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, query: SELEC 1}")
    err = cli_error(capsys, f)
    assert "source 'orders': PostgreSQL refused the query: syntax error" in err, err


def test_missing_env_var_says_what_to_set(pg, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NO_SUCH_DSN", raising=False)
    f = source_pipeline(tmp_path, "{dsn: {env: NO_SUCH_DSN}, table: shop.orders}")
    assert "source 'orders': 'dsn' reads the environment variable 'NO_SUCH_DSN', which is not " \
        "set. Set it before running (export NO_SUCH_DSN=" in cli_error(capsys, f)


def test_bad_dsn_never_shows_the_password(pg_server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PG_DSN", pg_server.dsn.replace("secret-pw", "wrong-pw-123"))
    f = source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, table: shop.orders}")
    err = cli_error(capsys, f)
    assert "source 'orders': cannot connect to PostgreSQL ($PG_DSN): " in err, err
    assert "password authentication failed" in err and "wrong-pw-123" not in err, err
    # A server that is not there: the DSN (with its password) is not echoed either.
    monkeypatch.setenv("PG_DSN", "postgresql://bob:hunter2@127.0.0.1:1/db")
    err = cli_error(capsys, f)
    assert "cannot connect to PostgreSQL ($PG_DSN)" in err and "hunter2" not in err, err


def test_a_password_in_the_file_is_refused(tmp_path, capsys):
    f = source_pipeline(tmp_path, "{dsn: 'postgresql://bob:hunter2@db/x', table: t}")
    err = cli_error(capsys, f)
    assert err.endswith("source 'orders': 'dsn' holds a password in the pipeline file. Put the "
                        "connection string in an environment variable and write "
                        "'dsn: {env: PG_DSN}'."), err
    assert "hunter2" not in err


@pytest.mark.parametrize("spec, message", [
    ("{dsn: {env: PG_DSN}}", "'postgres' needs exactly one of 'table' or 'query'."),
    ("{dsn: {env: PG_DSN}, table: t, query: SELECT 1}",
     "'postgres' needs exactly one of 'table' or 'query'."),
    ("{table: t}", "'postgres' needs 'dsn: {env: PG_DSN}'"),
    ("{dsn: {env: PG_DSN}, table: t, tabel: t}", "unknown key 'tabel' in 'postgres'. Did you mean "
     "'table'?"),
])
def test_source_shape_errors(tmp_path, capsys, spec, message):
    assert message in cli_error(capsys, source_pipeline(tmp_path, spec))


def test_output_shape_errors(tmp_path, capsys):
    f = out_pipeline(tmp_path, "upsert")
    assert "output 'picked': mode 'upsert' is not supported. Valid values: replace, append, " \
        "merge." in cli_error(capsys, f)
    f = out_pipeline(tmp_path, "merge", pk="[]")
    assert "output 'picked': mode 'merge' needs 'primary_key'" in cli_error(capsys, f)
    f = write(tmp_path, """\
        version: 1
        name: t
        sources: {}
        steps:
          - {id: one, sql: SELECT 1 AS id}
        outputs:
          one: {postgres: {dsn: {env: PG_DSN}, table: t}, mode: merge}
    """)
    assert cli_error(capsys, f).endswith(
        "output 'one': 'mode' of a postgres output goes inside 'postgres:' (history is not "
        "supported there).")


def test_without_the_driver_the_error_says_what_to_install(pg, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)  # import fails
    f = source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, table: shop.orders}")
    assert cli_error(capsys, f).endswith(
        "PostgreSQL sources and outputs need the PostgreSQL driver: "
        "pip install 'dockyard[postgres]'.")


def test_spark_refuses_postgres_before_starting(pg, tmp_path):
    from builder.engines.spark import SparkEngine

    sql(pg, ORDERS)
    p = plan(load(source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, table: shop.orders}")))
    with pytest.raises(PipelineError) as e:
        SparkEngine().check(p, ["all"])
    assert str(e.value).endswith("source 'orders' reads PostgreSQL, which the spark engine "
                                 "does not run. Run this pipeline with --engine duckdb.")


def test_runs_with_postgres_are_never_cached(pg, tmp_path):
    from builder.plan.runspec import RunSpec

    sql(pg, ORDERS)
    p = plan(load(source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, table: shop.orders}")))
    assert not RunSpec.from_plan(p).cacheable
    p = plan(load(out_pipeline(tmp_path, "replace")))
    assert not RunSpec.from_plan(p).cacheable


def test_rows_changed_in_postgres_are_read_by_the_next_run(pg, tmp_path):
    import duckdb

    sql(pg, ORDERS)
    f = source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, table: shop.orders}")
    for expected in (3, 4):
        assert main(["run", str(f)]) == 0
        n = duckdb.sql(f"SELECT count(*) FROM '{tmp_path}/out/all.parquet'").fetchall()
        assert n == [(expected,)]
        sql(pg, f"INSERT INTO shop.orders (id) VALUES ({10 + expected})")


def test_sampled_preview_of_a_keyed_postgres_source(pg, tmp_path):
    from builder.engines.preview import Previewer, SampleSpec

    sql(pg, ORDERS)
    f = write(tmp_path, """\
        version: 1
        name: t
        sources:
          orders: {postgres: {dsn: {env: PG_DSN}, table: shop.orders}, sample_key: [user_id]}
        steps:
          - id: all
            sql: SELECT * FROM orders
    """)
    p = plan(load(f))
    with Previewer() as pv:
        res = pv.preview(p, "all", sample=SampleSpec(rows=10))
    assert res.row_count == 3


def test_written_types_read_back_the_same(pg, tmp_path):
    """DECIMAL(p,s), JSON and UUID keep their types in PostgreSQL (replace creates them,
    append casts into them), so a pipeline reading the table gets the types it wrote."""
    step = ("SELECT 1 AS id, CAST(12.5 AS DECIMAL(10,2)) AS amount, '{\"a\": 1}'::JSON AS attrs, "
            "'6f1c2b52-0d0b-4c5e-9d7e-1a2b3c4d5e6f'::UUID AS ref, "
            "[CAST(1.5 AS DECIMAL(4,1))] AS parts, 'x' AS note")
    quoted = step.replace('"', '\\"')
    for mode in ("replace", "append"):
        f = write(tmp_path, f"""\
            version: 1
            name: t
            sources: {{}}
            steps:
              - id: typed
                sql: "{quoted}"
            outputs:
              typed: {{postgres: {{dsn: {{env: PG_DSN}}, table: shop.typed, mode: {mode}}}}}
        """)
        run(f)
    assert rows(pg, "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'shop.typed'::regclass AND attnum > 0 ORDER BY attnum") == [
        ("id", "integer"), ("amount", "numeric(10,2)"), ("attrs", "jsonb"), ("ref", "uuid"),
        ("parts", "numeric(4,1)[]"), ("note", "text")]
    assert rows(pg, "SELECT count(*), min(attrs->>'a') FROM shop.typed") == [(2, "1")]
    src = source_pipeline(tmp_path, "{dsn: {env: PG_DSN}, table: shop.typed}")
    types = {c.name: c.type for c in plan(load(src)).schema("orders") or ()}
    assert types == {"id": "INTEGER", "amount": "DECIMAL(10,2)", "attrs": "JSON",
                     "ref": "UUID", "parts": "DOUBLE[]", "note": "VARCHAR"}


def test_an_output_without_its_variable_stops_the_run_before_any_write(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.delenv("OUT_DSN", raising=False)
    f = write(tmp_path, """\
        version: 1
        name: t
        sources:
          users: {path: '{DATA}/users.csv'}
        steps:
          - {id: copied, sql: SELECT * FROM users}
          - {id: again, sql: SELECT * FROM users}
        outputs:
          copied: {path: out/copied.parquet}
          again: {postgres: {dsn: {env: OUT_DSN}, table: t}}
    """)
    assert cli_error(capsys, f).endswith(
        "output 'again' (postgres table 't'): 'dsn' reads the environment variable 'OUT_DSN', "
        "which is not set. Set it before running (export OUT_DSN=postgresql://user:password@"
        "host:5432/db).")
    assert not (tmp_path / "out" / "copied.parquet").exists()
