"""Incremental reads of a catalog source: only the rows newer than the last successful run.

A pipeline source ``{catalog: events, incremental: {by: updated_at, lookback: 2 hours}}`` is
read as a dbt incremental model reads its source under ``is_incremental()``: after the entry's
casts, a read stage ``<id>__incremental`` keeps the rows with ``by > watermark - lookback``,
where the watermark is the newest ``by`` value the last successful run of this pipeline saw
(kept in the warehouse, table ``watermarks``). The lookback re-reads late-arriving rows. The
pipeline's outputs merge the rows into their staging tables (``mode: merge`` on
``primary_key``), so re-read rows replace themselves and two runs over growing data give the
table one full run gives.

There is no filter (a full read) on the first run, after ``dockyard run --full-refresh`` (as
dbt's flag), when the ``by`` column changed, or when a staging table the pipeline merges into
does not exist. The next watermark is the newest ``by`` value in the source when the run is
planned, before it reads: a row arriving during the run is newer and is read next time. It is
stored only when the run succeeds (see :func:`builder.warehouse.store.record_run`).

The plan layer does not open the warehouse: whoever plans a run passes the stored watermarks in
with :func:`reading_watermarks` (the CLI, the app and :mod:`builder.api` pass the warehouse's
store). A plan made without them reads incremental sources in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from sqlglot import exp

from builder.errors import did_you_mean
from builder.pipeline.catalog import CatalogEntry
from builder.pipeline.model import Pipeline, Source
from builder.pipeline.project import Project, find_project
from builder.plan.sandbox import sandboxed_cursor
from builder.plan.types import ColumnInfo, ParamError
from patterns._interval import parse_interval
from patterns.sql import literal as sql_literal


class WatermarkReader(Protocol):
    """Where the watermarks of earlier runs are kept (the warehouse implements it)."""

    def read_watermark(self, project: Project, pipeline: str,
                       source: str) -> tuple[str, str] | None:
        """(column, watermark) the last successful run of ``pipeline`` stored for ``source``."""


_FULL_REFRESH: ContextVar[bool] = ContextVar("dockyard_full_refresh", default=False)
_WATERMARKS: ContextVar[WatermarkReader | None] = ContextVar("dockyard_watermarks", default=None)
_TIME_TYPES = ("DATE", "TIMESTAMP")


@dataclass(frozen=True)
class IncrementalRead:
    by: str                      # the column compared with the watermark
    lookback: str                # e.g. '2 hours'
    watermark: str | None        # what the last successful run stored (None: full read)
    next_watermark: str | None   # what this run stores when it succeeds

    @property
    def note(self) -> str:
        """What the app and ``dockyard compile`` show about the read."""
        if self.watermark is None:
            return f"incremental by {self.by}: full read (no watermark yet)"
        return (f"incremental: {self.by} > {self.watermark} - {self.lookback} "
                "(the last successful run's newest row, minus the lookback)")


@contextmanager
def full_refresh(on: bool = True) -> Iterator[None]:
    """Plans made inside read incremental sources in full (``dockyard run --full-refresh``)."""
    token = _FULL_REFRESH.set(on)
    try:
        yield
    finally:
        _FULL_REFRESH.reset(token)


@contextmanager
def reading_watermarks(reader: WatermarkReader) -> Iterator[None]:
    """Plans made inside filter incremental sources on the watermarks ``reader`` stored."""
    token = _WATERMARKS.set(reader)
    try:
        yield
    finally:
        _WATERMARKS.reset(token)


def check(pipeline: Pipeline, src: Source, entry: CatalogEntry,
          columns: tuple[ColumnInfo, ...]) -> tuple[str, str, int, str]:
    """(by column, its type, lookback number, lookback unit) of ``src``; a ParamError if the
    source, the entry or the pipeline's outputs cannot run incrementally."""
    assert src.incremental is not None
    types = {c.name: c.type for c in columns}
    by = src.incremental.get("by") or "event_time"
    if by == "event_time" and entry.event_time:
        by = entry.event_time  # 'by: event_time' (the default) names the entry's column
    elif by == "event_time" and by not in types:
        raise ParamError("incremental", f"catalog entry '{entry.name}' has no 'event_time': "
                         "add 'event_time: COLUMN' to the entry or name the column with "
                         "'incremental: {by: COLUMN}'.")
    if by not in types:
        raise ParamError("incremental", f"'incremental' is by column '{by}', which the data "
                         "set does not have." + (did_you_mean(by, types) or ""))
    if not types[by].upper().startswith(_TIME_TYPES):
        raise ParamError("incremental", f"'incremental' is by column '{by}' of type "
                         f"{types[by]}; it must be a DATE or TIMESTAMP: cast it with "
                         f"'types: {{{by}: TIMESTAMP}}' in the catalog entry.")
    lookback = src.incremental.get("lookback") or "0 seconds"
    try:
        n, unit = (0, "second") if lookback == "0 seconds" else parse_interval(lookback,
                                                                               "lookback")
    except ParamError as e:
        raise ParamError("incremental", f"'incremental' lookback: {e.message}") from None
    outputs = list(pipeline.outputs.values())
    bad = [o for o in outputs if not (o.staging and o.mode == "merge" and o.primary_key)]
    if not outputs or bad:
        which = f"output '{bad[0].step}'" if bad else "the pipeline has no output; it"
        raise ParamError("incremental", f"an incremental source reads only new rows, so "
                         f"{which} must merge them into a staging table: write it as "
                         "{staging: NAME, mode: merge, primary_key: [KEY]}.")
    return by, types[by], n, unit


def prepare(pipeline: Pipeline, src: Source, by: str) -> str | None:
    """The watermark this run filters on, None for a full read (see the module docstring)."""
    reader = _WATERMARKS.get()
    if reader is None or _FULL_REFRESH.get() or pipeline.path is None:
        return None
    project = find_project(pipeline.path)
    if any(o.staging and not project.staging_table(o.staging).exists()
           for o in pipeline.outputs.values()):
        return None  # nothing to merge into: build the table in full, as dbt does
    found = reader.read_watermark(project, pipeline.name, src.id)
    if found is None or found[0] != by:
        return None
    return found[1]


def filter_query(input_name: str, by: str, by_type: str, watermark: str, n: int,
                 unit: str) -> exp.Query:
    """``SELECT * FROM input WHERE by > CAST(watermark AS type) - INTERVAL n unit``."""
    since: exp.Expr = exp.cast(sql_literal(watermark), by_type)
    if n:
        since = exp.Sub(this=since, expression=exp.Interval(this=sql_literal(str(n)),
                                                          unit=exp.Var(this=unit.upper())))
    return exp.select(exp.Star()).from_(exp.Table(this=exp.to_identifier(input_name, quoted=True))).where(
        exp.GT(this=exp.column(by, quoted=True), expression=since))


def newest(stages: list[tuple[str, exp.Query]], raw_name: str, raw: exp.Query, last: str,
           by: str, allowed_dirs: list[str]) -> str | None:
    """The newest ``by`` value of the source now (read through its stages), as text."""
    query = exp.select(exp.cast(exp.Max(this=exp.column(by, quoted=True)), "VARCHAR")).from_(
        exp.Table(this=exp.to_identifier(last, quoted=True)))
    for name, q in [(raw_name, raw), *stages]:
        query = query.with_(exp.to_identifier(name, quoted=True), as_=q)
    con = sandboxed_cursor(allowed_dirs)
    try:
        row = con.execute(query.sql(dialect="duckdb")).fetchone()
    finally:
        con.close()
    return None if row is None or row[0] is None else str(row[0])
