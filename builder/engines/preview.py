"""Previews with cached upstream results: editing one step recomputes only what depends on it.

A :class:`Previewer` keeps one sandboxed DuckDB connection. Each node's result is stored as a
table named after its *fingerprint*: a hash of its compiled SQL (which already contains its
params and the ids it reads) and the fingerprints of its inputs; a source's fingerprint is its
file identity (paths, sizes, mtimes) and read options. Unchanged nodes are found by fingerprint
and never recomputed; an edit changes the fingerprints of that step and its descendants only.

Sample mode reads a bounded subset of each source: where a source declares ``sample_key``, whole
keys are kept with one fraction shared by every keyed source, so joins and sessions stay intact;
other sources are cut to their first rows. Sample previews are marked approximate.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
from sqlglot import exp

from builder.duckdb_native import q
from builder.engines.base import PreviewResult
from builder.engines.connection import ConnectionSettings, connect
from builder.engines.postgres import attached
from builder.errors import ExecutionError, Problem, engine_message
from builder.plan.compiler import Plan, source_key
from builder.plan.sandbox import file_identity, sandbox_dirs
from patterns.base import col, ident

TABLE_PREFIX = "_dy_"
DEFAULT_SAMPLE_ROWS = 100_000
MAX_CACHED_TABLES = 64


@dataclass(frozen=True)
class SampleSpec:
    """Sample mode: at most ``rows`` rows per source (whole keys where a sample_key is set)."""

    rows: int = DEFAULT_SAMPLE_ROWS
    seed: int = 42


class Previewer:
    """Cached, cancellable previews of any node of any plan (one per app session)."""

    def __init__(self, settings: ConnectionSettings | None = None,
                 extra_dirs: tuple[str, ...] = ()) -> None:
        self.settings = settings or ConnectionSettings()
        self.extra_dirs = extra_dirs
        self._con: duckdb.DuckDBPyConnection | None = None
        self._dirs: list[str] = []
        self._tables: OrderedDict[str, int] = OrderedDict()  # fingerprint -> row count
        self._counts: dict[str, int] = {}
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

    def interrupt(self) -> None:
        """Cancel the query running now (from another thread); the preview raises."""
        con = self._con
        if con is not None:
            con.interrupt()

    def _connection(self, plan: Plan) -> duckdb.DuckDBPyConnection:
        dirs = sandbox_dirs(plan, [*self.settings.extra_dirs, *self.extra_dirs])
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
        """Make sure ``node`` is a cached table; returns the table name."""
        with self._lock:
            con = self._connection(plan)
            fps = self.fingerprints(plan, node, sample)
            for n in plan.needed_for([node]):
                if fps[n] in self._tables:
                    self._tables.move_to_end(fps[n])
                    continue
                self._compute(con, plan, n, fps, sample)
            self._evict(con, keep=set(fps.values()))
            return TABLE_PREFIX + fps[node]

    def _compute(self, con: duckdb.DuckDBPyConnection, plan: Plan, n: str, fps: dict[str, str],
                 sample: SampleSpec | None) -> None:
        table = TABLE_PREFIX + fps[n]
        try:
            # Point each input id at its cached table, then run the node's own query only.
            for i in plan.graph.predecessors(n):
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(i)} AS SELECT * FROM "
                            f"{q(TABLE_PREFIX + fps[i])}")
            ctes = plan.node_ctes(n)
            for name, query in ctes[:-1]:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {query.sql('duckdb')}")
            query = ctes[-1][1]
            if n in plan.sources and sample is not None:
                query = self._sampled(plan, n, query, sample)
            postgres = plan.sources[n].postgres if n in plan.sources else None
            if postgres is not None:
                with attached(con, postgres, n):
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(table)} AS "
                                f"{query.sql('duckdb')}")
            else:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {q(table)} AS {query.sql('duckdb')}")
            count = con.execute(f"SELECT count(*) FROM {q(table)}").fetchall()[0][0]
        except duckdb.InterruptException:
            raise ExecutionError(f"preview of '{n}' was cancelled.", step=n) from None
        except duckdb.Error as e:
            what = "source" if n in plan.sources else "step"
            raise ExecutionError(Problem(f"{what} '{n}' failed: {engine_message(e)}",
                                         file=plan.pipeline.file, step=n,
                                         kind="execution")) from None
        self._tables[fps[n]] = int(count)
        self.computed.append(n)

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


def to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", date_format="iso"))
