"""The warehouse: published staging tables and runtime facts (run history, registry).

Staging tables are Parquet files under ``<warehouse>/staging/NAME.parquet``, each replaced
atomically (temporary file, fsync, rename: readers see the old table or the new one, and a
failed or killed run leaves the old one). Engines other than DuckDB can read and write them,
and the DuckDB file ``<warehouse>/dockyard.duckdb`` exposes each as a view, next to the
registry (``staging_tables``: producer, upstream, docs, schema, rows, last success) and the run
history (``runs``). Only Dockyard's own code opens that file, never user SQL.

Output metadata drives the write: ``mode: replace | append | merge`` (merge = upsert on
``primary_key``) and ``history: scd2`` (versions with valid_from, valid_to, is_current; a key
that disappears stays current, as in dbt snapshots).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from builder.engines.base import OutputResult, RunResult
from builder.engines.duckdb import write_file
from builder.errors import ExecutionError, PipelineError, Problem, engine_message
from builder.locks import (
    WAIT_ENV,
    WaitTimeout,
    hold,
    table_lock_file,
    wait_bound,
    warehouse_lock_file,
)
from builder.pipeline.project import Project, find_project
from builder.plan.sandbox import CONFIG

if TYPE_CHECKING:
    from builder.pipeline.model import Output, Pipeline
    from builder.plan.compiler import Plan
    from builder.plan.runspec import PipelineRef

HISTORY_COLUMNS = ("valid_from", "valid_to", "is_current")
# DuckDB's error when another process holds the file; names the process where it can.
_LOCKED = re.compile(r"Could not set lock|Conflicting lock", re.I)
_PID = re.compile(r"\(PID (\d+)\)")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, pipeline VARCHAR, file VARCHAR, engine VARCHAR,
    started TIMESTAMP, ended TIMESTAMP, status VARCHAR, outputs JSON, error VARCHAR);
CREATE TABLE IF NOT EXISTS staging_tables (
    name VARCHAR PRIMARY KEY, path VARCHAR, pipeline VARCHAR, pipeline_file VARCHAR,
    step VARCHAR, description VARCHAR, owner VARCHAR, columns JSON, schema JSON,
    upstream JSON, mode VARCHAR, history VARCHAR, row_count BIGINT, last_success TIMESTAMP,
    last_run_id VARCHAR);
CREATE TABLE IF NOT EXISTS watermarks (
    pipeline VARCHAR, source VARCHAR, column_name VARCHAR, watermark VARCHAR,
    run_id VARCHAR, updated TIMESTAMP, PRIMARY KEY (pipeline, source));
"""


@contextmanager
def database(project: Project, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse DuckDB file for a ``with`` block, one process (and thread) at a time.

    DuckDB lets one process open the file for writing. Every opening holds the warehouse lock
    (:mod:`builder.locks`), so a run that finds another run recording waits for it instead of
    failing, and nothing opens the file outside it: two writers in one file corrupt it. The wait
    is bounded (``DOCKYARD_WAREHOUSE_WAIT``, 120 s): after it, an :class:`ExecutionError` names
    the file and the process holding it. A process outside Dockyard holding the file (the
    DuckDB CLI, say) is waited for within the same bound.
    """
    bound = wait_bound()
    deadline = time.monotonic() + bound  # one bound for both waits below
    what = f"the warehouse '{project.database}'"
    project.warehouse.mkdir(parents=True, exist_ok=True)
    with hold(warehouse_lock_file(project.warehouse), what, bound):
        con = _open(project, read_only and project.database.exists(), deadline, bound, what)
        try:
            yield con
        finally:
            con.close()


def _open(project: Project, read_only: bool, deadline: float, bound: float,
          what: str) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying while a process outside Dockyard's lock holds it."""
    while True:
        try:
            con = duckdb.connect(str(project.database), read_only=read_only, config=CONFIG)
            break
        except duckdb.IOException as e:
            if not _LOCKED.search(str(e)):
                raise
            if time.monotonic() >= deadline:
                pid = _PID.search(str(e))
                by = f" by another process (pid {pid.group(1)})" if pid else " by another process"
                raise WaitTimeout(f"{what} is in use{by} for more than {bound:g} s; try "
                                  f"again when it has finished, or set {WAIT_ENV} to wait "
                                  "longer (seconds).") from None
            time.sleep(0.1)
    try:
        con.execute("SET TimeZone='UTC'")
        if not read_only:
            con.execute(_SCHEMA)
    except BaseException:
        con.close()
        raise
    return con


# ---- writing staging tables --------------------------------------------------------------

def write_staging(con: duckdb.DuckDBPyConnection, plan: Plan, out: Output,
                  run_started: dt.datetime) -> OutputResult:
    """Write ``out.step``'s table into the staging table ``out.staging`` (atomic replace).

    One writer per table at a time (across processes): a second waits for the first, up to
    ``DOCKYARD_WAREHOUSE_WAIT`` seconds (see :mod:`builder.locks`).
    """
    assert out.staging is not None
    t0 = time.perf_counter()
    project = find_project(plan.pipeline.path)
    target = project.staging_table(out.staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The warehouse folder may be a link (to a bigger disk): that is the project's choice, so
    # the write goes to its real folder; only the table file itself must not be a link.
    target = Path(os.path.realpath(target.parent)) / target.name
    where = f"output '{out.step}' (staging table '{out.staging}')"
    # Serialised from reading the current table to renaming the new one over it: append and
    # merge read what is there, so two writers at once would each drop the other's rows.
    with hold(table_lock_file(project.warehouse, out.staging),
              f"staging table '{out.staging}' ('{target}')", file=plan.pipeline.file):
        try:
            rows = _write_table(con, plan, out, target, run_started, where)
        except duckdb.Error as e:
            raise ExecutionError(f"{where}: cannot write: {engine_message(e)}",
                                 file=plan.pipeline.file) from None
        except OSError as e:
            raise ExecutionError(f"{where}: cannot write: {e.strerror or e}.",
                                 file=plan.pipeline.file) from None
    return OutputResult(output=out.step, target=str(target), rows=rows,
                        seconds=time.perf_counter() - t0)


def _write_table(con: duckdb.DuckDBPyConnection, plan: Plan, out: Output, target: Path,
                 run_started: dt.datetime, where: str) -> int:
    """The new table (per mode and history) written over ``target``; its row count."""
    step = _table(out.step)
    cols = [r[0] for r in con.execute(exp.Describe(this=step).sql("duckdb")).fetchall()]
    if out.primary_key:
        missing = [k for k in out.primary_key if k not in cols]
        if missing:
            raise ExecutionError(f"{where}: primary_key column '{missing[0]}' is not in the "
                                 "result. Columns: " + ", ".join(cols) + ".",
                                 file=plan.pipeline.file)
        _check_unique(con, step, out.primary_key, where, plan)
    exists = target.exists()
    old = _parquet(target)
    query: exp.Query
    if out.history == "scd2":
        query = _scd2_query(step, old if exists else None, cols, out.primary_key, run_started)
    elif out.mode == "replace" or not exists:
        query = exp.select("*").from_(step)
    else:
        old_cols = [r[0] for r in con.execute(
            exp.Describe(this=exp.select("*").from_(old)).sql("duckdb")).fetchall()]
        if sorted(old_cols) != sorted(cols):
            raise ExecutionError(
                f"{where}: the result's columns ({', '.join(cols)}) differ from the "
                f"table's ({', '.join(old_cols)}); {out.mode} needs the same columns. Use "
                "mode: replace once to change the table's shape.", file=plan.pipeline.file)
        if out.mode == "append":
            query = exp.union(exp.select(*_cols(cols)).from_(old),
                              exp.select(*_cols(cols)).from_(step), distinct=False)
        else:  # merge: new rows replace old rows with the same key, others are kept
            match = _match(out.primary_key)
            query = exp.union(
                exp.select(*_cols(cols)).from_(exp.alias_(old, "o", table=True)).where(
                    exp.not_(_exists(exp.select("1").from_(exp.alias_(step.copy(), "s",
                                                                      table=True)).where(match)))),
                exp.select(*_cols(cols)).from_(step), distinct=False)
    return write_file(con, query.sql("duckdb"), str(target), "parquet")


# Warehouse SQL is built as sqlglot expressions: names become quoted identifiers and paths
# string literals, so a step, column or file name can hold any character.

def _table(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _parquet(path: Path | str) -> exp.Table:
    """``read_parquet('path')`` as a table (so it can take an alias)."""
    return exp.Table(this=exp.Anonymous(this="read_parquet",
                                        expressions=[exp.Literal.string(str(path))]))


def _cols(cols: list[str], table: str | None = None) -> list[exp.Column]:
    return [exp.column(c, table=table, quoted=True) for c in cols]


def _match(keys: list[str]) -> exp.Expr:
    """``s.k = o.k AND ...``: a row of the result (s) and of the table (o) with the same key."""
    return exp.and_(*(exp.EQ(this=exp.column(k, table="s", quoted=True),
                             expression=exp.column(k, table="o", quoted=True)) for k in keys))


def _exists(query: exp.Query) -> exp.Exists:
    return exp.Exists(this=query)


def _check_unique(con: duckdb.DuckDBPyConnection, step: exp.Table, keys: list[str], where: str,
                  plan: Plan) -> None:
    nulls = exp.or_(*(exp.column(k, quoted=True).is_(exp.null()) for k in keys))
    n_null = con.execute(exp.select("count(*)").from_(step).where(nulls).sql("duckdb")
                         ).fetchall()[0][0]
    if n_null:
        raise ExecutionError(f"{where}: {n_null} rows have a NULL primary key "
                             f"({', '.join(keys)}). Filter them out or fill them first.",
                             file=plan.pipeline.file)
    dup_sql = (exp.select(*_cols(keys), exp.alias_(exp.func("count", exp.Star()), "n"))
               .from_(step).group_by("ALL").having("count(*) > 1").limit(1))
    dup = con.execute(dup_sql.sql("duckdb")).fetchall()
    if dup:
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, dup[0][:-1]))
        raise ExecutionError(f"{where}: primary key ({', '.join(keys)}) is not unique, e.g. "
                             f"{shown} appears {dup[0][-1]} times. Dedupe before the output.",
                             file=plan.pipeline.file)


def _scd2_query(step: exp.Table, old: exp.Table | None, cols: list[str], keys: list[str],
                now: dt.datetime) -> exp.Query:
    """Versions after this run: unchanged rows kept, changed ones closed and re-opened."""
    if not keys:
        raise ExecutionError("history: scd2 needs 'primary_key' on the output.")
    clash = [c for c in cols if c in HISTORY_COLUMNS]
    if clash:
        raise ExecutionError(f"history: scd2 adds the column '{clash[0]}', which the result "
                             "already has. Rename it first.")
    ts = exp.cast(exp.Literal.string(now.strftime("%Y-%m-%d %H:%M:%S.%f")), "TIMESTAMP")

    def fresh() -> exp.Select:
        return exp.select(*_cols(cols), exp.alias_(ts.copy(), "valid_from"),
                          exp.alias_(exp.cast(exp.null(), "TIMESTAMP"), "valid_to"),
                          exp.alias_(exp.true(), "is_current"))

    if old is None:
        return fresh().from_(step)
    tracked = [c for c in cols if c not in keys]
    match = _match(keys)
    same = exp.and_(match.copy(), *(exp.NullSafeEQ(
        this=exp.column(c, table="s", quoted=True),
        expression=exp.column(c, table="o", quoted=True)) for c in tracked))
    changed = exp.column("changed")

    def result_rows(where: exp.Expr) -> exp.Exists:
        return _exists(exp.select("1").from_(exp.alias_(step.copy(), "s", table=True))
                       .where(where.copy()))

    # closed versions stay as they are
    closed = (exp.select(*_cols(cols), "valid_from", "valid_to", "is_current")
              .from_(old.copy()).where(exp.not_(exp.column("is_current"))))
    # current versions: unchanged or gone from the result stay current, changed ones close
    flagged = (exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("o")),
                          exp.alias_(exp.and_(result_rows(match),
                                              exp.not_(result_rows(same))), "changed"))
               .from_(exp.alias_(old.copy(), "o", table=True))
               .where(exp.column("is_current", table="o")))
    current = exp.select(*_cols(cols), "valid_from",
                         exp.Case().when(changed, ts.copy()).else_(exp.column("valid_to")),
                         exp.not_(changed.copy())).from_(flagged.subquery())
    # new keys and new values of changed keys open a version
    opened = fresh().from_(exp.alias_(step.copy(), "s", table=True)).where(exp.not_(_exists(
        exp.select("1").from_(exp.alias_(old.copy(), "o", table=True))
        .where(exp.and_(exp.column("is_current", table="o"), same.copy())))))
    return exp.union(exp.union(closed, current, distinct=False), opened, distinct=False)


# ---- the registry and run history --------------------------------------------------------

def _registry_records(plan: Plan, result: RunResult, run_id: str) -> list[list[Any]]:
    """Registry rows of the staging tables this run wrote: producer, upstream, docs, schema."""
    staged = [(o, r) for o in plan.pipeline.outputs.values() if o.staging
              for r in result.outputs if r.output == o.step and o.staging]
    if not staged:
        return []
    project = find_project(plan.pipeline.path)
    upstream = [_source_ref(plan, sid) for sid in plan.sources]
    records = []
    for out, res in staged:  # gathered before recording: upstream docs open the warehouse too
        assert out.staging is not None
        schema = [(c.name, c.type) for c in plan.schema(out.step) or ()]
        docs = dict(out.columns)
        for name, _type in schema:
            if name not in docs:
                doc = _carried_doc(project, plan, out.step, name)
                if doc:
                    docs[name] = doc
        if out.history == "scd2":
            schema += [("valid_from", "TIMESTAMP"), ("valid_to", "TIMESTAMP"),
                       ("is_current", "BOOLEAN")]
        records.append([out.staging, res.target, plan.pipeline.name, plan.pipeline.file,
                        out.step, out.description, out.owner, json.dumps(docs),
                        json.dumps(schema), json.dumps(upstream), out.mode, out.history,
                        res.rows, run_id])
    return records


def _register(db: duckdb.DuckDBPyConnection, records: list[list[Any]]) -> None:
    for rec in records:
        # The rows the table has now: another pipeline appending to it may have written after
        # this run (the last to register, which wrote last, leaves the right count).
        rows = _file_rows(db, Path(rec[1])) if rec[1] else None
        if rows is not None:
            rec[12] = rows
        db.execute("INSERT OR REPLACE INTO staging_tables VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)", rec)
        view = exp.Create(this=_table(str(rec[0])), kind="VIEW", replace=True,
                          expression=exp.select("*").from_(_parquet(str(rec[1]))))
        db.execute(view.sql("duckdb"))


def _carried_doc(project: Project, plan: Plan, step: str, column: str) -> str | None:
    """The upstream doc of a column that passes through unchanged from one source column."""
    # Here, not at the top: recording a run from the run cache never loads sqlglot.
    from builder.plan.lineage import column_origins

    try:
        origins = column_origins(plan, step, column)
    except (PipelineError, ValueError, KeyError):  # lineage is best effort for docs
        return None
    if len(origins) == 1 and origins[0].passthrough:
        return upstream_doc(project, origins[0].kind, origins[0].target, origins[0].column)
    return None


def _source_ref(plan: Plan, sid: str) -> dict[str, str]:
    src = plan.pipeline.sources[sid]
    if src.catalog:
        return {"source": sid, "kind": "catalog", "name": src.catalog}
    if src.staging:
        return {"source": sid, "kind": "staging", "name": src.staging}
    if src.postgres:
        return {"source": sid, "kind": "postgres", "name": str(src.postgres.get("table") or
                                                             "query")}
    return {"source": sid, "kind": "file", "name": plan.pipeline.resolve(src.path or "")}


def upstream_doc(project: Project, kind: str, target: str, column: str) -> str | None:
    """The documentation of a column of a catalog entry or staging table, if any."""
    if kind == "catalog":
        from builder.pipeline.catalog import load_catalog  # pydantic: not for every run

        found = load_catalog(project).get(target)
        return found[0].columns.get(column) if found else None
    if kind == "staging":
        info = staging_info(project, target)
        return (info or {}).get("columns", {}).get(column)
    return None


def record_run(pipeline: Pipeline | PipelineRef, plan: Plan | None, result: RunResult,
               error: BaseException | None, engine: str, started: dt.datetime) -> str:
    """Append the run to the history and, when it succeeded, register its staging outputs.

    Both in one transaction, under the warehouse lock: a run that finds the warehouse busy
    waits (see :func:`database`); it never drops the record. ``plan`` is needed only for
    staging outputs (a run from the run cache has none).
    """
    run_id = os.urandom(6).hex()  # 48 random bits, as uuid4().hex[:12] (uuid imports 5 ms)
    message = None
    if error is not None:
        probs: list[Problem] = getattr(error, "problems", [])
        message = probs[0].message if probs else (str(error).splitlines() or [""])[0] or \
            type(error).__name__
    outputs = {o.output: {"target": o.target, "rows": o.rows} for o in result.outputs}
    records = _registry_records(plan, result, run_id) if error is None and plan else []
    with database(find_project(pipeline.path)) as db:
        db.execute("BEGIN TRANSACTION")
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [run_id, pipeline.name, pipeline.file, engine, started,
                    dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                    "failed" if error is not None else "success", json.dumps(outputs), message])
        _register(db, records)
        if error is None and plan is not None:
            _save_watermarks(db, plan, run_id)
        db.execute("COMMIT")
    return run_id


def _save_watermarks(con: duckdb.DuckDBPyConnection, plan: Plan, run_id: str) -> None:
    """Store the watermark of each incremental source: only a successful run calls this."""
    for sp in plan.sources.values():
        inc = sp.incremental
        if inc is not None and inc.next_watermark is not None:
            con.execute("INSERT OR REPLACE INTO watermarks VALUES (?, ?, ?, ?, ?, now())",
                        [plan.pipeline.name, sp.id, inc.by, inc.next_watermark, run_id])


def read_watermark(project: Project, pipeline: str, source: str) -> tuple[str, str] | None:
    """(column, watermark) the last successful run of ``pipeline`` stored for ``source``."""
    if not project.database.exists():
        return None
    with database(project, read_only=True) as db:
        if not _has_table(db, "watermarks"):
            return None
        row = db.execute("SELECT column_name, watermark FROM watermarks WHERE pipeline = ? "
                         "AND source = ?", [pipeline, source]).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def run_history(project: Project, pipeline: str | None = None,
                limit: int = 50) -> list[dict[str, Any]]:
    if not project.database.exists():
        return []
    with database(project, read_only=True) as db:
        if not _has_table(db, "runs"):
            return []
        sql = "SELECT * FROM runs" + (" WHERE pipeline = ?" if pipeline else "") + \
            " ORDER BY started DESC LIMIT ?"
        cur = db.execute(sql, ([pipeline] if pipeline else []) + [limit])
        names = [d[0] for d in cur.description or []]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    for r in rows:
        r["outputs"] = json.loads(r["outputs"]) if r.get("outputs") else {}
    return rows


def staging_tables(project: Project) -> list[dict[str, Any]]:
    if not project.database.exists():
        return []
    with database(project, read_only=True) as db:
        if not _has_table(db, "staging_tables"):
            return []
        cur = db.execute("SELECT * FROM staging_tables ORDER BY name")
        names = [d[0] for d in cur.description or []]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    con = duckdb.connect(":memory:", config=CONFIG)
    try:
        for r in rows:
            for k in ("columns", "schema", "upstream"):
                r[k] = json.loads(r[k]) if r.get(k) else ({} if k == "columns" else [])
            # The table file is the truth: a run killed between replacing the file and
            # updating this registry must not leave a registry that disagrees with the data.
            actual = _file_rows(con, Path(r["path"])) if r.get("path") else None
            r["exists"] = actual is not None
            if actual is not None and actual != r["row_count"]:
                r["row_count"] = actual
                r["registry_behind"] = True
    finally:
        con.close()
    return rows


def _file_rows(con: duckdb.DuckDBPyConnection, path: Path) -> int | None:
    """Row count from a Parquet file's footer (no data read); None when it is missing."""
    if not path.exists():
        return None
    try:
        return int(con.execute("SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)",
                               [str(path)]).fetchall()[0][0])
    except duckdb.Error:
        return None


def staging_info(project: Project, name: str) -> dict[str, Any] | None:
    return next((t for t in staging_tables(project) if t["name"] == name), None)


def _has_table(db: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                           [name]).fetchall()[0][0])


class WarehouseStore:
    """The warehouse as a run sees it (:class:`builder.runner.run.RunStore`): watermarks for
    planning, staging tables for the engine's staging outputs, the run history. The callers
    (the CLI, the app, :mod:`builder.api`) pass one to the runner."""

    def read_watermark(self, project: Project, pipeline: str,
                       source: str) -> tuple[str, str] | None:
        return read_watermark(project, pipeline, source)

    def write_staging(self, con: duckdb.DuckDBPyConnection, plan: Plan, output: Output,
                      started: dt.datetime) -> OutputResult:
        return write_staging(con, plan, output, started)

    def record_run(self, pipeline: Pipeline | PipelineRef, plan: Plan | None, result: RunResult,
                   error: BaseException | None, engine: str, started: dt.datetime) -> str:
        # A database prestarted by 'dockyard run' hosts the file (see database).
        return record_run(pipeline, plan, result, error, engine, started)
