"""How Spark reads a source: format, paths and reader options from the plan's DuckDB read.

CSV and JSON are read with an explicit schema (the one DuckDB inferred for the plan) and, for
local CSV files, with DuckDB's sniffed delimiter, header and date formats. DuckDB reader options
without a Spark equivalent are refused, never ignored.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from builder.engines.connection import connect
from builder.engines.spark.errors import SparkEngineError
from builder.plan.compiler import Plan
from builder.plan.sandbox import sandbox_dirs_for_paths

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
