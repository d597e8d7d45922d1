"""The Spark engine: runs a plan's views on Spark, persisting what is read more than once."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import time
import uuid
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sqlglot import exp

from builder.engines.base import (
    CheckResult,
    Engine,
    OutputResult,
    PreviewResult,
    ProgressFn,
    RunResult,
    StagingWriter,
    StepStat,
)
from builder.engines.connection import connect
from builder.engines.duckdb import CHECK_SAMPLE_ROWS, TMP_MARK, check_failure_message
from builder.engines.spark.errors import USER_RAISED, SparkEngineError, first_line
from builder.engines.spark.readers import read_spec
from builder.engines.spark.session import PARITY_CONF, spark_session
from builder.engines.spark.types import bq, same_type, spark_schema
from builder.engines.spark.writes import atomic_dir, count_written, writer
from builder.errors import Problem
from builder.pipeline.model import Output
from builder.pipeline.project import find_project
from builder.plan.compiler import Plan
from builder.plan.portability import check_portable, input_schemas, render
from builder.plan.postgres import refuse_on
from builder.plan.runspec import RunSpec
from builder.plan.sandbox import file_identity, q, sandbox_dirs_for_paths
from builder.plan.schema import describe_source
from builder.plan.types import ColumnInfo
from patterns.base import Check

_VIEW_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def view_name(node: str) -> str:
    """The temporary view holding a node: its id, or a safe name for ids like 'x.rejected'."""
    if _VIEW_RE.match(node):
        return node
    digest = hashlib.sha1(node.encode()).hexdigest()[:8]
    return "_dy_" + re.sub(r"\W", "_", node) + "_" + digest


def rename_tables(query: exp.Query, names: dict[str, str]) -> exp.Query:
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
    """

    name = "spark"

    def __init__(self, master: str | None = None, conf: dict[str, str] | None = None, *,
                 stop_session: bool = False) -> None:
        self.master = master
        self.conf = dict(conf or {})
        self.stop_session = stop_session
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
                    sql = render(rename_tables(query, names), "spark",
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
                    f"{what} '{node}' cannot run on Spark: {first_line(e)}",
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
        casts = [not same_type(f.dataType, t.dataType)
                 for f, t in zip(df.schema.fields, target.fields)]
        if not renamed and not any(casts):
            return df
        df = df.toDF(*[c.name for c in columns])
        return df.select(*[F.col(bq(t.name)).cast(t.dataType).alias(t.name) if cast
                           else F.col(bq(t.name)) for t, cast in zip(target.fields, casts)])

    # ---- running -------------------------------------------------------------------------
    def run(self, spec: RunSpec, progress: ProgressFn | None = None, *,
            staging: StagingWriter | None = None, result: RunResult | None = None
            ) -> RunResult:
        """Run a spec made from a plan (Spark runs the plan's trees, not the DuckDB SQL)."""
        plan = spec.plan
        if plan is None:
            raise SparkEngineError("the Spark engine runs a freshly planned pipeline, not one "
                                   "from the run cache.", file=spec.pipeline.file)
        outputs = spec.models
        self.check(plan, list(outputs))  # refuse before Spark starts
        needed = plan.needed_for(list(outputs))
        for sid in needed:
            if sid in plan.sources:
                read_spec(plan, sid)  # unsupported reader options are refused up front
        result = RunResult() if result is None else result
        started = time.perf_counter()
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
                res = self.write_output(spark, plan, out, frames[out.step], staging)
                result.outputs.append(res)
                st = stats.get(out.step)
                if st is not None and st.rows is None and out.path:
                    st.rows = res.rows
        except PySparkException as e:
            raise SparkEngineError(Problem(f"Spark failed: {first_line(e)}",
                                           file=plan.pipeline.file, kind="execution")) from None
        except KeyboardInterrupt:
            spark.sparkContext.cancelJobGroup(group)
            raise
        finally:
            result.seconds = time.perf_counter() - started
            for df in persisted:
                df.unpersist()
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
                df.persist(StorageLevel.MEMORY_AND_DISK)
                persisted.append(df)
                rows = df.count()
            for check in checks:
                res = self._run_check(df.sparkSession, plan, node, check)
                result.checks.append(res)
                if res.failed_rows and check.on_fail == "error":
                    raise SparkEngineError(Problem(check_failure_message(res, what),
                                                   file=plan.pipeline.file, step=node,
                                                   kind="execution"))
        except PySparkException as e:
            raise SparkEngineError(Problem(f"{what} '{node}' failed: {first_line(e)}",
                                           file=plan.pipeline.file,
                                           step=node if what == "step" else None,
                                           kind="execution")) from None
        return StepStat(node=node, rows=rows, seconds=time.perf_counter() - t0)

    def _run_check(self, spark: SparkSession, plan: Plan, node: str, check: Check) -> CheckResult:
        names = {n: view_name(n) for n in plan.graph.nodes if view_name(n) != n}
        failing = spark.sql(render(rename_tables(check.failing, names), "spark",
                                   inputs=input_schemas(plan, node)))
        n = failing.count()
        sample: list[dict[str, Any]] = []
        if n:
            sample = [r.asDict() for r in failing.limit(CHECK_SAMPLE_ROWS).collect()]
        return CheckResult(step=node, check=check.name, on_fail=check.on_fail, failed_rows=int(n),
                           sample=sample)

    # ---- outputs -------------------------------------------------------------------------
    def write_output(self, spark: SparkSession, plan: Plan, out: Output, df: DataFrame,
                     staging: StagingWriter | None = None) -> OutputResult:
        """Write one output atomically (temp directory, then rename); returns its row count.
        ``staging`` writes staging outputs (see :meth:`Engine.run`)."""
        t0 = time.perf_counter()
        if out.staging:
            if staging is None:
                raise SparkEngineError(f"output '{out.step}' publishes a staging table, which "
                                       "only a run with the warehouse writes (dockyard run, or "
                                       "builder.api.run).", file=plan.pipeline.file)
            return self._write_staging(plan, out, df, staging, t0)
        assert out.path is not None
        target = plan.pipeline.resolve(out.path)
        fmt = out.resolved_format or "parquet"
        try:
            with atomic_dir(spark, target, fmt) as tmp:
                writer(df, fmt).save(tmp)
            # Counted once in place: Spark's readers skip folders named like the temp one.
            rows = count_written(spark, target, fmt, df)
        except PySparkException as e:
            first = first_line(e)
            if first.startswith(USER_RAISED):
                # error() in a step (e.g. scd2's repeated key) fails while Spark writes.
                raise SparkEngineError(Problem(
                    f"step '{out.step}' failed: {first[len(USER_RAISED):].strip()}",
                    file=plan.pipeline.file, step=out.step, kind="execution")) from None
            raise SparkEngineError(f"output '{out.step}': cannot write '{out.path}': "
                                   f"{first}", file=plan.pipeline.file) from None
        except OSError as e:
            raise SparkEngineError(f"output '{out.step}': cannot write '{out.path}': "
                                   f"{e.strerror or e}.", file=plan.pipeline.file) from None
        return OutputResult(output=out.step, target=target, rows=rows,
                            seconds=time.perf_counter() - t0)

    def _write_staging(self, plan: Plan, out: Output, df: DataFrame, staging: StagingWriter,
                       t0: float) -> OutputResult:
        """Spark writes parquet parts; the warehouse's DuckDB writer publishes the table."""
        folder = find_project(plan.pipeline.path).staging_dir
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{out.staging}.spark{TMP_MARK}{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            writer(df, "parquet").save(str(tmp))
            con = connect([str(folder.resolve()) + os.sep])
            try:
                parts = str(tmp / "*.parquet").replace("'", "''")
                con.execute(f"CREATE TEMP VIEW {q(out.step)} AS SELECT * FROM "
                            f"read_parquet('{parts}')")
                res = staging(con, out.step)
            finally:
                con.close()
        except PySparkException as e:
            raise SparkEngineError(f"output '{out.step}' (staging table '{out.staging}'): "
                                   f"cannot write: {first_line(e)}",
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
        t0 = time.perf_counter()
        df = self.frame(plan, node)
        try:
            rows = df.limit(int(limit)).collect()
            count = df.count()
        except PySparkException as e:
            raise SparkEngineError(Problem(f"'{node}' failed: {first_line(e)}",
                                           file=plan.pipeline.file, step=node,
                                           kind="execution")) from None
        columns = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
        frame = pd.DataFrame.from_records([tuple(r) for r in rows],
                                          columns=[c for c, _ in columns])
        return PreviewResult(node=node, columns=columns, rows=frame, row_count=int(count),
                             seconds=time.perf_counter() - t0)

    def fetch(self, plan: Plan, node: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """Every row of ``node`` as Python values; zoned timestamps come back in UTC."""
        df = self.frame(plan, node)
        zoned = [isinstance(f.dataType, T.TimestampType) for f in df.schema.fields]
        if any(zoned):  # PySpark would convert them to the Python process's local time
            df = df.select(*[F.col(bq(f.name)).cast(T.TimestampNTZType()).alias(f.name) if z
                             else F.col(bq(f.name)) for f, z in zip(df.schema.fields, zoned)])
        columns = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
        rows = []
        for r in df.collect():
            rows.append(tuple(v.replace(tzinfo=dt.timezone.utc) if z and v is not None else v
                              for v, z in zip(r, zoned)))
        return columns, rows
