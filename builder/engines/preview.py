"""Previews with cached upstream results: editing one step recomputes only what depends on it.

A :class:`Previewer` keeps one sandboxed DuckDB connection. Each node's result is stored as a
table named after its *fingerprint*: a hash of its compiled SQL (which already contains its
params and the ids it reads) and the fingerprints of its inputs; a source's fingerprint is its
file identity (paths, sizes, mtimes) and read options. Unchanged nodes are found by fingerprint
and never recomputed; an edit changes the fingerprints of that step and its descendants only.

Sample mode reads a bounded subset of each source: where a source declares ``sample_key``, whole
keys are kept with one fraction shared by every keyed source, so joins and sessions stay intact;
other sources are cut to their first rows. Sample previews are marked approximate.

The sample of a source is made once per source version and kept as a Parquet file in the
project's warehouse cache (``warehouse/cache/samples/``), named by the source's fingerprint (its
files' paths, sizes and mtimes, read options and the sample settings): a cold sampled preview in
a new session reads the kept samples and costs only the steps on them, not a scan of the full
sources. A changed file has a new fingerprint, so its sample is made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from sqlglot import exp

from builder.engines.base import PreviewResult
from builder.engines.connection import ConnectionSettings, connect
from builder.engines.postgres import attached
from builder.errors import ExecutionError, Problem, engine_message
from builder.plan.compiler import Plan, source_key
from builder.plan.plans import sandbox_dirs
from builder.plan.sandbox import file_identity, q
from patterns.sql import col, ident

TABLE_PREFIX = "_dy_"
DEFAULT_SAMPLE_ROWS = 100_000
MAX_CACHED_TABLES = 64


class _FusedFailed(Exception):
    """A query computing several steps at once failed (they are then run one by one)."""


@dataclass(frozen=True)
class SampleSpec:
    """Sample mode: at most ``rows`` rows per source (whole keys where a sample_key is set)."""

    rows: int = DEFAULT_SAMPLE_ROWS
    seed: int = 42


class Previewer:
    """Cached, cancellable previews of any node of any plan (one per app session)."""

    def __init__(self, settings: ConnectionSettings | None = None,
                 extra_dirs: tuple[str, ...] = (), sample_dir: Path | None = None) -> None:
        self.settings = settings or ConnectionSettings()
        self.extra_dirs = extra_dirs
        self.sample_dir = sample_dir  # None: <project warehouse>/cache/samples of each plan
        self.samples_made: list[str] = []  # sources sampled from the full data (not kept ones)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._dirs: list[str] = []
        self._tables: OrderedDict[str, int] = OrderedDict()  # fingerprint -> row count
        self._counts: dict[str, int] = {}
        # Steps computed inside the one query of a sampled preview, to be made tables later:
        # (plan, steps in order, fingerprints, sample).
        self._pending: tuple[Plan, list[str], dict[str, str], SampleSpec | None] | None = None
        self._lock = threading.RLock()
        self.computed: list[str] = []  # nodes computed (not served from cache), for tests/UI

    # ---- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Previewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
                self._tables.clear()
                self._pending = None

    def interrupt(self) -> None:
        """Cancel the query running now (from another thread); the preview raises."""
        con = self._con
        if con is not None:
            con.interrupt()

    def samples_folder(self, plan: Plan) -> Path:
        """Where the kept samples of ``plan``'s sources live (made on first use)."""
        folder = self.sample_dir
        if folder is None:
            from builder.pipeline.project import find_project

            p = plan.pipeline.path
            folder = find_project(Path(p) if p else None).warehouse / "cache" / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _connection(self, plan: Plan) -> duckdb.DuckDBPyConnection:
        dirs = sandbox_dirs(plan, [*self.settings.extra_dirs, *self.extra_dirs,
                                   str(self.samples_folder(plan))])
        # The sandbox is locked once set: a plan reaching new folders needs a new connection.
        if self._con is None or not set(dirs) <= set(self._dirs):
            self.close()
            self._dirs = sorted(set(dirs) | set(self._dirs))
            e = self.settings
            self._con = connect(self._dirs, memory_limit=e.memory_limit, threads=e.threads,
                                temp_directory=e.temp_directory, sandbox=e.sandbox)
        return self._con

    # ---- fingerprints --------------------------------------------------------------------
    def fingerprints(self, plan: Plan, node: str, sample: SampleSpec | None) -> dict[str, str]:
        """Fingerprint of ``node`` and everything upstream of it."""
        fps: dict[str, str] = {}
        for n in plan.needed_for([node]):
            h = hashlib.sha256()
            if n in plan.sources:
                src = plan.sources[n].source
                h.update(repr(source_key(plan.pipeline, src)).encode())
                # Catalog and staging sources: the content of the files they read.
                h.update(repr([file_identity(p) for p in plan.sources[n].paths]).encode())
                h.update(repr([(name, qq.sql("duckdb")) for name, qq in
                               plan.node_ctes(n)]).encode())
                h.update(repr(sample).encode())
                if sample:
                    h.update(repr(self._sample_fraction_key(plan, sample)).encode())
            else:
                h.update(plan.query_of(n).sql(dialect="duckdb").encode())
                for i in sorted(plan.graph.predecessors(n)):
                    h.update(f"{i}={fps[i]};".encode())
            fps[n] = h.hexdigest()[:24]
        return fps

    # ---- computing -----------------------------------------------------------------------
    def ensure(self, plan: Plan, node: str, sample: SampleSpec | None = None) -> str:
        """Make sure ``node`` is a cached table; returns the table name.

        In sample mode the steps not cached yet above ``node`` are computed with it in one
        query (DuckDB streams them into each other instead of writing each to a table first),
        and become tables of their own later (:meth:`settle`), so an edit below them still
        recomputes only what changed.
        """
        with self._lock:
            con = self._connection(plan)
            fps = self.fingerprints(plan, node, sample)
            todo = [n for n in plan.needed_for([node]) if fps[n] not in self._tables]
            if todo:
                self._settle(con)  # tables for what an earlier one-query preview left out
            fused = [n for n in todo if n != node and (
                n not in plan.sources or self._kept_exists(plan, n, fps))] \
                if sample is not None and node in todo else []
            for n in todo:
                if n not in fused and n != node:
                    self._compute(con, plan, n, fps, sample)
            if node in todo:
                try:
                    self._compute(con, plan, node, fps, sample, fused=fused)
                except _FusedFailed:
                    # One step at a time, so the error names the step that failed.
                    for n in [*fused, node]:
                        self._compute(con, plan, n, fps, sample)
                    fused = []
            if fused:
                self._pending = (plan, fused, fps, sample)
            self._evict(con, keep=set(fps.values()))
            return TABLE_PREFIX + fps[node]

    def settle(self) -> None:
        """Give the steps an earlier sampled preview computed inside one query tables of their
        own (run after the preview is shown, e.g. in a background thread: one step at a time,
        so a request for a cached result never waits long)."""
        while True:
            with self._lock:
                if self._pending is None or self._con is None:
                    return
                if not self._settle(self._con, steps=1):
                    return

    def _settle(self, con: duckdb.DuckDBPyConnection, steps: int | None = None) -> bool:
        """Make up to ``steps`` (all: None) pending steps tables; True when some are left.

        A failure (a cancelled query) drops the rest: they are only a speed-up for later
        previews, which compute what they miss."""
        if self._pending is None:
            return False
        plan, nodes, fps, sample = self._pending
        done = 0
        try:
            for n in nodes:
                if fps[n] in self._tables:
                    continue
                if steps is not None and done == steps:
                    return True
                if any(fps[i] not in self._tables for i in plan.graph.predecessors(n)):
                    break  # an input was evicted meanwhile: a later preview computes it
                self._compute(con, plan, n, fps, sample, record=False)
                done += 1
        except ExecutionError:
            pass
        self._pending = None
        return False

    def _compute(self, con: duckdb.DuckDBPyConnection, plan: Plan, n: str, fps: dict[str, str],
                 sample: SampleSpec | None, fused: list[str] | None = None,
                 record: bool = True) -> None:
        """Compute node ``n`` into its table. ``fused``: steps above it, not cached, that are
        computed inside the same query (each a view of its own query, bound at once by the one
        statement that reads them); ``record``: count it in :attr:`computed`."""
        table = TABLE_PREFIX + fps[n]
        fused = fused or []
        try:
            # Point each input id at its cached table (or, for a fused step, at its query),
            # then run the node's own query only.
            for m in [*fused, n]:
                for i in plan.graph.predecessors(m):
                    if i not in fused:
                        con.execute(f"CREATE OR REPLACE TEMP VIEW {q(i)} AS SELECT * FROM "
                                    f"{q(TABLE_PREFIX + fps[i])}")
            for m in fused:
                sql = f"SELECT * FROM read_parquet({_literal(self.kept_sample(plan, m, fps))})" \
                    if m in plan.sources else plan.query_of(m).sql("duckdb")
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(m)} AS {sql}")
            ctes = plan.node_ctes(n)
            for name, query in ctes[:-1]:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {query.sql('duckdb')}")
            query = ctes[-1][1]
            postgres = plan.sources[n].postgres if n in plan.sources else None
            # A PostgreSQL source has no files to tell its versions apart: never a kept sample.
            kept = self.kept_sample(plan, n, fps) if n in plan.sources and sample and \
                postgres is None else None
            if kept is not None and kept.exists():
                con.execute(f"CREATE OR REPLACE TEMP TABLE {q(table)} AS SELECT * FROM "
                            f"read_parquet({_literal(kept)})")
            else:
                if n in plan.sources and sample is not None:
                    query = self._sampled(plan, n, query, sample)
                if postgres is not None:
                    with attached(con, postgres, n):
                        con.execute(f"CREATE OR REPLACE TEMP TABLE {q(table)} AS "
                                    f"{query.sql('duckdb')}")
                else:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(table)} AS "
                                f"{query.sql('duckdb')}")
                if kept is not None:
                    self._keep(con, table, kept)
                    self.samples_made.append(n)
            count = con.execute(f"SELECT count(*) FROM {q(table)}").fetchall()[0][0]
        except duckdb.InterruptException:
            raise ExecutionError(f"preview of '{n}' was cancelled.", step=n) from None
        except duckdb.Error as e:
            if fused:
                raise _FusedFailed from None
            what = "source" if n in plan.sources else "step"
            raise ExecutionError(Problem(f"{what} '{n}' failed: {engine_message(e)}",
                                         file=plan.pipeline.file, step=n,
                                         kind="execution")) from None
        self._tables[fps[n]] = int(count)
        if record:
            self.computed.extend([*fused, n])

    def _kept_exists(self, plan: Plan, sid: str, fps: dict[str, str]) -> bool:
        """A kept sample of source ``sid`` is on disk (a PostgreSQL source never has one)."""
        return plan.sources[sid].postgres is None and self.kept_sample(plan, sid, fps).exists()

    def kept_sample(self, plan: Plan, sid: str, fps: dict[str, str]) -> Path:
        """The file of ``sid``'s kept sample: its fingerprint (the source's version and the
        sample settings) and, for keyed sources, the versions of every keyed source (they set
        the shared fraction)."""
        h = hashlib.sha256(fps[sid].encode())
        if plan.sources[sid].sample_key:
            for s, sp in sorted(plan.sources.items()):
                if sp.sample_key:
                    h.update(repr((s, source_key(plan.pipeline, sp.source),
                                   [file_identity(p) for p in sp.paths])).encode())
        return self.samples_folder(plan) / f"{sid}-{h.hexdigest()[:24]}.parquet"

    def _keep(self, con: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
        """Write a sample next to its final name, then rename: a reader never sees half."""
        part = path.with_name(f".{path.stem}-{uuid.uuid4().hex[:8]}.part")
        try:
            con.execute(f"COPY {q(table)} TO {_literal(part)} (FORMAT parquet)")
            os.replace(part, path)
        except (duckdb.Error, OSError):
            # No kept sample (e.g. a read-only warehouse): the preview itself is fine.
            part.unlink(missing_ok=True)

    def _sample_fraction_key(self, plan: Plan, sample: SampleSpec) -> tuple[Any, ...]:
        return tuple(sorted((sid, tuple(sp.sample_key)) for sid, sp in
                            plan.sources.items() if sp.sample_key))

    def _source_rows(self, con: duckdb.DuckDBPyConnection, plan: Plan, sid: str) -> int:
        key = repr(source_key(plan.pipeline, plan.sources[sid].source)) + \
            repr(plan.sources[sid].postgres)  # postgres sources have no file to tell them apart
        if key not in self._counts:
            sql = plan.query_of(sid).sql("duckdb") if not plan.sources[sid].stages else \
                (plan.sources[sid].read or plan.query_of(sid)).sql("duckdb")
            postgres = plan.sources[sid].postgres
            if postgres is not None:  # the rows stream from PostgreSQL for this count
                with attached(con, postgres, sid):
                    self._counts[key] = int(
                        con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])
            else:
                self._counts[key] = int(
                    con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])
        return self._counts[key]

    def _sampled(self, plan: Plan, sid: str, query: exp.Query,
                 sample: SampleSpec) -> exp.Query:
        sample_key = plan.sources[sid].sample_key
        sub = query.subquery("s")
        if not sample_key:
            return exp.select(exp.Star()).from_(sub).limit(sample.rows)
        con = self._con
        assert con is not None
        keyed = [s for s, sp in plan.sources.items() if sp.sample_key]
        biggest = max(self._source_rows(con, plan, s) for s in keyed)
        fraction = min(1.0, sample.rows / biggest) if biggest else 1.0
        buckets = 1_000_000
        # The same hash of the same key value in every keyed source keeps whole entities.
        key_text = exp.func("concat_ws", exp.Literal.string("\x1f"), *(
            exp.func("coalesce", exp.cast(col(k), "VARCHAR"), exp.Literal.string("\x00"))
            for k in sample_key))
        h = exp.func("hash", exp.func("concat", key_text, exp.Literal.string(str(sample.seed))))
        cond = exp.LT(this=exp.Mod(this=h, expression=exp.Literal.number(buckets)),
                      expression=exp.Literal.number(int(fraction * buckets)))
        return exp.select(exp.Star()).from_(sub).where(cond)

    def _evict(self, con: duckdb.DuckDBPyConnection, keep: set[str]) -> None:
        while len(self._tables) > MAX_CACHED_TABLES:
            fp = next((f for f in self._tables if f not in keep), None)
            if fp is None:
                return
            self._tables.pop(fp)
            con.execute(f"DROP TABLE IF EXISTS {q(TABLE_PREFIX + fp)}")

    # ---- public API ----------------------------------------------------------------------
    def preview(self, plan: Plan, node: str, limit: int = 20,
                sample: SampleSpec | None = None) -> PreviewResult:
        """First ``limit`` rows of ``node``, its schema and exact row count (writes nothing)."""
        plan.raise_for_errors() if node not in plan.steps or not plan.steps[node].ok else None
        if node not in plan.graph:
            raise ExecutionError(f"'{node}' is not a source or step of this pipeline.")
        t0 = time.perf_counter()
        before = len(self.computed)
        with self._lock:
            table = self.ensure(plan, node, sample)
            con = self._connection(plan)
            rel = con.sql(f"SELECT * FROM {q(table)} LIMIT {int(limit)}")
            columns = list(zip(rel.columns, [str(t) for t in rel.types]))
            df = rel.df()
            count = self._tables.get(table[len(TABLE_PREFIX):])
        return PreviewResult(node=node, columns=columns, rows=df, row_count=count,
                             seconds=time.perf_counter() - t0, approximate=sample is not None,
                             cached=len(self.computed) == before)

    def fetch(self, plan: Plan, node: str, limit: int | None = None,
              sample: SampleSpec | None = None) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """Columns and rows of ``node`` as plain Python values (exact types, no pandas)."""
        with self._lock:
            table = self.ensure(plan, node, sample)
            con = self._connection(plan)
            rel = con.sql(f"SELECT * FROM {q(table)}" + (f" LIMIT {int(limit)}" if limit else ""))
            return list(zip(rel.columns, [str(t) for t in rel.types])), rel.fetchall()

    def profile(self, plan: Plan, node: str, sample: SampleSpec | None = None) -> pd.DataFrame:
        """Per-column profile: type, null share, distinct count (approx.), min, max."""
        with self._lock:
            table = self.ensure(plan, node, sample)
            con = self._connection(plan)
            df = con.sql(f"SUMMARIZE {q(table)}").df()
        keep = [c for c in ("column_name", "column_type", "null_percentage", "approx_unique",
                            "min", "max", "avg", "count") if c in df.columns]
        return df[keep]

    def histogram(self, plan: Plan, node: str, column: str, bins: int = 20,
                  sample: SampleSpec | None = None) -> pd.DataFrame:
        """Value counts for a column: top values for text, equal-width bins for numbers."""
        with self._lock:
            table = self.ensure(plan, node, sample)
            con = self._connection(plan)
            c = ident(column).sql("duckdb")
            typ = str(con.sql(f"SELECT {c} FROM {q(table)} LIMIT 0").types[0]).upper()
            numeric = any(t in typ for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))
            if numeric:
                sql = (f"WITH b AS (SELECT min({c})::DOUBLE lo, max({c})::DOUBLE hi FROM "
                       f"{q(table)}) SELECT lo + (hi - lo) / {bins} * least({bins - 1}, "
                       f"floor(({c} - lo) / nullif(hi - lo, 0) * {bins})) AS bin, count(*) AS n "
                       f"FROM {q(table)}, b WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY 1")
            else:
                sql = (f"SELECT CAST({c} AS VARCHAR) AS value, count(*) AS n FROM {q(table)} "
                       f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT {bins}")
            return con.sql(sql).df()

    def cached_nodes(self, plan: Plan, sample: SampleSpec | None = None) -> set[str]:
        """Nodes of ``plan`` whose current definition has a cached result."""
        out = set()
        for n in plan.order:
            try:
                fps = self.fingerprints(plan, n, sample)
            except Exception:  # noqa: BLE001 - a broken node simply is not cached
                continue
            if fps.get(n) in self._tables:
                out.add(n)
        return out


def source_bytes(plan: Plan, node: str) -> int:
    """Bytes of the files the sources upstream of ``node`` read (0 for tables and URLs)."""
    total = 0
    for n in plan.needed_for([node]):
        sp = plan.sources.get(n)
        if sp is None:
            continue
        path = plan.pipeline.resolve(sp.source.path) if sp.source.path else None
        files = {f for p in ([path] if path else []) + list(sp.paths) for f in file_identity(p)}
        total += sum(size for _, size, _ in files)
    return total


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", date_format="iso"))
