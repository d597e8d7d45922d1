"""Planning and running pipelines: one by name of engine, and the ones it reads from first.

``--upstream`` runs the pipelines that publish the staging tables a pipeline reads, producers
first; the dependencies are found in :mod:`builder.plan.dependencies`.
"""

from __future__ import annotations

from typing import Any, TextIO

from builder.engines import get_engine
from builder.engines.base import ProgressFn, RunResult
from builder.errors import ExecutionError, PipelineError
from builder.pipeline.model import Pipeline, load
from builder.plan.compiler import Plan, plan
from builder.plan.dependencies import upstream_files
from builder.plan.incremental import reading_watermarks
from builder.plan.runspec import RunSpec
from builder.runner.run import RunStore, run


def plan_with(pipeline: Pipeline, store: RunStore | None, *,
              stop_at: str | None = None) -> Plan:
    """The plan of ``pipeline``, its incremental sources filtered on the watermarks ``store``
    keeps (none: read in full). Problems are collected on the plan, not raised."""
    if store is None:
        return plan(pipeline, stop_at=stop_at)
    with reading_watermarks(store):
        return plan(pipeline, stop_at=stop_at)


def run_pipeline(pipeline: Pipeline, store: RunStore | None, engine: str = "duckdb",
                 progress: ProgressFn | None = None, **engine_options: Any) -> RunResult:
    """Plan ``pipeline`` (raising its errors), then run it on the engine named ``engine``
    (options as :func:`builder.engines.get_engine` takes them), recorded in ``store``."""
    spec = RunSpec.from_plan(plan_with(pipeline, store))
    eng = get_engine(engine, **engine_options)
    try:
        return run(eng, spec, store, progress=progress)
    finally:
        eng.close()


def run_upstream(pipeline: Pipeline, store: RunStore | None, engine: str = "duckdb",
                 out: TextIO | None = None) -> None:
    """Run every upstream pipeline (dependency order) before ``pipeline``."""
    for f in upstream_files(pipeline):
        if out is not None:
            print(f"upstream: running {f}", file=out, flush=True)
        try:
            run_pipeline(load(f), store, engine=engine)
        except PipelineError as e:
            raise ExecutionError(f"upstream pipeline '{f.name}' failed: "
                                 f"{e.problems[0].message if e.problems else e}") from None
