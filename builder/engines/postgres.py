"""PostgreSQL sources and outputs, through ADBC's PostgreSQL driver (Arrow in, Arrow out).

A source (typed at plan time, see :mod:`builder.plan.postgres`) is read by registering the
driver's Arrow stream (COPY in binary format on the server side) as the view ``<id>__postgres``
that its read query selects from, so the rows stream into a DuckDB table without a file in
between.

An output ``{postgres: {dsn: ..., table: ..., mode: replace|append|merge, primary_key: [...]}}``
streams the step's rows into PostgreSQL in one transaction: ``replace`` loads a new table and
swaps it in (drop, rename), ``append`` and ``merge`` load a temporary table and insert from it
(``merge``: ``INSERT ... ON CONFLICT (key) DO UPDATE``). A failed or killed run leaves the
target table as it was.

Connection strings come from the environment only (``dsn: {env: NAME}``); a DSN written in the
file may not carry a password, and messages never show one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from builder.errors import ConfigError, ExecutionError, Problem, did_you_mean
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
from builder.plan.runspec import OutputSpec
from builder.plan.sandbox import q

BATCH_ROWS = 100_000
_MAX_IDENT = 63  # PostgreSQL truncates longer identifiers


@contextmanager
def attached(con: duckdb.DuckDBPyConnection, info: dict[str, Any],
             source: str) -> Iterator[None]:
    """Stream a source's rows from PostgreSQL: its Arrow reader is registered as its view.

    The stream can be read once: the caller runs one statement that stores the rows.
    """
    # Heavy (100 ms), so loaded only by runs that read PostgreSQL: the duckdb package's Python
    # layer adds Arrow scans (register) to this connection's class.

    where = f"source '{source}'"
    pg = connect(info["dsn"], where)
    try:
        cur = pg.cursor()
        try:
            cur.execute(info["sql"])
            reader = cur.fetch_record_batch()
        except driver().Error as e:
            raise ExecutionError(f"{where}: PostgreSQL: "
                                 f"{first_line(e, resolve_dsn(info['dsn'], where))}") from None
        con.register(info["view"], reader)
        try:
            yield
        finally:
            con.unregister(info["view"])
    finally:
        close_quietly(pg)


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
    except driver().Error as e:
        _rollback(pg)
        raise ExecutionError(Problem(f"{where}: {_write_message(e, dsn)} The table is "
                                     "unchanged.", file=file, kind="execution")) from None
    finally:
        close_quietly(pg)
    return rows


def check_outputs(outputs: list[OutputSpec]) -> None:
    """Refuse a run whose PostgreSQL outputs lack the driver or their variable, before it
    computes anything (so no other output is written first)."""
    for out in outputs:
        if out.postgres is not None:
            driver()
            resolve_dsn(out.postgres["dsn"],
                        f"output '{out.step}' (postgres table '{out.postgres['table']}')")


def _rollback(pg: Any) -> None:
    try:
        pg.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone: the server rolled back itself
        pass


def _write_message(e: BaseException, dsn: str) -> str:
    text = first_line(e, dsn)
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
        import pyarrow as pa  # heavy (150 ms): only replaces with NUMERIC columns need it

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
