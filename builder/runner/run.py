"""One run of a pipeline: run lock -> engine -> outputs -> run history and staging tables.

The engine only executes the run spec (:class:`builder.engines.base.Engine`). Around it, the
runner holds the pipeline's run lock (a second run of the same pipeline refuses, see
:mod:`builder.runner.lock`), hands the engine a writer for staging outputs and records the run,
failed or not, when the engine is done. Both go to the warehouse, which sits above the runner:
it reaches the runner as a :class:`RunStore` that the caller (the CLI, the app, the library
front door) passes in.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from builder.engines.base import Engine, OutputResult, ProgressFn, RunResult, StagingWriter
from builder.errors import PipelineError
from builder.locks import WaitTimeout
from builder.plan.runspec import PipelineRef, RunSpec
from builder.runner.lock import run_lock

if TYPE_CHECKING:
    # Types only: a run from the run cache never imports the planner (sqlglot, pydantic).
    from builder.pipeline.model import Output
    from builder.pipeline.project import Project
    from builder.plan.compiler import Plan


class RunStore(Protocol):
    """What a run needs of the warehouse (:class:`builder.warehouse.store.WarehouseStore`):
    the watermarks of incremental sources for planning (it is a
    :class:`builder.plan.incremental.WatermarkReader`), staging tables and the run history."""

    def read_watermark(self, project: Project, pipeline: str,
                       source: str) -> tuple[str, str] | None:
        """(column, watermark) the last successful run of ``pipeline`` stored for ``source``."""

    def write_staging(self, con: Any, plan: Plan, output: Output,
                      started: dt.datetime) -> OutputResult:
        """Publish ``output``'s step (a table or view on ``con``) as its staging table."""

    def record_run(self, pipeline: PipelineRef, plan: Plan | None, result: RunResult,
                   error: BaseException | None, engine: str, started: dt.datetime) -> str:
        """Append the run to the history (and, when it succeeded, register its staging tables
        and save its watermarks); returns the run id."""


def run(engine: Engine, spec: RunSpec, store: RunStore | None, *,
        progress: ProgressFn | None = None, lock_wait: float = 0.0) -> RunResult:
    """Run ``spec`` on ``engine`` under the pipeline's run lock; record it in ``store``.

    ``store`` None runs without a warehouse: nothing is recorded and a staging output fails
    the run. ``lock_wait``: seconds a second run of the same pipeline waits before refusing.
    """
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    result = RunResult()
    with run_lock(spec.pipeline, wait=lock_wait):
        try:
            engine.run(spec, progress, staging=_staging_writer(store, spec, started),
                       result=result)
        except BaseException as e:
            if store is not None:
                record_run_safely(store, spec, result, e, engine.name, started)
            raise
        if store is not None:
            record_run_safely(store, spec, result, None, engine.name, started)
    return result


def _staging_writer(store: RunStore | None, spec: RunSpec,
                    started: dt.datetime) -> StagingWriter | None:
    """The engine's writer of staging outputs: the warehouse's, with the plan they need."""
    plan = spec.plan
    if store is None or plan is None:
        return None  # a spec from the run cache has no staging output (never cached)

    def write(con: Any, step: str) -> OutputResult:
        return store.write_staging(con, plan, spec.models[step], started)

    return write


def record_run_safely(store: RunStore, spec: RunSpec, result: RunResult,
                      error: BaseException | None, engine: str, started: dt.datetime) -> None:
    """Record the run in the warehouse, waiting for it while another run records its own.

    A warehouse still busy after the wait (``DOCKYARD_WAREHOUSE_WAIT``) fails a run that
    succeeded, so that no run is left out of the history without its exit code saying so; its
    outputs stay written. A failed run keeps its own error, and the history problem becomes a
    warning. Other history problems (a read-only disk, say) are warnings too.
    """
    pipeline = spec.pipeline
    try:
        store.record_run(pipeline, spec.plan, result, error, engine, started)
    except WaitTimeout as e:
        first = e.problems[0].message if e.problems else str(e)
        if error is None:
            raise WaitTimeout(f"the run's outputs are written, but the run is not recorded: "
                              f"{first}", file=pipeline.file) from None
        sys.stderr.write(f"dockyard: warning: run history not recorded: {first}\n")
    except (duckdb.Error, OSError, PipelineError) as e:
        sys.stderr.write(f"dockyard: warning: run history not recorded: "
                         f"{str(e).splitlines()[0]}\n")
