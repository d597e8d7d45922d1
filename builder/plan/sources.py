"""Sources: what reading a file, a catalog entry or a staging table means.

:func:`plan_source` plans any source: files (:mod:`builder.plan.files`), catalog entries and
staging tables (here), PostgreSQL queries (:mod:`builder.engines.postgres`).

A ``{catalog: NAME}`` source is read from the entry's location, then the entry's metadata is
applied as named read stages, each built by the same pattern that a pipeline would use, so the
logic exists once: ``<id>__typed`` (the pattern providing 'cast', i.e. cast), ``<id>__deduped``
('latest_per_key', dedupe: latest row per primary key), ``<id>__masked`` ('mask', mask).
Expectations become checks on the source ('checks', expect; the run stops naming the source and
check) and ``freshness`` a warning check. The compiled SQL shows every stage as its own CTE and
``SourcePlan.applied`` lists them for the app. Which pattern provides each capability is the
registry's to say (``patterns/__init__.py``).

A ``{staging: NAME}`` source reads a staging table that another pipeline published.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb
from pydantic import ValidationError
from sqlglot import exp

from builder.errors import did_you_mean
from builder.pipeline.catalog import CatalogEntry, load_catalog
from builder.pipeline.model import Pipeline, Source, staging_name_problem
from builder.pipeline.project import find_project
from builder.pipeline.pydantic_errors import pydantic_messages
from builder.plan import incremental
from builder.plan.dependencies import producers
from builder.plan.files import plan_file_source, read_query, source_key
from builder.plan.plans import ProblemSink, SourcePlan
from builder.plan.postgres import plan_source as plan_postgres
from builder.plan.reader_options import option_problems
from builder.plan.sandbox import sandbox_dirs_for_paths
from builder.plan.schema import Typer, describe_source
from builder.plan.types import ParamError, Relation, Schema
from patterns import PATTERNS
from patterns._interval import parse_interval
from patterns.base import BuildContext, Built, Check
from patterns.sql import literal as sql_literal


def plan_source(pipeline: Pipeline, src: Source, sink: ProblemSink) -> SourcePlan:
    """Read query and schema of one source of any kind; problems go to ``sink``."""
    if src.path is not None:
        return plan_file_source(pipeline, src, sink)
    if src.postgres is not None:
        return plan_postgres(pipeline, src, sink)
    if src.catalog:
        return _plan_catalog(pipeline, src, sink)
    return _plan_staging(pipeline, src, sink)


# ---- catalog sources ---------------------------------------------------------------------

def _plan_catalog(pipeline: Pipeline, src: Source, sink: ProblemSink) -> SourcePlan:
    assert src.catalog is not None
    project = find_project(pipeline.path)
    cat = load_catalog(project)
    for p in cat.problems:
        sink.append(p)
    found = cat.get(src.catalog)
    if found is None:
        sink.add(f"source '{src.id}': catalog entry '{src.catalog}' not found in "
                 f"'{project.catalog_dir}'." + (cat.suggest(src.catalog) or ""),
                 line=src.line, kind="config")
        return SourcePlan(src, None)
    entry, _file = found
    bad_options = option_problems(entry.options, cat.format(src.catalog))
    for message in bad_options:
        sink.add(f"source '{src.id}': catalog entry '{entry.name}': {message}", line=src.line,
                 kind="config")
    if bad_options:
        return SourcePlan(src, None)
    raw = Source(id=src.id, path=cat.location(src.catalog), format=cat.format(src.catalog),
                 options=dict(entry.options), line=src.line)
    base = plan_file_source(pipeline, raw, sink)
    sp = SourcePlan(src, base.read, base.columns)
    sp.paths = [raw.path or ""]
    if base.columns is None:
        return sp
    try:
        _apply_entry(pipeline, src, entry, sp)
    except ParamError as e:
        sink.add(f"source '{src.id}': catalog entry '{entry.name}': {e.message}",
                 line=src.line, kind="config")
        sp.columns = None
    except duckdb.Error as e:
        sink.add(f"source '{src.id}': catalog entry '{entry.name}' cannot be applied: "
                 f"{str(e).splitlines()[0]}", line=src.line, kind="config")
        sp.columns = None
    return sp


def _check_columns(entry: CatalogEntry, columns: Schema, what: str, names: list[str]) -> None:
    have = [c.name for c in columns]
    for n in names:
        if n not in have:
            raise ParamError(what, f"'{what}' names column '{n}', which the data set does not "
                             "have." + (did_you_mean(n, have) or ""))


def _apply_entry(pipeline: Pipeline, src: Source, entry: CatalogEntry, sp: SourcePlan) -> None:
    """Add the read stages and checks the entry declares to ``sp`` (typing each stage)."""
    assert sp.columns is not None
    typer = Typer()
    try:
        current = f"{src.id}__raw"
        typer.define(current, sp.columns)
        columns = sp.columns

        def stage(suffix: str, capability: str, params: dict[str, Any], note: str) -> None:
            nonlocal current, columns
            built = _build(capability, params, current, columns, src.id)
            name = f"{src.id}__{suffix}"
            columns = typer.type_query(name, built.query)
            sp.stages.append((name, built.query))
            sp.applied.append(note)
            current = name

        _check_columns(entry, columns, "types", list(entry.types))
        if entry.types:
            stage("typed", "cast", {"columns": entry.types},
                  "cast " + ", ".join(f"{c} to {t}" for c, t in entry.types.items()))
        if src.incremental is not None:
            only_new = _incremental_stage(pipeline, src, entry, sp, columns, current)
            if only_new is not None:
                current = f"{src.id}__incremental"
                columns = typer.type_query(current, only_new)
                sp.stages.append((current, only_new))
        _check_columns(entry, columns, "primary_key", entry.primary_key)
        if entry.dedupe:
            _check_columns(entry, columns, "dedupe", [entry.dedupe])
            stage("deduped", "latest_per_key", {"keys": entry.primary_key,
                                        "order_by": [f"{entry.dedupe} desc"]},
                  f"dedupe: latest row per {', '.join(entry.primary_key)} by {entry.dedupe}")
        masked = {c: m for c, m in entry.pii.items() if c not in src.pii_access}
        refused = [c for c in src.pii_access if c in entry.pii]
        if refused and pipeline.name not in entry.pii_access:
            raise ParamError("pii_access", f"pipeline '{pipeline.name}' asks for raw '{refused[0]}'"
                             ", but the catalog does not list it in 'pii_access'. Ask the "
                             f"owner ({entry.owner or 'see the catalog'}) to add it.")
        unknown = [c for c in src.pii_access if c not in entry.pii]
        if unknown:
            raise ParamError("pii_access", f"'{unknown[0]}' is not a PII column of the entry "
                             "(PII columns: " + (", ".join(entry.pii) or "none") + ").")
        _check_columns(entry, columns, "pii", list(entry.pii))
        if masked:
            salt = os.environ.get(entry.pii_salt_env, "")
            stage("masked", "mask", {"columns": masked, "salt": salt},
                  "masked " + ", ".join(f"{c} ({m})" for c, m in masked.items()))
            if "hash" in masked.values() and not salt:
                sp.applied.append(f"warning: {entry.pii_salt_env} is not set; hashes are unsalted")
        if refused:
            sp.applied.append("raw values allowed: " + ", ".join(refused))
        if entry.expectations:
            # Checks run once the source node exists, so they read it by its own id.
            built = _build("checks", {"checks": entry.expectations, "on_fail": "error"},
                           src.id, columns, src.id)
            typer.define(src.id, columns)
            for check in built.checks:  # typed without file access, as steps' checks are
                typer.describe_query(check.failing.sql(dialect="duckdb"))
            sp.checks.extend(built.checks)
            sp.applied.append("expectations: " + ", ".join(c.name for c in built.checks))
        if entry.freshness and entry.event_time:
            _check_columns(entry, columns, "event_time", [entry.event_time])
            sp.checks.append(_freshness_check(entry, src.id))
            sp.applied.append(f"freshness: newest {entry.event_time} within {entry.freshness}")
        _check_columns(entry, columns, "sample_key", entry.sample_key)
        sp.catalog_sample_key = list(entry.sample_key)
        sp.columns = columns
    finally:
        typer.close()


def _incremental_stage(pipeline: Pipeline, src: Source, entry: CatalogEntry, sp: SourcePlan,
                       columns: Schema, current: str) -> exp.Query | None:
    """Sets ``sp.incremental``; returns the filter to the rows newer than the watermark, None
    for a full read. It comes after the casts and before the dedupe (which then keeps the
    latest of the new rows per key)."""
    assert src.incremental is not None and sp.read is not None
    by, by_type, n, unit = incremental.check(pipeline, src, entry, columns)
    newest = incremental.newest(list(sp.stages), f"{src.id}__raw", sp.read, current, by,
                                sandbox_dirs_for_paths(sp.paths))
    watermark = incremental.prepare(pipeline, src, by)
    sp.incremental = incremental.IncrementalRead(
        by=by, lookback=src.incremental.get("lookback", "0 seconds"), watermark=watermark,
        next_watermark=newest or watermark)
    sp.applied.append(sp.incremental.note)
    if watermark is None:
        return None
    return incremental.filter_query(current, by, by_type, watermark, n, unit)


def _build(capability: str, params: dict[str, Any], input_name: str, columns: Schema,
           source_id: str) -> Built:
    """A read stage built by the pattern that provides ``capability`` (see CAPABILITIES)."""
    pat = PATTERNS.provider(capability)
    try:
        model = pat.params.model_validate(params)
    except ValidationError as e:
        msgs = pydantic_messages(pat.params, e)
        raise ParamError(msgs[0][0], msgs[0][1]) from None
    ctx = BuildContext(step_id=source_id, inputs=[Relation(input_name, columns)])
    result = pat.build(model, ctx)
    return result if isinstance(result, Built) else Built(query=result)


def _freshness_check(entry: CatalogEntry, table: str) -> Check:
    assert entry.event_time and entry.freshness
    n, unit = parse_interval(entry.freshness, "freshness")
    newest = exp.select(exp.Max(this=exp.column(entry.event_time, quoted=True)).as_("newest")) \
        .from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
    limit = exp.Sub(this=exp.CurrentTimestamp(),
                    expression=exp.Interval(this=sql_literal(str(n)),
                                            unit=exp.Var(this=unit.upper())))
    stale = exp.select(exp.column("newest")).from_(newest.subquery("f")).where(
        exp.or_(exp.column("newest").is_(exp.null()),
                exp.LT(this=exp.cast(exp.column("newest"), "TIMESTAMPTZ"), expression=limit)))
    return Check(name=f"freshness({entry.event_time} within {entry.freshness})", failing=stale,
                 on_fail="warn")


# ---- staging sources ---------------------------------------------------------------------

def _plan_staging(pipeline: Pipeline, src: Source, sink: ProblemSink) -> SourcePlan:
    assert src.staging is not None
    bad = staging_name_problem(src.staging)  # a pipeline built in code skipped the file's check
    if bad:
        sink.add(f"source '{src.id}': {bad}", line=src.line, kind="config")
        return SourcePlan(src, None)
    path = find_project(pipeline.path).staging_table(src.staging)
    if not path.exists():
        made_by = producers(find_project(pipeline.path)).get(src.staging)
        hint = (f" It is produced by '{made_by}': run that pipeline first, or use "
                "'dockyard run --upstream'." if made_by else
                " No saved pipeline publishes it (outputs: {NAME: {staging: ...}}).")
        sink.add(f"source '{src.id}': staging table '{src.staging}' does not exist yet." + hint,
                 line=src.line, kind="config")
        return SourcePlan(src, None)
    raw = Source(id=src.id, path=str(path), format="parquet", line=src.line)
    read = read_query(pipeline, raw)
    try:
        cols = describe_source(read.sql(dialect="duckdb"), source_key(pipeline, raw),
                               sandbox_dirs_for_paths([str(path)]))
    except duckdb.Error as e:
        sink.add(f"source '{src.id}': staging table '{src.staging}' cannot be read: "
                 f"{str(e).splitlines()[0]}", line=src.line, kind="execution")
        return SourcePlan(src, read)
    sp = SourcePlan(src, read, cols)
    sp.paths = [str(path)]
    return sp
