"""File sources: the read query (``read_csv``, ``read_parquet``, ...) and the schema of a
source whose ``path`` names files, with the problems found on the way (missing, a folder,
empty, ragged CSV, unreadable).
"""

from __future__ import annotations

import os

import duckdb
from sqlglot import exp

from builder.errors import engine_message
from builder.pipeline.model import Pipeline, Source
from builder.plan.csvsniff import ragged_csv
from builder.plan.plans import ProblemSink, SourcePlan
from builder.plan.reader_options import READER_FUNCTIONS, option_args, option_problems
from builder.plan.sandbox import file_identity, sandbox_dirs_for_paths
from builder.plan.schema import describe_source


def read_query(pipeline: Pipeline, src: Source) -> exp.Query:
    """``SELECT * FROM read_<format>('path', options...)`` for a file source (DuckDB dialect)."""
    assert src.path is not None
    path = pipeline.resolve(src.path)
    fmt = src.resolved_format
    fn = READER_FUNCTIONS[fmt or "parquet"]
    # Option names are checked against the reader's (plan_file_source reports unknown ones
    # first), values are literal nodes: neither can carry SQL.
    args: list[exp.Expr] = [exp.Literal.string(path)]
    args += option_args(src.options, fmt)
    func = exp.Anonymous(this=fn, expressions=args)
    return exp.select(exp.Star()).from_(exp.Table(this=func))


def source_key(pipeline: Pipeline, src: Source) -> tuple[object, ...]:
    """Identity of a source's content and read settings (for schema and preview caches)."""
    path = pipeline.resolve(src.path) if src.path else ""
    return (path, src.resolved_format, tuple(sorted((str(k), repr(v))
            for k, v in src.options.items())), file_identity(path) if path else ())


def plan_file_source(pipeline: Pipeline, src: Source, sink: ProblemSink) -> SourcePlan:
    """Read query and schema of a source reading files (``src.path``); problems go to ``sink``."""
    assert src.path is not None
    bad_options = option_problems(src.options, src.resolved_format)
    for message in bad_options:
        sink.add(f"source '{src.id}': {message}", line=src.line, kind="config")
    if bad_options:
        return SourcePlan(src, None)
    read = read_query(pipeline, src)
    resolved = pipeline.resolve(src.path)
    if not file_identity(resolved) and "://" not in resolved:
        glob_hint = " (the glob matches no file)" if any(c in src.path for c in "*?[") else ""
        sink.add(f"source '{src.id}': file '{src.path}' not found{glob_hint} (looked in "
                 f"'{resolved}'). Paths are relative to the pipeline file.", line=src.line,
                 kind="config")
        return SourcePlan(src, read)
    if os.path.isdir(resolved):
        fmt = src.resolved_format or "parquet"
        example = os.path.join(src.path, f"*.{fmt}")
        sink.add(f"source '{src.id}': '{src.path}' is a folder, not a file. Name the files in it "
                 f"with a glob, e.g. '{example}'.", line=src.line, kind="config")
        return SourcePlan(src, read)
    files = file_identity(resolved)
    if "://" not in resolved and all(size == 0 for _f, size, _m in files):
        sink.add(f"source '{src.id}': file '{src.path}' is empty (0 bytes). Point the source "
                 "at a file with data, or remove it.", line=src.line, kind="config")
        return SourcePlan(src, read)
    try:
        dirs = sandbox_dirs_for_paths([resolved])
        ragged = ragged_csv(src, files, dirs) if src.resolved_format == "csv" else None
        if ragged:
            sink.add(f"source '{src.id}': {ragged}", line=src.line, kind="config")
            return SourcePlan(src, read)
        cols = describe_source(read.sql(dialect="duckdb"), source_key(pipeline, src), dirs)
    except duckdb.Error as e:
        sink.add(f"source '{src.id}': cannot read '{src.path}' as {src.resolved_format}: "
                 f"{engine_message(e)}", line=src.line, kind="execution")
        return SourcePlan(src, read)
    return SourcePlan(src, read, cols)
