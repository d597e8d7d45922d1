"""The library's front door: what the CLI and the app call.

>>> from builder import api
>>> pipeline = api.load("saved_pipelines/clicks_daily.yaml")   # doctest: +SKIP
>>> result = api.run(pipeline)                                  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from builder.engines import get_engine
from builder.engines.base import PreviewResult, ProgressFn, RunResult
from builder.errors import CompileError, ConfigError, Problem, did_you_mean
from builder.pipeline.model import Pipeline, dump, load, save
from builder.plan.compiler import Plan
from builder.plan.portability import check_portable, render
from builder.runner.pipelines import plan_with, run_pipeline
from builder.warehouse.store import WarehouseStore

__all__ = ["load", "save", "dump", "validate", "compile_plan", "compile_sql", "run", "preview",
           "Pipeline", "Plan"]


def validate(pipeline: Pipeline) -> list[Problem]:
    """Every problem in a pipeline (errors and warnings), each with its location."""
    return plan_with(pipeline, WarehouseStore()).problems


def compile_plan(pipeline: Pipeline, stop_at: str | None = None) -> Plan:
    """A typed plan; raises the collected errors (warnings are kept on the plan)."""
    p = plan_with(pipeline, WarehouseStore(), stop_at=stop_at)
    p.raise_for_errors()
    return p


def compile_sql(pipeline: Pipeline, step: str | None = None, dialect: str = "duckdb") -> str:
    """The SQL computing a step (default: the last step) in a sqlglot dialect."""
    target = step or (pipeline.steps[-1].id if pipeline.steps else None)
    if target is None:
        raise ConfigError("the pipeline has no steps to compile.", file=pipeline.file)
    if target not in pipeline.node_ids() and not target.endswith(".rejected"):
        raise ConfigError(f"--step '{target}' is not a step of this pipeline."
                          + did_you_mean(target, pipeline.node_ids()), file=pipeline.file)
    p = compile_plan(pipeline, stop_at=target)
    if dialect != "duckdb":
        check_portable(p, [target], dialect)
        # The SQL the engine runs: sources as tables, DuckDB semantics spelled out for Spark.
        schemas = {n: c for n in p.needed_for([target]) if (c := p.schema(n)) is not None}
        return render(p.to_query(target, sources_as_tables=True), dialect, pretty=True,
                      inputs=schemas)
    return p.sql(target, dialect=dialect)


def run(pipeline: Pipeline, engine: str = "duckdb", progress: ProgressFn | None = None,
        **engine_options: Any) -> RunResult:
    """Validate, then compute and write every output; the run is recorded in the warehouse."""
    return run_pipeline(pipeline, WarehouseStore(), engine=engine, progress=progress,
                        **engine_options)


def preview(pipeline: Pipeline, step: str, limit: int = 20) -> PreviewResult:
    """First rows, schema and row count of a step (nothing is written)."""
    p = plan_with(pipeline, WarehouseStore(), stop_at=step)
    if step in p.steps and p.steps[step].problems:
        p.raise_for_errors()
    needed = set(p.needed_for([step])) if step in p.graph else set()
    errs = [e for e in p.errors if e.step in needed or e.step is None]
    if errs:
        raise CompileError(errs)
    eng = get_engine("duckdb")
    return eng.preview(p, step, limit=limit)
