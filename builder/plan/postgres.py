"""PostgreSQL sources at plan time: typed from the database's own catalog, no row read.

A source ``{postgres: {dsn: {env: PG_DSN}, table: public.orders}}`` (or ``query:``) is typed
from a ``LIMIT 0`` query, which returns the Arrow schema with each column's PostgreSQL type
(and NUMERIC's precision and scale). Its read query in DuckDB selects from ``<id>__postgres``,
the name the run registers the driver's Arrow stream under (see :mod:`builder.engines.postgres`).
Connecting is in :mod:`builder.pipeline.postgres_spec`, shared with the engine.
"""

from __future__ import annotations

from typing import Any

import duckdb
from sqlglot import parse_one

from builder.errors import CompileError, ConfigError, ExecutionError, Problem, did_you_mean
from builder.pipeline.model import Pipeline, Source
from builder.pipeline.postgres_spec import (
    close_quietly,
    connect,
    driver,
    first_line,
    qi,
    qualified,
    resolve_dsn,
    split_table,
)
from builder.plan.plans import Plan, ProblemSink, SourcePlan
from builder.plan.types import ColumnInfo

VIEW_SUFFIX = "__postgres"  # the DuckDB name a source's Arrow stream is registered under


# ---- sources: typing from the catalog ----------------------------------------------------

def _relation(spec: dict[str, Any]) -> str:
    if spec.get("table") is not None:
        return qualified(str(spec["table"]))
    return "(" + str(spec["query"]).strip().rstrip(";") + ") AS dockyard_q"


def _numeric_type(typmod: int) -> str:
    """DuckDB's type for a NUMERIC column (as DuckDB's own postgres scanner maps it)."""
    if typmod < 4:
        return "DOUBLE"  # NUMERIC without precision: any scale, as DuckDB's scanner reads it
    precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
    return f"DECIMAL({precision},{scale})" if 0 < precision <= 38 else "DOUBLE"


def _meta(field: Any, key: str) -> str | None:
    meta = field.metadata or {}
    value = meta.get(key.encode())
    return value.decode() if value is not None else None


def _is_opaque(field: Any) -> bool:
    return getattr(field.type, "extension_name", None) == "arrow.opaque"


def _unknown_table(cur: Any, spec: dict[str, Any]) -> str:
    schema, name = split_table(str(spec["table"]))
    cur.execute("SELECT table_schema || '.' || table_name, table_name FROM "
                "information_schema.tables WHERE table_schema NOT IN "
                "('pg_catalog', 'information_schema')")
    rows = cur.fetchall()
    names = [r[0] for r in rows] + [r[1] for r in rows]
    return f"table '{spec['table']}' not found in PostgreSQL." + (
        did_you_mean(str(spec["table"]), names) or "")


def describe(spec: dict[str, Any], where: str) -> tuple[str, str, list[tuple[str, str]]]:
    """Type a source from the database's catalog, reading no row.

    Returns (the query the run sends to PostgreSQL, the DuckDB query over the registered Arrow
    stream, [(column, DuckDB type)]). Types PostgreSQL's driver hands over as opaque bytes
    (geometric types, ranges, ...) are read as their text; NUMERIC becomes DECIMAL(p,s).
    """
    con = connect(spec["dsn"], where)
    dsn = resolve_dsn(spec["dsn"], where)
    try:
        cur = con.cursor()
        try:
            cur.execute(f"SELECT * FROM {_relation(spec)} LIMIT 0")
            schema = cur.fetch_arrow_table().schema
        except driver().Error as e:
            close_quietly(con)
            con = connect(spec["dsn"], where)
            if spec.get("table") is not None and "does not exist" in str(e):
                raise ConfigError(f"{where}: {_unknown_table(con.cursor(), spec)}") from None
            what = "table" if spec.get("table") is not None else "query"
            raise ConfigError(f"{where}: PostgreSQL refused the {what}: "
                              f"{first_line(e, dsn)}") from None
    finally:
        close_quietly(con)
    names = [f.name for f in schema]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise ConfigError(f"{where}: the query returns column '{twice}' twice. Give each column "
                          "its own name (AS ...).")
    pg_cols, duck_cols = [], []
    for f in schema:
        typname = _meta(f, "POSTGRESQL:type") or ""
        # Opaque types are read as text; NUMERIC too: the server's text is faster than the
        # driver's conversion of its binary form (1.1 s against 1.7 s for 1M rows).
        item = getattr(f.type, "value_field", None)
        opaque_items = item is not None and _is_opaque(item)
        cast = "::text" if _is_opaque(f) else "::text[]" if opaque_items else ""
        pg_cols.append(f"{qi(f.name)}{cast} AS {qi(f.name)}" if cast else qi(f.name))
        duck_type = None
        if typname == "numeric":
            duck_type = _numeric_type(int(_meta(f, "POSTGRESQL:typmod") or -1))
        elif opaque_items and _meta(item, "POSTGRESQL:type") == "numeric":
            duck_type = "DOUBLE[]"  # the driver gives no precision for array elements
        duck_cols.append(f'CAST("{_dq(f.name)}" AS {duck_type}) AS "{_dq(f.name)}"' if duck_type
                         else f'"{_dq(f.name)}"')
    pg_sql = f"SELECT {', '.join(pg_cols) or '*'} FROM {_relation(spec)}"
    view = "{view}"
    read_sql = f"SELECT {', '.join(duck_cols)} FROM {view}" if duck_cols else \
        f"SELECT * FROM {view}"
    types = _duck_types(pg_sql, read_sql, spec, where)
    return pg_sql, read_sql, types


def _dq(name: str) -> str:
    return name.replace('"', '""')


def _duck_types(pg_sql: str, read_sql: str, spec: dict[str, Any],
                where: str) -> list[tuple[str, str]]:
    """DuckDB's types of the read query, from an empty result of the final PostgreSQL query."""
    con = connect(spec["dsn"], where)
    try:
        cur = con.cursor()
        cur.execute(f"SELECT * FROM ({pg_sql}) AS dockyard_t LIMIT 0")
        empty = cur.fetch_arrow_table()
    finally:
        close_quietly(con)
    # Heavy (the duckdb package's Python layer, 100 ms): loaded only to type such a source.

    duck = duckdb.connect()
    try:
        duck.register("pg_empty", empty)
        rows = duck.execute("DESCRIBE " + read_sql.replace("{view}", "pg_empty")).fetchall()
    finally:
        duck.close()
    return [(str(r[0]), str(r[1])) for r in rows]


def plan_source(pipeline: Pipeline, src: Source, sink: ProblemSink) -> SourcePlan:
    """The plan of a ``postgres:`` source: its read query and its catalog schema."""
    assert src.postgres is not None
    where = f"source '{src.id}'"
    view = src.id + VIEW_SUFFIX
    try:
        pg_sql, read_sql, types = describe(src.postgres, where)
    except (ConfigError, ExecutionError) as e:
        for p in e.problems:
            sink.add(p.message, line=src.line, kind=p.kind)
        return SourcePlan(src, None)
    read = parse_one(read_sql.replace("{view}", f'"{_dq(view)}"'), dialect="duckdb")
    sp = SourcePlan(src, read, tuple(ColumnInfo(n, t) for n, t in types))  # type: ignore[arg-type]
    sp.postgres = {"dsn": src.postgres["dsn"], "sql": pg_sql, "view": view}
    return sp


def refuse_on(plan: Plan, targets: list[str], engine: str) -> None:
    """Raise one line per PostgreSQL source or output an engine cannot run."""
    problems: list[Problem] = []
    for node in plan.needed_for(targets):
        if node in plan.sources and plan.sources[node].source.postgres is not None:
            problems.append(Problem(
                f"source '{node}' reads PostgreSQL, which the {engine} engine does not run. "
                "Run this pipeline with --engine duckdb.", file=plan.pipeline.file,
                line=plan.sources[node].source.line, kind="compile"))
    for out in plan.pipeline.outputs.values():
        if out.step in targets and out.postgres is not None:
            problems.append(Problem(
                f"output '{out.step}' writes PostgreSQL, which the {engine} engine does not "
                "run. Run this pipeline with --engine duckdb.", file=plan.pipeline.file,
                line=out.line, kind="compile"))
    if problems:
        raise CompileError(problems)
