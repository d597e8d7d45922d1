"""The DuckDB engine: sandboxed connections, runs with per-step stats, atomic outputs.

Every connection that runs user SQL is sandboxed: it can read and write only the folders the
pipeline declares (sources, outputs, the warehouse, the spill folder); extensions are never
installed or loaded on the fly; and the configuration is locked so a query cannot undo any of it.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from builder.compiler import Plan, engine_message
from builder.engines.base import (
    CheckResult,
    Engine,
    OutputResult,
    PreviewResult,
    ProgressFn,
    RunResult,
    StepStat,
)
from builder.errors import ExecutionError, Problem
from builder.schema import source_dir
from patterns.base import Check, ident

if TYPE_CHECKING:
    from builder.model import Output

TMP_MARK = ".dockyard-tmp-"
CHECK_SAMPLE_ROWS = 5


def q(name: str) -> str:
    """A quoted DuckDB identifier (rendered by sqlglot, so any character is safe)."""
    return ident(name).sql("duckdb")


def sandbox_dirs(plan: Plan, extra: Iterable[str | Path] = ()) -> list[str]:
    """Folders a pipeline may touch: its source folders, output folders and ``extra``."""
    pipeline = plan.pipeline
    dirs: list[Path] = []
    for src in pipeline.sources.values():
        if src.path and "://" not in src.path:
            dirs.append(source_dir(pipeline.resolve(src.path)))
    for sp in plan.sources.values():
        dirs.extend(source_dir(p) for p in sp.paths if "://" not in p)
    for out in pipeline.outputs.values():
        if out.path:
            dirs.append(Path(pipeline.resolve(out.path)).parent)
        elif out.staging:
            from builder.project import find_project

            dirs.append(find_project(pipeline.path).staging_dir)
    dirs.extend(Path(d) for d in extra)
    return _normalise_dirs(dirs)


def sandbox_dirs_for_paths(paths: Iterable[str]) -> list[str]:
    """The sandbox folders for reading these source paths (globs allowed)."""
    return _normalise_dirs([source_dir(p) for p in paths if "://" not in p])


def _normalise_dirs(dirs: list[Path]) -> list[str]:
    seen: list[str] = []
    for d in dirs:
        # The folder as declared and as resolved (a data folder may itself be a link).
        for form in (Path(os.path.abspath(d)), Path(d).resolve()):
            text = str(form).rstrip(os.sep) + os.sep
            if text not in seen:
                seen.append(text)
    return seen


def connect(allowed_dirs: list[str], *, database: str = ":memory:",
            memory_limit: str | None = None, threads: int | None = None,
            temp_directory: str | None = None, sandbox: bool = True,
            settings: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection limited to ``allowed_dirs``, extensions off, configuration locked."""
    config: dict[str, Any] = {"autoinstall_known_extensions": "false",
                              "autoload_known_extensions": "false"}
    con = duckdb.connect(database, config=config)
    con.execute("SET TimeZone='UTC'")
    if memory_limit:
        con.execute("SET memory_limit=?", [memory_limit])
    if threads:
        con.execute(f"SET threads={int(threads)}")
    tmp = temp_directory or os.path.join(tempfile.gettempdir(), f"dockyard-spill-{os.getpid()}")
    con.execute("SET temp_directory=?", [tmp])
    con.execute("SET preserve_insertion_order=false")
    for key, value in (settings or {}).items():
        con.execute(f"SET {q(key)}=?", [value])
    if sandbox:
        dirs = [*allowed_dirs, str(Path(tmp).resolve()) + os.sep]
        con.execute("SET allowed_directories=?", [dirs])
        con.execute("SET enable_external_access=false")
        con.execute("SET lock_configuration=true")
    return con


def _cleanup_stale_tmp(final: Path) -> None:
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
        try:
            if f.is_dir():
                import shutil

                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink()
        except OSError:
            pass


def write_file(con: duckdb.DuckDBPyConnection, relation_sql: str, target: str, fmt: str) -> int:
    """Write a query's rows to ``target`` atomically: temp file in the same folder, then rename.

    A failed or killed run leaves the previous file untouched (and at most a temp file that the
    next write cleans up). Returns the number of rows written.
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    _cleanup_stale_tmp(final)
    tmp = final.parent / f".{final.name}{TMP_MARK}{os.getpid()}"
    options = {"parquet": "FORMAT parquet, COMPRESSION zstd", "csv": "FORMAT csv, HEADER true",
               "json": "FORMAT json"}[fmt]
    try:
        res = con.execute(f"COPY ({relation_sql}) TO ? ({options})", [str(tmp)]).fetchall()
        rows = int(res[0][0]) if res and res[0] else -1
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if final.is_dir():
            # A Spark run wrote this output as a folder of part files: move it aside first
            # (rename is atomic; the old folder is deleted only after the new file is in place).
            old = final.parent / f".{final.name}{TMP_MARK}old-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return rows


def run_check(con: duckdb.DuckDBPyConnection, step: str, check: Check) -> CheckResult:
    """Count a check's failing rows and keep a few of them for the message."""
    failing = check.failing.sql(dialect="duckdb")
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




def record_run_safely(plan: Plan, result: RunResult, error: BaseException | None, engine: str,
                      started: dt.datetime) -> None:
    """Record the run in the warehouse; a history problem is a warning, never the run's fate."""
    from builder.errors import PipelineError
    from builder.warehouse import record_run

    try:
        record_run(plan, result, error, engine, started)
    except (duckdb.Error, OSError, PipelineError) as e:
        sys.stderr.write(f"dockyard: warning: run history not recorded: "
                         f"{str(e).splitlines()[0]}\n")


class DuckDBEngine(Engine):
    """Runs plans on DuckDB (in memory by default, spilling to disk past ``memory_limit``)."""

    name = "duckdb"

    def __init__(self, *, memory_limit: str | None = None, threads: int | None = None,
                 temp_directory: str | None = None, sandbox: bool = True,
                 extra_dirs: Iterable[str | Path] = (), record: bool = True,
                 pipeline_steps: bool = True) -> None:
        self.memory_limit = memory_limit
        # True: a step read by exactly one other step, with no checks and no output, becomes a
        # view, so DuckDB runs the chain as one query (columns nobody reads are never computed
        # or stored) - but such steps report no row count.
        self.pipeline_steps = pipeline_steps
        self.threads = threads
        self.temp_directory = temp_directory
        self.sandbox = sandbox
        self.extra_dirs = list(extra_dirs)
        self.record = record  # keep run history in the project's warehouse
        self.lock_wait = 0.0  # seconds a second run of the same pipeline waits before refusing
        self._run_started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

    def connect(self, plan: Plan) -> duckdb.DuckDBPyConnection:
        return connect(sandbox_dirs(plan, self.extra_dirs), memory_limit=self.memory_limit,
                       threads=self.threads, temp_directory=self.temp_directory,
                       sandbox=self.sandbox)

    # ---- running -----------------------------------------------------------------------
    def run(self, plan: Plan, outputs: dict[str, Output] | None = None,
            progress: ProgressFn | None = None) -> RunResult:
        plan.raise_for_errors()
        from builder.runlock import run_lock

        with run_lock(plan.pipeline, wait=self.lock_wait):
            return self._run(plan, outputs, progress)

    def _run(self, plan: Plan, outputs: dict[str, Output] | None,
             progress: ProgressFn | None) -> RunResult:
        outputs = plan.pipeline.outputs if outputs is None else outputs
        result = RunResult()
        started = time.perf_counter()
        self._run_started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        error: BaseException | None = None
        con = self.connect(plan)
        try:
            needed = plan.needed_for(list(outputs))
            consumers = {n: len(list(plan.graph.successors(n))) for n in needed}
            streamed: set[str] = set()  # outputs whose step runs while its file is written
            steps_total = sum(1 for n in needed if n not in plan.sources)
            for node in needed:
                if node not in plan.sources and progress:
                    progress("start", node, None)
                materialize = self._materialize(plan, node, outputs, consumers)
                if node in outputs and not materialize:
                    streamed.add(node)
                stat = self._compute(con, plan, node, result, materialize=materialize)
                if node not in plan.sources:
                    result.steps.append(stat)
                    if progress:
                        progress("done", node, stat)
            del steps_total
            for oid, out in outputs.items():
                if progress:
                    progress("write", oid, None)
                result.outputs.append(self.write_output(con, plan, out,
                                                        streamed=out.step in streamed))
        except duckdb.Error as e:
            error = ExecutionError(Problem(f"{engine_message(e)}", file=plan.pipeline.file,
                                           step=getattr(e, "_dy_node", None), kind="execution"))
            raise error from None
        except BaseException as e:
            error = e
            raise
        finally:
            result.seconds = time.perf_counter() - started
            con.close()
            if self.record:
                record_run_safely(plan, result, error, self.name, self._run_started)
        return result

    def _materialize(self, plan: Plan, node: str, outputs: dict[str, Output],
                     consumers: dict[str, int]) -> bool:
        """Steps become tables; sources stay views (read once per consumer, as hand SQL does).

        With ``pipeline_steps``, only steps that need to be tables are: steps read more than
        once, steps that checks read (a step's checks query the step and its inputs), and
        staging outputs (the warehouse writer reads them more than once). A step read by one
        step, or only by its output file, is streamed into it: COPY runs its query once.
        """
        if node in plan.sources:
            return False
        if not self.pipeline_steps:
            return True
        readers = [n for n in plan.graph.successors(node) if n in plan.steps]
        checked = any(plan.steps[n].checks for n in [node, *readers] if n in plan.steps)
        if checked or node in plan.side_nodes:
            return True
        if node in outputs:
            return outputs[node].staging is not None or consumers.get(node, 0) != 0
        return consumers.get(node, 0) != 1

    def _compute(self, con: duckdb.DuckDBPyConnection, plan: Plan, node: str,
                 result: RunResult, materialize: bool) -> StepStat:
        t0 = time.perf_counter()
        try:
            ctes = plan.node_ctes(node)
            for name, query in ctes[:-1]:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {query.sql('duckdb')}")
            sql = ctes[-1][1].sql(dialect="duckdb")
            if materialize:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {q(node)} AS {sql}")
                rows = con.execute(f"SELECT count(*) FROM {q(node)}").fetchall()[0][0]
            else:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {q(node)} AS {sql}")
                rows = None
        except duckdb.Error as e:
            what = "source" if node in plan.sources else "step"
            raise ExecutionError(Problem(f"{what} '{node}' failed: {engine_message(e)}",
                                         file=plan.pipeline.file,
                                         step=node if what == "step" else None,
                                         kind="execution")) from None
        checks = plan.sources[node].checks if node in plan.sources else (
            plan.steps[node].checks if node in plan.steps else [])
        for check in checks:
            try:
                res = run_check(con, node, check)
            except duckdb.Error as e:
                what = "source" if node in plan.sources else "step"
                raise ExecutionError(Problem(f"{what} '{node}': check '{check.name}' cannot run: "
                                             f"{engine_message(e)}", file=plan.pipeline.file,
                                             step=node, kind="execution")) from None
            result.checks.append(res)
            if res.failed_rows and check.on_fail == "error":
                what = "source" if node in plan.sources else "step"
                raise ExecutionError(Problem(check_failure_message(res, what),
                                             file=plan.pipeline.file, step=node,
                                             kind="execution"))
        return StepStat(node=node, rows=None if rows is None else int(rows),
                        seconds=time.perf_counter() - t0)

    def write_output(self, con: duckdb.DuckDBPyConnection, plan: Plan, out: Output,
                     streamed: bool = False) -> OutputResult:
        t0 = time.perf_counter()
        if out.staging:
            from builder.warehouse import write_staging

            return write_staging(con, plan, out, self._run_started)
        assert out.path is not None
        target = plan.pipeline.resolve(out.path)
        fmt = out.resolved_format or "parquet"
        relation = f"SELECT * FROM {q(out.step)}"
        query = plan.steps[out.step].query if out.step in plan.steps else None
        if query is not None and query.args.get("order") is not None:
            # Tables do not keep row order (preserve_insertion_order is off for speed): an
            # ordered step is written from its own query, over its already computed inputs.
            relation = query.sql(dialect="duckdb")
        try:
            rows = write_file(con, relation, target, fmt)
        except duckdb.Error as e:
            if streamed and not isinstance(e, (duckdb.IOException, duckdb.PermissionException)):
                # The step itself runs during the write: its failure is the step's.
                raise ExecutionError(Problem(f"step '{out.step}' failed: {engine_message(e)}",
                                             file=plan.pipeline.file, step=out.step,
                                             kind="execution")) from None
            raise ExecutionError(f"output '{out.step}': cannot write '{out.path}': "
                                 f"{engine_message(e)}", file=plan.pipeline.file) from None
        except OSError as e:
            raise ExecutionError(f"output '{out.step}': cannot write '{out.path}': "
                                 f"{e.strerror or e}.", file=plan.pipeline.file) from None
        return OutputResult(output=out.step, target=target, rows=rows,
                            seconds=time.perf_counter() - t0)

    # ---- previews ------------------------------------------------------------------------
    def preview(self, plan: Plan, node: str, limit: int = 20) -> PreviewResult:
        from builder.preview import Previewer

        with Previewer(engine=self) as pv:
            return pv.preview(plan, node, limit=limit)


def relation_sql(query: exp.Query) -> str:
    return query.sql(dialect="duckdb")
