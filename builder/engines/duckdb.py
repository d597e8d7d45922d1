"""The DuckDB engine: runs with per-step stats, atomic outputs.

Its connections are sandboxed (see :mod:`builder.engines.connection`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from builder import fsio
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
from builder.engines.connection import ConnectionSettings
from builder.engines.postgres import attached, check_outputs
from builder.engines.postgres import write_output as write_postgres
from builder.errors import ExecutionError, Problem, engine_message
from builder.plan.plans import sandbox_dirs
from builder.plan.runspec import CheckSpec, NodeSpec, OutputSpec, RunSpec
from builder.plan.sandbox import q
from builder.plan.targets import refuse_unsafe_target

if TYPE_CHECKING:
    # Not imported at run time: a run from the run cache never loads sqlglot or pydantic.
    from builder.plan.compiler import Plan

TMP_MARK = ".dockyard-tmp-"
CHECK_SAMPLE_ROWS = 5


def cleanup_stale_tmp(final: Path) -> None:
    """Remove temp files of earlier, killed writes of ``final`` (their process is gone)."""
    for f in final.parent.glob(f".{final.name}{TMP_MARK}*"):
        pid = f.name.rsplit("-", 1)[-1].split(".")[0]
        try:
            if pid.isdigit() and int(pid) != os.getpid():
                os.kill(int(pid), 0)
                continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _remove_quietly(f)


def _remove_quietly(path: Path) -> None:
    """Delete a file or folder; one that cannot be deleted is left for the next write."""
    try:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def write_file(con: duckdb.DuckDBPyConnection, relation_sql: str, target: str, fmt: str) -> int:
    """Write a query's rows to ``target`` atomically: temp file in the same folder, then rename.

    A failed or killed run leaves the previous file untouched (and at most a temp file that the
    next write cleans up). A folder is replaced only when a Dockyard Spark run wrote it, and
    nothing is written through a link (see :func:`builder.plan.targets.refuse_unsafe_target`).
    Returns the number of rows written.
    """
    final = Path(target)
    # Checked again here, not only when planned: a cached run is not planned, and a folder or
    # link may have appeared since (builder.plan.targets). Raises an OSError naming the target.
    refuse_unsafe_target(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    cleanup_stale_tmp(final)
    tmp = final.parent / f".{final.name}{TMP_MARK}{os.getpid()}"
    # Parquet: zstd at level 1, the level pyarrow (pandas) writes. On the benchmark's outputs
    # it writes 15% faster than DuckDB's default level 3, for files 4-6% larger.
    options = {"parquet": "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1",
               "csv": "FORMAT csv, HEADER true", "json": "FORMAT json"}[fmt]
    try:
        res = con.execute(f"COPY ({relation_sql}) TO ? ({options})", [str(tmp)]).fetchall()
        rows = int(res[0][0]) if res and res[0] else -1
        _replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return rows


# Parquet has no 128-bit integer: DuckDB writes HUGEINT and UHUGEINT columns as DOUBLE, which
# rounds past the 17th digit (18446744073709551615 -> 1.8446744073709552e19). DECIMAL(38,0) holds
# every value of up to 38 digits exactly (Spark reads it as decimal(38,0), its HUGEINT); a longer
# value stops the write with a message naming the column, never a rounded number.
_WIDE_INTEGERS = ("HUGEINT", "UHUGEINT")
_DECIMAL_38_LIMIT = 10**38


def exact_parquet_sql(con: duckdb.DuckDBPyConnection, relation_sql: str, output: str,
                      file: str | None) -> str:
    """``relation_sql`` with its HUGEINT/UHUGEINT columns as DECIMAL(38,0), for Parquet.

    Raises:
        ExecutionError: naming ``output`` and the column, for such a type nested in a STRUCT,
        LIST or MAP (not rewritten).
    """
    columns = [(str(r[0]), str(r[1])) for r in
               con.execute(f"DESCRIBE ({relation_sql})").fetchall()]
    replaced = []
    for name, typ in columns:
        if typ in _WIDE_INTEGERS:
            limit = f"CAST('{_DECIMAL_38_LIMIT}' AS {typ})"
            too_long = f"{q(name)} >= {limit}" + (
                f" OR {q(name)} <= -{limit}" if typ == "HUGEINT" else "")
            quoted = name.replace("'", "''")
            message = (f"'column ''{quoted}'' holds ' || CAST({q(name)} AS VARCHAR) || ', which "
                       "has more than 38 digits: Parquet has no exact type for it (HUGEINT is "
                       "written as DECIMAL(38,0)). Cast the column to VARCHAR first, or write "
                       "a CSV output.'")
            replaced.append(f"CASE WHEN {too_long} THEN error({message}) ELSE "
                            f"CAST({q(name)} AS DECIMAL(38,0)) END AS {q(name)}")
        elif any(w in typ for w in _WIDE_INTEGERS):
            raise ExecutionError(f"output '{output}': column '{name}' has the type {typ}: "
                                 "Parquet cannot hold a HUGEINT inside it exactly. Cast its "
                                 "values to DECIMAL(38,0) or VARCHAR first, or write a CSV "
                                 "output.", file=file)
    if not replaced:
        return relation_sql
    return f"SELECT * REPLACE ({', '.join(replaced)}) FROM ({relation_sql})"


def _replace(tmp: Path, final: Path) -> None:
    """Put the written file ``tmp`` in place of ``final`` (synced, atomic: :func:`fsio.replace`).

    A folder (a Spark run's output of part files) cannot be renamed over: it is moved aside
    first and deleted after the rename. A process killed in between leaves it as a temp file of
    a dead process, which the next write removes.
    """
    if final.is_dir():
        aside = final.parent / f".{final.name}{TMP_MARK}old-{os.getpid()}"
        _remove_quietly(aside)
        os.replace(final, aside)
        fsio.replace(tmp, final)
        _remove_quietly(aside)
    else:
        fsio.replace(tmp, final)


def run_check(con: duckdb.DuckDBPyConnection, step: str, check: CheckSpec) -> CheckResult:
    """Count a check's failing rows and keep a few of them for the message."""
    failing = check.failing_sql
    n = con.execute(f"SELECT count(*) FROM ({failing}) AS f").fetchall()[0][0]
    sample: list[dict[str, Any]] = []
    if n:
        cur = con.execute(f"SELECT * FROM ({failing}) AS f LIMIT {CHECK_SAMPLE_ROWS}")
        names = [d[0] for d in cur.description or []]
        sample = [dict(zip(names, r)) for r in cur.fetchall()]
    return CheckResult(step=step, check=check.name, on_fail=check.on_fail, failed_rows=int(n),
                       sample=sample)


def check_failure_message(res: CheckResult, what: str = "step") -> str:
    rows = "; ".join(", ".join(f"{k}={v!r}" for k, v in r.items()) for r in res.sample)
    return (f"{what} '{res.step}': check '{res.check}' failed on {res.failed_rows} row"
            f"{'s' if res.failed_rows != 1 else ''}" + (f", e.g. {rows}" if rows else "") + ".")




def _close_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Close a finished run's connection; a failure there changes nothing the run did."""
    try:
        con.close()
    except duckdb.Error:
        pass


class DuckDBEngine(Engine):
    """Runs plans on DuckDB (in memory by default, spilling to disk past ``memory_limit``)."""

    name = "duckdb"

    def __init__(self, *, memory_limit: str | None = None, threads: int | None = None,
                 temp_directory: str | None = None, sandbox: bool = True,
                 extra_dirs: Iterable[str | Path] = (), pipeline_steps: bool = True) -> None:
        self.settings = ConnectionSettings(
            memory_limit=memory_limit, threads=threads, temp_directory=temp_directory,
            sandbox=sandbox, extra_dirs=tuple(str(d) for d in extra_dirs))
        # True: a step read by exactly one other step, with no checks and no output, becomes a
        # view, so DuckDB runs the chain as one query (columns nobody reads are never computed
        # or stored) - but such steps report no row count.
        self.pipeline_steps = pipeline_steps

    def connect(self, plan: Plan) -> duckdb.DuckDBPyConnection:
        """A connection allowed the folders ``plan`` reads and writes."""
        return self.settings.connect(sandbox_dirs(plan))

    # ---- running -----------------------------------------------------------------------
    def run(self, spec: RunSpec, progress: ProgressFn | None = None, *,
            staging: StagingWriter | None = None, result: RunResult | None = None
            ) -> RunResult:
        """Run a rendered plan (from ``RunSpec.from_plan`` or the run cache)."""
        outputs = {o.step: o for o in spec.outputs}
        file = spec.pipeline.file
        result = RunResult() if result is None else result
        started = time.perf_counter()
        con = self.settings.connect(spec.sandbox_dirs)
        try:
            check_outputs(spec.outputs)  # driver and variables there before any step runs
            streamed: set[str] = set()  # outputs whose step runs while its file is written
            for node in spec.nodes:
                if not node.source and progress:
                    progress("start", node.id, None)
                materialize = self._materialize(node, outputs)
                if node.id in outputs and not materialize:
                    streamed.add(node.id)
                stat = self._compute(con, file, node, result, materialize=materialize)
                if not node.source:
                    result.steps.append(stat)
                    if progress:
                        progress("done", node.id, stat)
            for out in spec.outputs:
                if progress:
                    progress("write", out.step, None)
                result.outputs.append(self.write_output(
                    con, spec, out, streamed=out.step in streamed, staging=staging))
        except duckdb.Error as e:
            raise ExecutionError(Problem(f"{engine_message(e)}", file=file,
                                         step=getattr(e, "_dy_node", None),
                                         kind="execution")) from None
        finally:
            result.seconds = time.perf_counter() - started
            _close_quietly(con)  # frees the run's memory
        return result

    def _materialize(self, node: NodeSpec, outputs: dict[str, OutputSpec]) -> bool:
        """Steps become tables; sources stay views (read once per consumer, as hand SQL does).

        With ``pipeline_steps``, only steps that need to be tables are: steps read more than
        once (by two steps, or twice by one), steps that a check queries (expect's checks query
        its input, other patterns' their own result), and staging outputs (the warehouse writer
        reads them more than once). A step read by one step, or only by its output file, is
        streamed into it: COPY runs its query once.
        """
        if node.source:
            return node.postgres is not None  # its Arrow stream can be read only once
        if not self.pipeline_steps:
            return True
        if node.checked or node.side:
            return True
        if node.id in outputs:
            out = outputs[node.id]
            return out.staging or out.postgres is not None or node.consumers != 0
        return node.consumers != 1

    def _compute(self, con: duckdb.DuckDBPyConnection, file: str | None, node: NodeSpec,
                 result: RunResult, materialize: bool) -> StepStat:
        t0 = time.perf_counter()
        what = "source" if node.source else "step"
        try:
            for name, sql in node.ctes[:-1]:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {sql}")
            sql = node.ctes[-1][1]
            if node.postgres is not None:
                with attached(con, node.postgres, node.id):
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(node.id)} AS {sql}")
                rows = con.execute(f"SELECT count(*) FROM {q(node.id)}").fetchall()[0][0]
            elif materialize:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {q(node.id)} AS {sql}")
                rows = con.execute(f"SELECT count(*) FROM {q(node.id)}").fetchall()[0][0]
            else:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(node.id)} AS {sql}")
                rows = None
        except duckdb.Error as e:
            raise ExecutionError(Problem(f"{what} '{node.id}' failed: {engine_message(e)}",
                                         file=file, step=node.id if what == "step" else None,
                                         kind="execution")) from None
        for check in node.checks:
            try:
                res = run_check(con, node.id, check)
            except duckdb.Error as e:
                raise ExecutionError(Problem(f"{what} '{node.id}': check '{check.name}' cannot "
                                             f"run: {engine_message(e)}", file=file,
                                             step=node.id, kind="execution")) from None
            result.checks.append(res)
            if res.failed_rows and check.on_fail == "error":
                raise ExecutionError(Problem(check_failure_message(res, what), file=file,
                                             step=node.id, kind="execution"))
        return StepStat(node=node.id, rows=None if rows is None else int(rows),
                        seconds=time.perf_counter() - t0)

    def write_output(self, con: duckdb.DuckDBPyConnection, spec: RunSpec, out: OutputSpec,
                     streamed: bool = False,
                     staging: StagingWriter | None = None) -> OutputResult:
        """Write one output (a file, a staging table through ``staging`` as in :meth:`Engine.run`,
        or a PostgreSQL table)."""
        t0 = time.perf_counter()
        file = spec.pipeline.file
        if out.staging:
            if staging is None:
                raise ExecutionError(f"output '{out.step}' publishes a staging table, which only "
                                     "a run with the warehouse writes (dockyard run, or "
                                     "builder.api.run).", file=file)
            return staging(con, out.step)
        if out.postgres is not None:
            rows = write_postgres(con, out, file)
            return OutputResult(output=out.step, target=f"postgres:{out.postgres['table']}",
                                rows=rows, seconds=time.perf_counter() - t0)
        assert out.target is not None
        # Tables do not keep row order (preserve_insertion_order is off for speed): an ordered
        # step is written from its own query, over its already computed inputs.
        relation = out.ordered_sql or f"SELECT * FROM {q(out.step)}"
        try:
            if out.format == "parquet":
                relation = exact_parquet_sql(con, relation, out.step, file)
            rows = write_file(con, relation, out.target, out.format)
        except duckdb.Error as e:
            if streamed and not isinstance(e, (duckdb.IOException, duckdb.PermissionException)):
                # The step itself runs during the write: its failure is the step's.
                raise ExecutionError(Problem(f"step '{out.step}' failed: {engine_message(e)}",
                                             file=file, step=out.step,
                                             kind="execution")) from None
            raise ExecutionError(f"output '{out.step}': cannot write '{out.path}': "
                                 f"{engine_message(e)}", file=file) from None
        except OSError as e:
            raise ExecutionError(f"output '{out.step}': cannot write '{out.path}': "
                                 f"{e.strerror or e}.", file=file) from None
        return OutputResult(output=out.step, target=out.target, rows=rows,
                            seconds=time.perf_counter() - t0)

    # ---- previews ------------------------------------------------------------------------
    def preview(self, plan: Plan, node: str, limit: int = 20) -> PreviewResult:
        # Heavy (pandas, the duckdb package's Python layer): never loaded by a run.
        from builder.engines.preview import Previewer

        with Previewer(settings=self.settings) as pv:
            return pv.preview(plan, node, limit=limit)

