"""The Spark engine: the same plan, run on Apache Spark, with the same rows as DuckDB.

Parity comes first; where a step cannot mean the same on Spark, the run is refused before
anything starts (see :mod:`builder.plan.portability`). How the plan maps onto Spark:

* **Sources** are read with Spark's readers (local paths, globs and any URI Spark understands,
  e.g. ``s3a://`` or ``hdfs://``). CSV and JSON are read with an explicit schema: the one DuckDB
  inferred for the plan (Spark's own inference gives other types), with DuckDB's sniffed
  delimiter, header and date formats for local CSV files. Parquet is read as is.
* **Steps** are rendered as Spark SQL by sqlglot from the plan's expression trees (SQL steps are
  DuckDB SQL, transpiled) and registered as temporary views. Every node is conformed to the
  plan's propagated schema (DuckDB's column names and types) so outputs have the same shape on
  both engines. All views are defined (analysed) before any job runs, so a step Spark cannot
  analyse fails the run before anything is computed or written.
* Steps read by several consumers, or with data checks, are persisted (memory and disk) and
  counted; their row counts and timings are exact. Other steps stay lazy and are computed as
  part of their consumer: their row count is reported as unknown (``None``), except for output
  steps, whose count is read back from the written files.
* **Outputs** (parquet, csv, json) are written by Spark to a temporary directory next to the
  target and renamed into place when complete. A Spark output is a *directory* of part files
  (``daily.parquet/part-*.parquet``), not a single file; DuckDB reads it as
  ``daily.parquet/*.parquet``. Staging outputs are written by Spark as parquet, then published
  by the warehouse's DuckDB writer (same modes, merge and history semantics as a DuckDB run).
* One SparkSession per process (``getOrCreate``); each run uses ``newSession()`` (own temporary
  views and SQL settings: session time zone UTC, ANSI mode on). ``close()`` leaves the shared
  session running unless the engine was made with ``stop_session=True``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sqlglot import exp

from builder import fsio
from builder.engines.base import (
    CheckResult,
    Engine,
    EngineUnavailable,
    OutputResult,
    PreviewResult,
    ProgressFn,
    RunResult,
    StepStat,
)
from builder.engines.duckdb import CHECK_SAMPLE_ROWS, TMP_MARK
from builder.errors import ExecutionError, Problem
from builder.plan.compiler import Plan
from builder.plan.portability import check_portable, input_schemas, render
from builder.plan.targets import refuse_unsafe_target, write_marker
from builder.plan.types import ColumnInfo
from patterns.base import Check

if TYPE_CHECKING:
    from builder.pipeline.model import Output

OLD_MARK = ".dockyard-old-"
# Settings every Dockyard run needs for DuckDB parity (set on each run's own session).
PARITY_CONF = {
    "spark.sql.session.timeZone": "UTC",   # DuckDB engines run in UTC
    "spark.sql.ansi.enabled": "true",      # errors, not NULLs, on bad casts and overflow
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",  # TIMESTAMP stays without zone
}
_VIEW_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SESSION_LOCK = threading.Lock()

# DuckDB reader options with a Spark equivalent (csv); others are refused, never ignored.
_CSV_OPTIONS = {"delim": "sep", "sep": "sep", "delimiter": "sep", "header": "header",
                "quote": "quote", "escape": "escape", "nullstr": "nullValue",
                "null_padding": None, "comment": "comment", "encoding": "encoding",
                "new_line": "lineSep", "dateformat": "dateFormat",
                "timestampformat": "timestampNTZFormat"}
# Options that only steer DuckDB's inference: the explicit schema already carries their effect.
_INFERENCE_ONLY = {"auto_detect", "sample_size", "all_varchar", "columns", "types", "dtypes",
                   "column_types", "auto_type_candidates", "format", "records",
                   "hive_partitioning", "union_by_name", "filename", "binary_as_string",
                   "maximum_object_size", "null_padding"}
# strftime -> Java DateTimeFormatter (only what DuckDB's sniffer reports).
_STRFTIME = {"%Y": "yyyy", "%y": "yy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm",
             "%S": "ss", "%f": "SSSSSS", "%b": "MMM", "%B": "MMMM", "%I": "hh", "%p": "a",
             "%j": "DDD", "%z": "XX", "%-m": "M", "%-d": "d"}


class SparkEngineError(ExecutionError):
    """A run that failed on Spark (the message names the node and Spark's reason)."""


# ---- types -------------------------------------------------------------------------------

_SIMPLE_TYPES: dict[Any, T.DataType] = {}


def _simple_types() -> dict[Any, T.DataType]:
    if not _SIMPLE_TYPES:
        t = exp.DataType.Type
        pairs: list[tuple[list[str], T.DataType]] = [
            (["BOOLEAN", "BIT"], T.BooleanType()),
            (["TINYINT"], T.ByteType()),
            (["SMALLINT", "UTINYINT"], T.ShortType()),
            (["INT", "USMALLINT"], T.IntegerType()),
            (["BIGINT", "UINT"], T.LongType()),
            (["UBIGINT"], T.DecimalType(20, 0)),
            (["INT128", "UINT128", "UINT256", "INT256"], T.DecimalType(38, 0)),
            (["FLOAT"], T.FloatType()),
            (["DOUBLE"], T.DoubleType()),
            (["VARCHAR", "TEXT", "CHAR", "NVARCHAR", "NCHAR", "UUID", "JSON", "ENUM", "NAME"],
             T.StringType()),
            (["VARBINARY", "BINARY", "BLOB"], T.BinaryType()),
            (["DATE"], T.DateType()),
            (["TIMESTAMPNTZ", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS",
              "DATETIME"], T.TimestampNTZType()),
            (["TIMESTAMPTZ", "TIMESTAMPLTZ"], T.TimestampType()),
        ]
        for names, st in pairs:
            for n in names:
                if hasattr(t, n):
                    _SIMPLE_TYPES[getattr(t, n)] = st
    return _SIMPLE_TYPES


def spark_type(duckdb_type: str | exp.DataType) -> T.DataType | None:
    """The Spark type holding the same values as a DuckDB type, or None when there is none.

    >>> spark_type("TIMESTAMP")
    TimestampNTZType()
    >>> spark_type("HUGEINT")
    DecimalType(38,0)
    """
    dt = duckdb_type if isinstance(duckdb_type, exp.DataType) else \
        exp.DataType.build(duckdb_type, dialect="duckdb")
    t = exp.DataType.Type
    kind = dt.this
    if kind == t.DECIMAL:
        args = [int(e.this.this) if isinstance(e.this, exp.Literal) else int(e.name)
                for e in dt.expressions if isinstance(e, exp.DataTypeParam)]
        precision, scale = (args + [18, 3][len(args):])[:2] if args else (18, 3)
        return T.DecimalType(precision, scale)
    if kind == t.ARRAY:
        inner = spark_type(dt.expressions[0]) if dt.expressions else None
        return T.ArrayType(inner) if inner is not None else None
    if kind == t.MAP:
        if len(dt.expressions) != 2:
            return None
        k, v = spark_type(dt.expressions[0]), spark_type(dt.expressions[1])
        return T.MapType(k, v) if k is not None and v is not None else None
    if kind == t.STRUCT:
        fields = []
        for f in dt.expressions:
            if not isinstance(f, exp.ColumnDef) or f.args.get("kind") is None:
                return None
            ft = spark_type(f.args["kind"])
            if ft is None:
                return None
            fields.append(T.StructField(f.name, ft, True))
        return T.StructType(fields)
    return _simple_types().get(kind)


def spark_schema(columns: tuple[ColumnInfo, ...], what: str) -> T.StructType:
    """A Spark schema for DuckDB-typed columns; refuses types Spark cannot hold."""
    fields = []
    for c in columns:
        st = spark_type(c.type)
        if st is None:
            raise SparkEngineError(f"{what}: column '{c.name}' has the DuckDB type '{c.type}', "
                                   "which Spark cannot hold with the same values. Cast it to a "
                                   "plain type (VARCHAR, BIGINT, DOUBLE, TIMESTAMP, ...) first.")
        fields.append(T.StructField(c.name, st, True))
    return T.StructType(fields)


def _same_type(a: T.DataType, b: T.DataType) -> bool:
    return a.simpleString() == b.simpleString()


def _bq(name: str) -> str:
    """A backquoted Spark identifier."""
    return "`" + name.replace("`", "``") + "`"


# ---- reading sources ---------------------------------------------------------------------

@dataclass
class ReadSpec:
    """How Spark reads one source: format, paths and reader options."""

    fmt: str
    paths: list[str]
    options: dict[str, str]


def _literal_value(e: exp.Expr) -> Any:
    if isinstance(e, exp.Literal):
        return e.this if e.is_string else float(e.this) if "." in e.this else int(e.this)
    if isinstance(e, exp.Boolean):
        return bool(e.this)
    if isinstance(e, exp.Array):
        return [_literal_value(x) for x in e.expressions]
    if isinstance(e, exp.Null):
        return None
    return e.sql("duckdb")


def read_spec(plan: Plan, sid: str) -> ReadSpec:
    """Format, paths and Spark reader options of a source, from its DuckDB read query."""
    sp = plan.sources[sid]
    fmt: str | None = None
    paths: list[str] = []
    duck_options: dict[str, Any] = {}
    from_ = sp.read.args.get("from_") if sp.read is not None else None
    table = from_.this if from_ is not None else None
    if isinstance(table, exp.Table) and isinstance(table.this, exp.Anonymous):
        fn = str(table.this.this).lower()
        fmt = {"read_parquet": "parquet", "parquet_scan": "parquet", "read_csv": "csv",
               "read_csv_auto": "csv", "read_json": "json", "read_json_auto": "json",
               "read_ndjson": "json"}.get(fn)
        args = list(table.this.expressions)
        if args and fmt:
            first = _literal_value(args[0])
            paths = [str(p) for p in (first if isinstance(first, list) else [first])]
            for a in args[1:]:
                if isinstance(a, (exp.PropertyEQ, exp.EQ)):
                    duck_options[a.this.name.lower()] = _literal_value(a.expression)
    if not fmt or not paths:
        src = sp.source
        if src.path is None:
            raise SparkEngineError(f"source '{sid}': Spark cannot read it (its read query is "
                                   f"not a file read: {sp.read.sql('duckdb') if sp.read else '-'}).",
                                   file=plan.pipeline.file)
        fmt = src.resolved_format or "parquet"
        paths = [plan.pipeline.resolve(src.path)]
        duck_options = {str(k).lower(): v for k, v in src.options.items()}
    expanded: list[str] = []
    for p in paths:
        if "://" not in p and any(c in p for c in "*?["):
            # Local globs are expanded here with DuckDB's meaning ('**' is recursive).
            expanded.extend(sorted(glob.glob(p, recursive=True)))
        else:
            expanded.append(p)
    options: dict[str, str] = {}
    if fmt == "csv":
        options = _csv_options(plan, sid, expanded, duck_options)
    elif fmt == "json":
        options = _json_options(plan, sid, expanded, duck_options)
    else:
        _refuse_options(plan, sid, duck_options, {})
    return ReadSpec(fmt=fmt, paths=expanded, options=options)


def _refuse_options(plan: Plan, sid: str, duck: dict[str, Any], mapping: dict[str, Any]) -> None:
    for k in duck:
        if k not in mapping and k not in _INFERENCE_ONLY:
            raise SparkEngineError(f"source '{sid}': the DuckDB reader option '{k}' has no Spark "
                                   "equivalent, so the data could be read differently. Remove "
                                   "it or convert the file to parquet.", file=plan.pipeline.file)


def _strftime_to_java(fmt: str) -> str | None:
    out = ""
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            spec = fmt[i:i + 3] if fmt[i + 1:i + 2] == "-" else fmt[i:i + 2]
            if spec not in _STRFTIME:
                return None
            out += _STRFTIME[spec]
            i += len(spec)
        elif fmt[i].isalpha():
            out += f"'{fmt[i]}'"
            i += 1
        else:
            out += fmt[i]
            i += 1
    return out


def _sniff(path: str) -> dict[str, Any]:
    """DuckDB's CSV sniffer result for a local file (delimiter, header, formats...)."""
    from builder.engines.duckdb import connect
    from builder.plan.sandbox import sandbox_dirs_for_paths

    con = connect(sandbox_dirs_for_paths([path]))
    try:
        cur = con.execute("SELECT * FROM sniff_csv(?)", [path])
        names = [d[0] for d in cur.description or []]
        rows = cur.fetchall()
        return dict(zip(names, rows[0])) if rows else {}
    finally:
        con.close()


def _csv_options(plan: Plan, sid: str, paths: list[str], duck: dict[str, Any]) -> dict[str, str]:
    _refuse_options(plan, sid, duck, _CSV_OPTIONS)
    opts: dict[str, str] = {"header": "true", "mode": "FAILFAST"}
    local = [p for p in paths if "://" not in p]
    if local and duck.get("auto_detect") is not False:
        try:
            sniffed = _sniff(local[0])
        except Exception:  # noqa: BLE001 - the sniffer is a hint; explicit options still apply
            sniffed = {}

        def given(v: Any) -> bool:
            return v not in (None, "", "(empty)")

        if given(sniffed.get("Delimiter")):
            opts["sep"] = str(sniffed["Delimiter"])
        if given(sniffed.get("Quote")):
            opts["quote"] = str(sniffed["Quote"])
        if given(sniffed.get("Escape")):
            opts["escape"] = str(sniffed["Escape"])
        if given(sniffed.get("Comment")):
            opts["comment"] = str(sniffed["Comment"])
        if sniffed.get("HasHeader") is not None:
            opts["header"] = "true" if sniffed["HasHeader"] else "false"
        if sniffed.get("SkipRows"):
            raise SparkEngineError(f"source '{sid}': DuckDB skips {sniffed['SkipRows']} leading "
                                   "line(s) of this CSV file, which Spark's reader cannot do. "
                                   "Remove them from the file.", file=plan.pipeline.file)
        for key, spark_key in (("DateFormat", "dateFormat"),
                               ("TimestampFormat", "timestampNTZFormat")):
            if given(sniffed.get(key)):
                java = _strftime_to_java(str(sniffed[key]))
                if java:
                    opts[spark_key] = java
    for k, v in duck.items():
        target = _CSV_OPTIONS.get(k)
        if target is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        if target in ("dateFormat", "timestampNTZFormat"):
            java = _strftime_to_java(str(v))
            if java is None:
                raise SparkEngineError(f"source '{sid}': cannot translate the {k} '{v}' for "
                                       "Spark.", file=plan.pipeline.file)
            v = java
        opts[target] = str(v)
    if "timestampNTZFormat" in opts:
        opts.setdefault("timestampFormat", opts["timestampNTZFormat"])
    return opts


def _json_options(plan: Plan, sid: str, paths: list[str], duck: dict[str, Any]) -> dict[str, str]:
    _refuse_options(plan, sid, duck, {})
    opts = {"mode": "FAILFAST"}
    fmt = str(duck.get("format", "auto")).lower()
    multi = fmt == "array"
    if fmt == "auto":
        for p in paths[:1]:
            if "://" not in p:
                with open(p, "rb") as f:
                    head = f.read(4096).lstrip()
                multi = head.startswith(b"[")
    if multi:
        opts["multiLine"] = "true"
    return opts


# ---- the engine --------------------------------------------------------------------------

def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> SparkSession:
    """The process's shared SparkSession (created on first use).

    ``master`` None means the master spark-submit (or spark-defaults) configured, else
    ``local[2]``. ``conf`` entries go to the session builder (static settings only take effect
    when the session is created).
    """
    from pyspark import SparkConf

    with _SESSION_LOCK:
        active = SparkSession.getActiveSession()
        builder = SparkSession.builder.appName("dockyard")
        if master:
            builder = builder.master(master)
        elif active is None and not SparkConf().contains("spark.master"):
            builder = builder.master("local[2]")
        # Spark's default metastore folder is the working directory: keep it out of projects.
        local = {"spark.sql.warehouse.dir": os.path.join(tempfile.gettempdir(),
                                                         "dockyard-spark-warehouse")}
        for k, v in {**local, **PARITY_CONF, **(conf or {})}.items():
            builder = builder.config(k, v)
        try:
            return builder.getOrCreate()
        except Exception as e:  # noqa: BLE001 - Java missing, bad master, ...
            raise EngineUnavailable(f"cannot start Spark ({_first_line(e)}). The Spark engine "
                                    "needs Java 17+ and pip install 'dockyard[spark]'.") from None


_USER_RAISED = "[USER_RAISED_EXCEPTION]"


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "getMessage", lambda: None)() or e) if isinstance(
        e, PySparkException) else str(e)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    first = lines[0] if lines else type(e).__name__
    first = re.sub(r"\s*SQLSTATE: \w+\s*$", "", first)
    return first.rstrip(".") + "."


def view_name(node: str) -> str:
    """The temporary view holding a node: its id, or a safe name for ids like 'x.rejected'."""
    if _VIEW_RE.match(node):
        return node
    digest = hashlib.sha1(node.encode()).hexdigest()[:8]
    return "_dy_" + re.sub(r"\W", "_", node) + "_" + digest


def _rename_tables(query: exp.Query, names: dict[str, str]) -> exp.Query:
    """Point table references at the views holding them (only where a name differs)."""
    if not names:
        return query

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in names:
            new = node.copy()
            new.set("this", exp.to_identifier(names[node.name], quoted=True))
            return new
        return node

    out = query.transform(swap)
    assert isinstance(out, exp.Query)
    return out


class SparkEngine(Engine):
    """Runs plans on Spark with DuckDB's results (see the module docstring).

    Args:
        master: Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``, ...); None
            uses the one spark-submit configured, else ``local[2]``.
        conf: Spark settings for the session builder, e.g. ``{"spark.executor.memory": "4g"}``.
        stop_session: stop the shared SparkSession on :meth:`close`.
        record: keep run history in the project's warehouse, as DuckDB runs do.
    """

    name = "spark"

    def __init__(self, master: str | None = None, conf: dict[str, str] | None = None, *,
                 stop_session: bool = False, record: bool = True) -> None:
        self.master = master
        self.conf = dict(conf or {})
        self.stop_session = stop_session
        self.record = record
        self._spark: SparkSession | None = None

    # ---- session -------------------------------------------------------------------------
    def session(self) -> SparkSession:
        """The shared SparkSession (started on first use)."""
        if self._spark is None:
            self._spark = spark_session(self.master, self.conf)
        return self._spark

    def _run_session(self) -> SparkSession:
        """A session of its own for one run: separate temp views and SQL settings."""
        s = self.session().newSession()
        for k, v in {**{k: v for k, v in self.conf.items() if k.startswith("spark.sql.")},
                     **PARITY_CONF}.items():
            s.conf.set(k, v)
        return s

    def close(self) -> None:
        if self.stop_session and self._spark is not None:
            self._spark.stop()
        self._spark = None

    # ---- checks before anything runs -----------------------------------------------------
    def check(self, plan: Plan, targets: list[str]) -> None:
        """Refuse what Spark cannot run with DuckDB's results (raises CompileError)."""
        plan.raise_for_errors()
        from builder.engines.postgres import refuse_on

        refuse_on(plan, targets, "spark")
        check_portable(plan, targets, "spark")

    # ---- defining the views --------------------------------------------------------------
    def _define(self, spark: SparkSession, plan: Plan, nodes: list[str]) -> dict[str, DataFrame]:
        """Register every node as a temp view (analysis only, nothing is computed)."""
        names = {n: view_name(n) for n in plan.graph.nodes if view_name(n) != n}
        frames: dict[str, DataFrame] = {}
        for node in nodes:
            what = "source" if node in plan.sources else "step"
            try:
                ctes = plan.node_ctes(node)
                first = 0
                if node in plan.sources:
                    raw_name = ctes[0][0]
                    df = self._read(spark, plan, node, stages=len(ctes) > 1)
                    df.createOrReplaceTempView(view_name(raw_name))
                    frames[raw_name] = df
                    first = 1
                for i, (name, query) in enumerate(ctes[first:], start=first):
                    sql = render(_rename_tables(query, names), "spark",
                                 inputs=input_schemas(plan, node))
                    df = spark.sql(sql)
                    if i == len(ctes) - 1:
                        df = self._conform(df, plan.schema(node), f"{what} '{node}'", plan)
                    df.createOrReplaceTempView(view_name(name))
                    frames[name] = df
            except (PySparkException, SparkEngineError) as e:
                if isinstance(e, SparkEngineError):
                    raise
                raise SparkEngineError(Problem(
                    f"{what} '{node}' cannot run on Spark: {_first_line(e)}",
                    file=plan.pipeline.file, step=node if what == "step" else None,
                    kind="execution")) from None
        return frames

    def _read(self, spark: SparkSession, plan: Plan, sid: str, stages: bool) -> DataFrame:
        spec = read_spec(plan, sid)
        if not spec.paths:
            raise SparkEngineError(f"source '{sid}': no file matches "
                                   f"'{plan.sources[sid].source.path}'.", file=plan.pipeline.file)
        raw_cols = self._raw_schema(plan, sid) if stages else plan.schema(sid)
        reader = spark.read.format(spec.fmt).options(**spec.options)
        if spec.fmt in ("csv", "json"):
            if raw_cols is None:
                raise SparkEngineError(f"source '{sid}': its schema is unknown.",
                                       file=plan.pipeline.file)
            reader = reader.schema(spark_schema(raw_cols, f"source '{sid}'"))
        df = reader.load(spec.paths)
        return self._conform(df, raw_cols, f"source '{sid}'", plan)

    def _raw_schema(self, plan: Plan, sid: str) -> tuple[ColumnInfo, ...] | None:
        """Schema of a source's raw read (before catalog stages), as DuckDB sees it."""
        from builder.plan.sandbox import file_identity, sandbox_dirs_for_paths
        from builder.plan.schema import describe_source

        sp = plan.sources[sid]
        if sp.read is None:
            return None
        sql = sp.read.sql(dialect="duckdb")
        paths = read_spec(plan, sid).paths
        key = ("raw", sql, tuple(file_identity(p) for p in paths))
        return describe_source(sql, key, sandbox_dirs_for_paths(paths))

    def _conform(self, df: DataFrame, columns: tuple[ColumnInfo, ...] | None, what: str,
                 plan: Plan) -> DataFrame:
        """DuckDB's column names and types (the plan's propagated schema) on a Spark result."""
        if columns is None:
            return df
        if len(df.columns) != len(columns):
            raise SparkEngineError(f"{what}: Spark produced {len(df.columns)} columns "
                                   f"({', '.join(df.columns)}) where DuckDB produces "
                                   f"{len(columns)} ({', '.join(c.name for c in columns)}).",
                                   file=plan.pipeline.file)
        target = spark_schema(columns, what)
        renamed = [f.name for f in df.schema.fields] != [c.name for c in columns]
        casts = [not _same_type(f.dataType, t.dataType)
                 for f, t in zip(df.schema.fields, target.fields)]
        if not renamed and not any(casts):
            return df
        df = df.toDF(*[c.name for c in columns])
        return df.select(*[F.col(_bq(t.name)).cast(t.dataType).alias(t.name) if cast
                           else F.col(_bq(t.name)) for t, cast in zip(target.fields, casts)])

    # ---- running -------------------------------------------------------------------------
    def run(self, plan: Plan, outputs: dict[str, Output] | None = None,
            progress: ProgressFn | None = None) -> RunResult:
        from builder.runlock import run_lock

        with run_lock(plan.pipeline):  # one run of a pipeline at a time, on any engine
            return self._run(plan, outputs, progress)

    def _run(self, plan: Plan, outputs: dict[str, Output] | None,
             progress: ProgressFn | None) -> RunResult:
        outputs = plan.pipeline.outputs if outputs is None else outputs
        self.check(plan, list(outputs))  # refuse before Spark starts
        needed = plan.needed_for(list(outputs))
        for sid in needed:
            if sid in plan.sources:
                read_spec(plan, sid)  # unsupported reader options are refused up front
        import datetime as dt

        started_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        result = RunResult()
        started = time.perf_counter()
        error: BaseException | None = None
        persisted: list[DataFrame] = []
        spark = self._run_session()
        group = f"dockyard-{uuid.uuid4().hex[:8]}"
        spark.sparkContext.setJobGroup(group, f"dockyard run {plan.pipeline.name}", True)
        try:
            frames = self._define(spark, plan, needed)
            refs = self._references(plan, needed, outputs)
            stats: dict[str, StepStat] = {}
            for node in needed:
                is_step = node not in plan.sources
                if is_step and progress:
                    progress("start", node, None)
                stat = self._compute(plan, node, frames[node], refs.get(node, 0), result,
                                     persisted)
                if is_step:
                    stats[node] = stat
                    result.steps.append(stat)
                    if progress:
                        progress("done", node, stat)
            for oid, out in outputs.items():
                if progress:
                    progress("write", oid, None)
                res = self.write_output(spark, plan, out, frames[out.step], started_at)
                result.outputs.append(res)
                st = stats.get(out.step)
                if st is not None and st.rows is None and out.path:
                    st.rows = res.rows
        except PySparkException as e:
            error = SparkEngineError(Problem(f"Spark failed: {_first_line(e)}",
                                             file=plan.pipeline.file, kind="execution"))
            raise error from None
        except BaseException as e:
            error = e
            if isinstance(e, KeyboardInterrupt):
                spark.sparkContext.cancelJobGroup(group)
            raise
        finally:
            result.seconds = time.perf_counter() - started
            for df in persisted:
                df.unpersist()
            if self.record:
                from builder.engines.duckdb import record_run_safely

                record_run_safely(plan.pipeline, plan, result, error, self.name, started_at)
        return result

    def _references(self, plan: Plan, needed: list[str],
                    outputs: dict[str, Output]) -> dict[str, int]:
        """How many times each node is read (by other nodes' queries and by outputs)."""
        refs = plan.reads(needed)
        for out in outputs.values():
            refs[out.step] = refs.get(out.step, 0) + 1
        return refs

    def _compute(self, plan: Plan, node: str, df: DataFrame, refs: int, result: RunResult,
                 persisted: list[DataFrame]) -> StepStat:
        t0 = time.perf_counter()
        checks = plan.checks(node)
        what = "source" if node in plan.sources else "step"
        rows: int | None = None
        try:
            if what == "step" and (refs > 1 or checks):
                from pyspark import StorageLevel

                df.persist(StorageLevel.MEMORY_AND_DISK)
                persisted.append(df)
                rows = df.count()
            for check in checks:
                res = self._run_check(df.sparkSession, plan, node, check)
                result.checks.append(res)
                if res.failed_rows and check.on_fail == "error":
                    from builder.engines.duckdb import check_failure_message

                    raise SparkEngineError(Problem(check_failure_message(res, what),
                                                   file=plan.pipeline.file, step=node,
                                                   kind="execution"))
        except PySparkException as e:
            raise SparkEngineError(Problem(f"{what} '{node}' failed: {_first_line(e)}",
                                           file=plan.pipeline.file,
                                           step=node if what == "step" else None,
                                           kind="execution")) from None
        return StepStat(node=node, rows=rows, seconds=time.perf_counter() - t0)

    def _run_check(self, spark: SparkSession, plan: Plan, node: str, check: Check) -> CheckResult:
        names = {n: view_name(n) for n in plan.graph.nodes if view_name(n) != n}
        failing = spark.sql(render(_rename_tables(check.failing, names), "spark",
                                   inputs=input_schemas(plan, node)))
        n = failing.count()
        sample: list[dict[str, Any]] = []
        if n:
            sample = [r.asDict() for r in failing.limit(CHECK_SAMPLE_ROWS).collect()]
        return CheckResult(step=node, check=check.name, on_fail=check.on_fail, failed_rows=int(n),
                           sample=sample)

    # ---- outputs -------------------------------------------------------------------------
    def write_output(self, spark: SparkSession, plan: Plan, out: Output, df: DataFrame,
                     started_at: Any = None) -> OutputResult:
        """Write one output atomically (temp directory, then rename); returns its row count."""
        t0 = time.perf_counter()
        if out.staging:
            return self._write_staging(plan, out, df, started_at, t0)
        assert out.path is not None
        target = plan.pipeline.resolve(out.path)
        fmt = out.resolved_format or "parquet"
        try:
            with _atomic_dir(spark, target, fmt) as tmp:
                _writer(df, fmt).save(tmp)
            # Counted once in place: Spark's readers skip folders named like the temp one.
            rows = _count_written(spark, target, fmt, df)
        except PySparkException as e:
            first = _first_line(e)
            if first.startswith(_USER_RAISED):
                # error() in a step (e.g. scd2's repeated key) fails while Spark writes.
                raise SparkEngineError(Problem(
                    f"step '{out.step}' failed: {first[len(_USER_RAISED):].strip()}",
                    file=plan.pipeline.file, step=out.step, kind="execution")) from None
            raise SparkEngineError(f"output '{out.step}': cannot write '{out.path}': "
                                   f"{first}", file=plan.pipeline.file) from None
        except OSError as e:
            raise SparkEngineError(f"output '{out.step}': cannot write '{out.path}': "
                                   f"{e.strerror or e}.", file=plan.pipeline.file) from None
        return OutputResult(output=out.step, target=target, rows=rows,
                            seconds=time.perf_counter() - t0)

    def _write_staging(self, plan: Plan, out: Output, df: DataFrame, started_at: Any,
                       t0: float) -> OutputResult:
        """Spark writes parquet parts; the warehouse's DuckDB writer publishes the table."""
        import datetime as dt

        from builder.engines.duckdb import connect, q
        from builder.pipeline.project import find_project
        from builder.warehouse.store import write_staging

        staging = find_project(plan.pipeline.path).staging_dir
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / f".{out.staging}.spark{TMP_MARK}{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _writer(df, "parquet").save(str(tmp))
            con = connect([str(staging.resolve()) + os.sep])
            try:
                parts = str(tmp / "*.parquet").replace("'", "''")
                con.execute(f"CREATE TEMP VIEW {q(out.step)} AS SELECT * FROM "
                            f"read_parquet('{parts}')")
                res = write_staging(con, plan, out, started_at or
                                    dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
            finally:
                con.close()
        except PySparkException as e:
            raise SparkEngineError(f"output '{out.step}' (staging table '{out.staging}'): "
                                   f"cannot write: {_first_line(e)}",
                                   file=plan.pipeline.file) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        res.seconds = time.perf_counter() - t0
        return res

    # ---- previews ------------------------------------------------------------------------
    def frame(self, plan: Plan, node: str) -> DataFrame:
        """A lazy DataFrame computing ``node`` (on its own session; nothing is written)."""
        self.check(plan, [node])
        spark = self._run_session()
        return self._define(spark, plan, plan.needed_for([node]))[node]

    def preview(self, plan: Plan, node: str, limit: int = 20) -> PreviewResult:
        """The first ``limit`` rows of a node, its schema and row count; writes nothing."""
        import pandas as pd

        t0 = time.perf_counter()
        df = self.frame(plan, node)
        try:
            rows = df.limit(int(limit)).collect()
            count = df.count()
        except PySparkException as e:
            raise SparkEngineError(Problem(f"'{node}' failed: {_first_line(e)}",
                                           file=plan.pipeline.file, step=node,
                                           kind="execution")) from None
        columns = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
        frame = pd.DataFrame.from_records([tuple(r) for r in rows],
                                          columns=[c for c, _ in columns])
        return PreviewResult(node=node, columns=columns, rows=frame, row_count=int(count),
                             seconds=time.perf_counter() - t0)

    def fetch(self, plan: Plan, node: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """Every row of ``node`` as Python values; zoned timestamps come back in UTC."""
        import datetime as dt

        df = self.frame(plan, node)
        zoned = [isinstance(f.dataType, T.TimestampType) for f in df.schema.fields]
        if any(zoned):  # PySpark would convert them to the Python process's local time
            df = df.select(*[F.col(_bq(f.name)).cast(T.TimestampNTZType()).alias(f.name) if z
                             else F.col(_bq(f.name)) for f, z in zip(df.schema.fields, zoned)])
        columns = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
        rows = []
        for r in df.collect():
            rows.append(tuple(v.replace(tzinfo=dt.timezone.utc) if z and v is not None else v
                              for v, z in zip(r, zoned)))
        return columns, rows


# ---- writing helpers ---------------------------------------------------------------------

def _writer(df: DataFrame, fmt: str) -> Any:
    w = df.write.mode("overwrite").format(fmt)
    if fmt == "csv":
        w = w.option("header", "true").option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss.SSSSSS")
    elif fmt == "json":
        w = w.option("ignoreNullFields", "false")
    return w


def _count_written(spark: SparkSession, path: str, fmt: str, df: DataFrame) -> int:
    """Rows in the written files (parquet: from the footers, without scanning the data)."""
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").schema(df.schema)
    elif fmt == "json":
        reader = reader.schema(df.schema)
    return int(reader.load(path).count())


@contextmanager
def _atomic_dir(spark: SparkSession, target: str, fmt: str) -> Iterator[str]:
    """A temp directory next to ``target`` that replaces it on success (any Hadoop URI).

    A local folder gets the marker of a Dockyard output (:data:`builder.plan.targets.MARKER`) before
    it is renamed into place: only such a folder may be replaced by a later run.
    """
    if "://" in target and not target.startswith("file://"):
        yield from _atomic_remote(spark, target)
        return
    final = Path(target.removeprefix("file://"))
    refuse_unsafe_target(final)  # a folder Dockyard did not write, or a link: never replaced
    final.parent.mkdir(parents=True, exist_ok=True)
    from builder.engines.duckdb import _cleanup_stale_tmp

    _cleanup_stale_tmp(final)
    tmp = final.parent / f".{final.name}{TMP_MARK}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield str(tmp)
        write_marker(tmp, "spark", fmt)
        old = final.parent / f".{final.name}{OLD_MARK}{os.getpid()}"
        if final.exists() or final.is_symlink():
            os.replace(final, old)  # a file (DuckDB output) or a directory (earlier Spark run)
        fsio.replace(tmp, final)  # its part files synced first
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        elif old.exists() or old.is_symlink():
            old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _atomic_remote(spark: SparkSession, target: str) -> Iterator[str]:
    jvm: Any = spark._jvm  # noqa: SLF001 - Hadoop's FileSystem has no Python API
    conf = spark._jsc.hadoopConfiguration()  # noqa: SLF001
    hpath = jvm.org.apache.hadoop.fs.Path
    final = hpath(target)
    fs = final.getFileSystem(conf)
    parent = final.getParent()
    tmp = hpath(parent, f".{final.getName()}{TMP_MARK}{os.getpid()}")
    old = hpath(parent, f".{final.getName()}{OLD_MARK}{os.getpid()}")
    fs.delete(tmp, True)
    try:
        yield tmp.toString()
        if fs.exists(final):
            fs.rename(final, old)
        if not fs.rename(tmp, final):
            raise OSError(f"cannot rename '{tmp.toString()}' to '{target}'")
        fs.delete(old, True)
    except BaseException:
        fs.delete(tmp, True)
        raise


__all__ = ["SparkEngine", "spark_session", "spark_type", "spark_schema", "read_spec",
           "view_name"]
