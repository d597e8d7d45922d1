"""PostgreSQL sources and outputs, through ADBC's PostgreSQL driver (Arrow in, Arrow out).

A source ``{postgres: {dsn: {env: PG_DSN}, table: public.orders}}`` (or ``query:``) is typed at
plan time from the database's own catalog: a ``LIMIT 0`` query returns the Arrow schema with
each column's PostgreSQL type (and NUMERIC's precision and scale), no row is read. Its read
query in DuckDB selects from ``<id>__postgres``, the name the run registers the driver's
Arrow stream under (COPY in binary format on the server side), so the rows stream into a DuckDB
table without a file in between.

An output ``{postgres: {dsn: ..., table: ..., mode: replace|append|merge, primary_key: [...]}}``
streams the step's rows into PostgreSQL in one transaction: ``replace`` loads a new table and
swaps it in (drop, rename), ``append`` and ``merge`` load a temporary table and insert from it
(``merge``: ``INSERT ... ON CONFLICT (key) DO UPDATE``). A failed or killed run leaves the
target table as it was.

Connection strings come from the environment only (``dsn: {env: NAME}``); a DSN written in the
file may not carry a password, and messages never show one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import duckdb

from builder.errors import ConfigError, ExecutionError, Problem, did_you_mean
from builder.pipeline.postgres_spec import (  # noqa: F401 - the file's keys, re-exported
    MODES,
    OUTPUT_KEYS,
    SOURCE_KEYS,
    has_password,
    spec_problems,
)

if TYPE_CHECKING:
    from builder.pipeline.model import Pipeline, Source
    from builder.plan.compiler import Plan, ProblemSink, SourcePlan
    from builder.plan.runspec import OutputSpec

INSTALL_HINT = "pip install 'dockyard[postgres]'"
VIEW_SUFFIX = "__postgres"  # the DuckDB name a source's Arrow stream is registered under
BATCH_ROWS = 100_000
_MAX_IDENT = 63  # PostgreSQL truncates longer identifiers


# ---- secrets in messages -----------------------------------------------------------------

def mask(text: str, dsn: str | None = None) -> str:
    """``text`` with any password (of ``dsn``, or in a URI or key=value form) replaced."""
    if dsn:
        try:
            pw = urlsplit(dsn).password if "://" in dsn else None
        except ValueError:
            pw = None
        m = re.search(r"(?:^|\s)password\s*=\s*(\S+)", dsn)
        for secret in (pw, m.group(1) if m else None):
            if secret:
                text = text.replace(secret, "***")
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)


def output_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """An output's ``postgres:`` mapping with defaults filled (plain data for the run spec)."""
    pk = spec.get("primary_key") or []
    return {"dsn": spec.get("dsn"), "table": str(spec.get("table")),
            "mode": spec.get("mode", "replace"), "primary_key": [pk] if isinstance(pk, str)
            else list(pk)}


# ---- connecting --------------------------------------------------------------------------

def dsn_label(dsn: Any) -> str:
    """How messages name a connection: its environment variable, never its value."""
    return f"${dsn['env']}" if isinstance(dsn, dict) else "the 'dsn' of the file"


def resolve_dsn(dsn: Any, where: str) -> str:
    """The connection string of a ``dsn:`` value (ConfigError when its variable is unset)."""
    if isinstance(dsn, dict):
        var = str(dsn.get("env"))
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"{where}: 'dsn' reads the environment variable '{var}', which "
                              f"is not set. Set it before running (export {var}=postgresql://"
                              "user:password@host:5432/db).")
        return value
    return str(dsn)


def _driver() -> Any:
    try:
        import adbc_driver_postgresql.dbapi as pg_dbapi
    except ImportError:
        raise ConfigError("PostgreSQL sources and outputs need the PostgreSQL driver: "
                          f"{INSTALL_HINT}.") from None
    return pg_dbapi


def _first_line(e: BaseException, dsn: str | None) -> str:
    text = str(e).strip()
    # ADBC prefixes the status ("IO: [libpq] ..."): the libpq text is what the user can act on.
    text = re.sub(r"^[A-Z_]+: (\[libpq\] )?", "", text)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    # "Failed to prepare query: ERROR:  syntax error ...": the server's own words.
    # The echoed query before it is dropped too.
    if "ERROR:  " in line:
        line = line.split("ERROR:  ", 1)[1]
    return mask(line, dsn).rstrip(".") + "."


def connect(dsn_value: Any, where: str) -> Any:
    """An ADBC connection (autocommit off: every write is one transaction)."""
    pg = _driver()
    dsn = resolve_dsn(dsn_value, where)
    try:
        return pg.connect(dsn)
    except pg.Error as e:
        raise ExecutionError(f"{where}: cannot connect to PostgreSQL ({dsn_label(dsn_value)}): "
                             f"{_first_line(e, dsn)}") from None


def _close_quietly(obj: Any) -> None:
    try:
        obj.close()
    except Exception:  # noqa: BLE001 - closing a broken connection changes nothing
        pass


# ---- names -------------------------------------------------------------------------------

def qi(name: str) -> str:
    """A quoted PostgreSQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def split_table(table: str) -> tuple[str | None, str]:
    """``schema.table`` -> (schema, table); a bare name has no schema (the search path's)."""
    schema, dot, name = table.strip().partition(".")
    return (schema, name) if dot else (None, schema)


def qualified(table: str) -> str:
    schema, name = split_table(table)
    return f"{qi(schema)}.{qi(name)}" if schema else qi(name)


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
        except _driver().Error as e:
            _close_quietly(con)
            con = connect(spec["dsn"], where)
            if spec.get("table") is not None and "does not exist" in str(e):
                raise ConfigError(f"{where}: {_unknown_table(con.cursor(), spec)}") from None
            what = "table" if spec.get("table") is not None else "query"
            raise ConfigError(f"{where}: PostgreSQL refused the {what}: "
                              f"{_first_line(e, dsn)}") from None
    finally:
        _close_quietly(con)
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
        _close_quietly(con)
    duck = duckdb.connect()
    try:
        duck.register("pg_empty", empty)
        rows = duck.execute("DESCRIBE " + read_sql.replace("{view}", "pg_empty")).fetchall()
    finally:
        duck.close()
    return [(str(r[0]), str(r[1])) for r in rows]


def plan_source(pipeline: Pipeline, src: Source, sink: ProblemSink) -> SourcePlan:
    """The plan of a ``postgres:`` source: its read query and its catalog schema."""
    from sqlglot import parse_one

    from builder.plan.compiler import SourcePlan
    from builder.plan.types import ColumnInfo

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


@contextmanager
def attached(con: duckdb.DuckDBPyConnection, info: dict[str, Any],
             source: str) -> Iterator[None]:
    """Stream a source's rows from PostgreSQL: its Arrow reader is registered as its view.

    The stream can be read once: the caller runs one statement that stores the rows.
    """
    where = f"source '{source}'"
    pg = connect(info["dsn"], where)
    try:
        cur = pg.cursor()
        try:
            cur.execute(info["sql"])
            reader = cur.fetch_record_batch()
        except _driver().Error as e:
            raise ExecutionError(f"{where}: PostgreSQL: "
                                 f"{_first_line(e, resolve_dsn(info['dsn'], where))}") from None
        con.register(info["view"], reader)
        try:
            yield
        finally:
            con.unregister(info["view"])
    finally:
        _close_quietly(pg)


# ---- outputs -----------------------------------------------------------------------------

def _short(name: str, suffix: str) -> str:
    return name[: _MAX_IDENT - len(suffix)] + suffix


def _table_exists(cur: Any, table: str) -> bool:
    cur.execute("SELECT to_regclass($1) IS NOT NULL", parameters=(qualified(table),))
    return bool(cur.fetchone()[0])


def _columns_of(cur: Any, table: str) -> dict[str, str]:
    """Column name -> PostgreSQL type (as ``format_type`` writes it) of an existing table."""
    cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                "attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                parameters=(qualified(table),))
    return {str(r[0]): str(r[1]) for r in cur.fetchall()}


_DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def _pg_type(duck_type: str) -> str | None:
    """The PostgreSQL type a column of DuckDB type ``duck_type`` should have, where the driver
    creates another one: DECIMAL(p,s) (the driver: numeric without precision), JSON and UUID
    (the driver: text). Lists of them too. None: the driver's type is right."""
    if duck_type.endswith("[]"):
        inner = _pg_type(duck_type[:-2])
        return inner + "[]" if inner else None
    m = _DECIMAL_RE.match(duck_type)
    if m:
        return f"numeric({m.group(1)},{m.group(2)})"
    return {"JSON": "jsonb", "UUID": "uuid"}.get(duck_type)


def _has_unique(cur: Any, table: str, key: list[str]) -> bool:
    """True when a unique index (or primary key) covers exactly the ``key`` columns."""
    cur.execute("SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
                "JOIN LATERAL unnest(i.indkey) AS k(n) ON true JOIN pg_attribute a ON "
                "a.attrelid = i.indrelid AND a.attnum = k.n WHERE i.indrelid = to_regclass($1) "
                "AND i.indisunique AND i.indpred IS NULL GROUP BY i.indexrelid",
                parameters=(qualified(table),))
    want = sorted(key)
    return any(sorted(r[0]) == want for r in cur.fetchall() if r[0] is not None)


def write_output(con: duckdb.DuckDBPyConnection, out: OutputSpec, file: str | None) -> int:
    """Write step ``out.step`` to its PostgreSQL table in one transaction; returns rows."""
    from builder.plan.sandbox import q

    assert out.postgres is not None
    spec = out.postgres
    table, mode, key = str(spec["table"]), str(spec["mode"]), list(spec["primary_key"])
    where = f"output '{out.step}' (postgres table '{table}')"
    dsn = resolve_dsn(spec["dsn"], where)
    described = con.execute(f"DESCRIBE {q(out.step)}").fetchall()
    columns = [str(r[0]) for r in described]
    retype = {str(r[0]): t for r in described if (t := _pg_type(str(r[1]))) is not None}
    missing_key = [k for k in key if k not in columns]
    if missing_key:
        raise ConfigError(f"{where}: primary_key column '{missing_key[0]}' is not a column of "
                          f"step '{out.step}'." + (did_you_mean(missing_key[0], columns) or ""),
                          file=file)
    reader = con.sql(f"SELECT * FROM {q(out.step)}").to_arrow_reader(BATCH_ROWS)
    pg = connect(spec["dsn"], where)
    schema, name = split_table(table)
    try:
        cur = pg.cursor()
        exists = _table_exists(cur, table)
        if mode == "replace" or not exists:
            rows = _load_new(cur, reader, schema, name, key, exists, retype)
        else:
            rows = _load_into(cur, reader, table, name, columns, mode, key, where)
        pg.commit()
    except (ConfigError, ExecutionError):
        _rollback(pg)
        raise
    except _driver().Error as e:
        _rollback(pg)
        raise ExecutionError(Problem(f"{where}: {_write_message(e, dsn)} The table is "
                                     "unchanged.", file=file, kind="execution")) from None
    finally:
        _close_quietly(pg)
    return rows


def check_outputs(outputs: list[OutputSpec]) -> None:
    """Refuse a run whose PostgreSQL outputs lack the driver or their variable, before it
    computes anything (so no other output is written first)."""
    for out in outputs:
        if out.postgres is not None:
            _driver()
            resolve_dsn(out.postgres["dsn"],
                        f"output '{out.step}' (postgres table '{out.postgres['table']}')")


def _rollback(pg: Any) -> None:
    try:
        pg.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone: the server rolled back itself
        pass


def _write_message(e: BaseException, dsn: str) -> str:
    text = _first_line(e, dsn)
    if "cannot affect row a second time" in text:
        return ("the step's rows repeat a primary_key value (merge writes one row per key). "
                "Deduplicate the step first.")
    if "could not create unique index" in text or "duplicate key" in text:
        return f"the primary_key is not unique in the step's rows: {text}"
    return f"PostgreSQL: {text}"


def _load_new(cur: Any, reader: Any, schema: str | None, name: str, key: list[str],
              exists: bool, retype: dict[str, str]) -> int:
    """Replace: load a new table beside the target, then drop the old one and rename.

    ``retype``: columns whose type the driver does not create as DuckDB had it (DECIMAL(p,s),
    JSON, UUID) get it in one rewrite of the new table, so a later read types them the same."""
    new = _short(name, "__dockyard_new")
    target_new = f"{qi(schema)}.{qi(new)}" if schema else qi(new)
    cur.execute(f"DROP TABLE IF EXISTS {target_new}")

    def alter(types: dict[str, str]) -> None:
        if types:
            cur.execute(f"ALTER TABLE {target_new} " + ", ".join(
                f"ALTER COLUMN {qi(c)} TYPE {t} USING {qi(c)}::{t}" for c, t in types.items()))

    # NUMERIC(p,s) is set on the empty table (the driver's binary numeric goes into it as is);
    # JSONB and UUID need the rows rewritten once after the load (their binary forms differ).
    numeric = {c: t for c, t in retype.items() if t.startswith("numeric")}
    if numeric:
        import pyarrow as pa

        cur.adbc_ingest(new, pa.Table.from_batches([], reader.schema), mode="create",
                        db_schema_name=schema)
        alter(numeric)
        rows = int(cur.adbc_ingest(new, reader, mode="append", db_schema_name=schema))
    else:
        rows = int(cur.adbc_ingest(new, reader, mode="create", db_schema_name=schema))
    alter({c: t for c, t in retype.items() if c not in numeric})
    if key:
        cur.execute(f"ALTER TABLE {target_new} ADD PRIMARY KEY ({', '.join(map(qi, key))})")
    if exists:
        old = f"{qi(schema)}.{qi(name)}" if schema else qi(name)
        cur.execute(f"DROP TABLE {old}")
    cur.execute(f"ALTER TABLE {target_new} RENAME TO {qi(name)}")
    return rows


def _load_into(cur: Any, reader: Any, table: str, name: str, columns: list[str], mode: str,
               key: list[str], where: str) -> int:
    """Append or merge: load a temporary table, then insert from it."""
    have = _columns_of(cur, table)
    extra = [c for c in columns if c not in have]
    if extra:
        raise ConfigError(f"{where}: column '{extra[0]}' of the step is not in the table. Add "
                          f"it to the table, drop it from the step, or use mode 'replace'."
                          + (did_you_mean(extra[0], have) or ""))
    if mode == "merge" and not _has_unique(cur, table, key):
        raise ConfigError(f"{where}: mode 'merge' needs a primary key or unique constraint on "
                          f"({', '.join(key)}) in PostgreSQL. Add one (ALTER TABLE ... ADD "
                          "PRIMARY KEY), or write once with mode 'replace' and this "
                          "primary_key.")
    tmp = _short(name, "__dockyard_load")
    rows = int(cur.adbc_ingest(tmp, reader, mode="create", temporary=True))
    cols = ", ".join(map(qi, columns))
    # Cast to the table's types: text does not turn into jsonb or uuid by itself.
    values = ", ".join(f"{qi(c)}::{have[c]}" for c in columns)
    sql = f"INSERT INTO {qualified(table)} ({cols}) SELECT {values} FROM {qi(tmp)}"
    if mode == "merge":
        rest = [c for c in columns if c not in key]
        action = "DO UPDATE SET " + ", ".join(f"{qi(c)} = EXCLUDED.{qi(c)}" for c in rest) \
            if rest else "DO NOTHING"
        sql += f" ON CONFLICT ({', '.join(map(qi, key))}) {action}"
    cur.execute(sql)
    cur.execute(f"DROP TABLE {qi(tmp)}")
    return rows


# ---- engines without PostgreSQL ----------------------------------------------------------

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
        from builder.errors import CompileError

        raise CompileError(problems)
