"""``dockyard``: validate, run, preview and compile pipelines; list patterns; start the app.

Exit codes: 0 success, 2 invalid pipeline or arguments, 1 failure while running. Problems go to
stderr, one line each, never as a traceback. This module must not import streamlit (start-up
time of ``dockyard validate`` matters to schedulers and editors).

The planner (sqlglot, networkx, pydantic: 0.5 s of imports) and the pipeline model (PyYAML) are
imported inside the commands that use them: a run from the run cache never loads them, which is
the cache's whole gain.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn

from builder.engines import get_engine
from builder.errors import ConfigError, ExecutionError, PipelineError, Problem, did_you_mean
from builder.locks import wait_bound
from builder.plan.runspec import RunSpec
from builder.runner import cache as runcache
from builder.runner import run as runner
from builder.warehouse.store import WarehouseStore

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"dockyard: {message}\n")
        raise SystemExit(EXIT_INVALID)


MAX_PREVIEW_ROWS = 1_000_000


def _row_limit(text: str) -> int:
    """``--limit``: a row count DuckDB's LIMIT takes (a 20-digit one overflowed inside it)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_PREVIEW_ROWS:
        raise argparse.ArgumentTypeError(
            f"'{text[:30]}' is not a row count: give a whole number from 0 to "
            f"{MAX_PREVIEW_ROWS:,}.")
    return n


def _parse_sets(items: Sequence[str]) -> dict[str, Any]:
    from builder.pipeline.yamlio import parse_scalar  # PyYAML: not for a run from the cache

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set '{item}': write it as name=value, e.g. --set min_day=2024-01-01.")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = parse_scalar(v)
        except ConfigError as e:
            raise ConfigError(f"--set '{k.strip()}': {e.problems[0].message}") from None
    return out


def _load(args: argparse.Namespace) -> Any:
    from builder.pipeline.model import load  # PyYAML: not for a run from the cache

    pipeline = load(args.file)
    sets = _parse_sets(getattr(args, "set", None) or [])
    return pipeline.with_params(sets) if sets else pipeline


def _print_problems(problems: Sequence[Any], stream: Any = None) -> None:
    stream = stream or sys.stderr
    for p in problems[:20]:
        print(str(p), file=stream)
    if len(problems) > 20:
        print(f"... and {len(problems) - 20} more", file=stream)


# ---- commands ----------------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def cmd_validate(args: argparse.Namespace) -> int:
    pipeline = _load(args)
    from builder.runner.pipelines import plan_with

    p = plan_with(pipeline, WarehouseStore())
    warnings = _shared_staging(pipeline) if not p.errors else []
    _print_problems([*p.problems, *warnings])
    if p.errors:
        return EXIT_INVALID
    counts = [_plural(len(p.steps), "step"), _plural(len(p.sources), "source"),
              _plural(len(p.pipeline.outputs), "output")]
    if p.warnings or warnings:
        counts.append(_plural(len(p.warnings) + len(warnings), "warning"))
    print(f"{args.file}: valid ({', '.join(counts)})")
    return EXIT_OK


def _shared_staging(pipeline: Any) -> list[Any]:
    """Warnings for staging tables that other saved pipelines publish too."""
    if not any(o.staging for o in pipeline.outputs.values()):
        return []  # most pipelines: no need to read the other saved pipelines
    from builder.plan.dependencies import other_publishers  # networkx: not for every command

    return [Problem(f"staging table '{name}' is also published by "
                    + ", ".join(f"'{f}'" for f in files[:3])
                    + (f" and {len(files) - 3} more" if len(files) > 3 else "")
                    + "; their writes wait for each other, but a replace by one drops the "
                    "other's rows. Give each pipeline its own staging table unless both are "
                    "meant to write it.", file=pipeline.file, severity="warning")
            for name, files in other_publishers(pipeline).items()]


class _Progress:
    """A live progress line on a terminal; plain lines when output is not a TTY."""

    def __init__(self, total: int, stream: Any, outputs: Sequence[str] = ()) -> None:
        self.total = total
        self.outputs = set(outputs)
        self.done = 0
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, event: str, node: str, stat: Any) -> None:
        if event == "start" and self.tty:
            bar = "#" * int(20 * self.done / max(self.total, 1))
            self.stream.write(f"\r[{bar:<20}] {self.done}/{self.total} running {node} ...\033[K")
            self.stream.flush()
        elif event == "done":
            self.done += 1
            if stat.rows is None:
                # Streamed into the step or output file that reads it (no table, so no count
                # of its own; an output's count is printed when it is written).
                line = f"step {node}: streamed into " + (
                    "its output" if node in self.outputs else "the next step")
            else:
                line = f"step {node}: {stat.rows:,} rows in {stat.seconds:.2f}s"
            if self.tty:
                self.stream.write("\r\033[K")
            print(f"[{self.done}/{self.total}] {line}", file=self.stream, flush=True)
        elif event == "write":
            print(f"writing output {node} ...", file=self.stream, flush=True)


def _planned_run(args: argparse.Namespace, store: WarehouseStore) -> RunSpec | None:
    """The run spec to run: a DuckDB run comes from the run cache when nothing it was planned
    from changed; otherwise the pipeline is planned (with the warehouse's watermarks), and for
    DuckDB stored. None when the pipeline is invalid (its problems are printed)."""
    sets = list(args.set or [])
    use_cache = args.engine == "duckdb" and not args.upstream and not args.no_cache
    if use_cache:
        cached = runcache.lookup(args.file, sets)
        if cached is not None:
            for w in cached.warnings:
                print(w, file=sys.stderr)
            print("plan: unchanged since the last run (run cache; --no-cache plans afresh)")
            return cached
    pipeline = _load(args)
    from builder.runner.pipelines import plan_with, run_upstream

    if args.upstream:
        run_upstream(pipeline, store, engine=args.engine, out=sys.stdout)
    p = plan_with(pipeline, store)
    _print_problems(p.warnings)
    if p.errors:
        _print_problems(p.errors)
        return None
    spec = RunSpec.from_plan(p)
    if use_cache:
        runcache.store(args.file, pipeline, p, spec, sets)
    return spec


def cmd_run(args: argparse.Namespace) -> int:
    wait_bound()  # a bad DOCKYARD_WAREHOUSE_WAIT stops the run before it starts

    options: dict[str, Any] = {}
    if args.engine == "spark":
        options["master"] = args.master
        bad = [c for c in args.conf or [] if "=" not in c]
        if bad:
            raise ConfigError(f"--conf '{bad[0]}': write it as key=value, e.g. "
                              "--conf spark.sql.shuffle.partitions=8.")
        options["conf"] = dict(c.split("=", 1) for c in args.conf or [])
    else:
        if args.memory_limit:
            options["memory_limit"] = args.memory_limit
        if args.step_stats:
            options["pipeline_steps"] = False
    if args.engine != "spark" and (args.master or args.conf):
        raise ConfigError("--master and --conf go with --engine spark.")
    store = WarehouseStore()
    if args.full_refresh:  # imported only then: a cached run's start-up stays lean
        from builder.plan.incremental import full_refresh

        with full_refresh():
            spec = _planned_run(args, store)
    else:
        spec = _planned_run(args, store)
    if spec is None:
        return EXIT_INVALID
    engine = get_engine(args.engine, **options)
    progress = _Progress(spec.steps_total, sys.stdout, [o.step for o in spec.outputs])
    t0 = time.perf_counter()
    try:
        result = runner.run(engine, spec, store, progress=progress)
    finally:
        engine.close()
    for c in result.checks:
        if c.failed_rows and c.on_fail == "warn":
            print(f"warning: step '{c.step}': check '{c.check}' failed on {c.failed_rows} rows.",
                  file=sys.stderr)
    for o in result.outputs:
        print(f"wrote {o.output}: {o.rows:,} rows -> {o.target}")
    print(f"done in {time.perf_counter() - t0:.2f}s")
    return EXIT_OK


def cmd_preview(args: argparse.Namespace) -> int:
    pipeline = _load(args)
    from builder import api

    res = api.preview(pipeline, args.step, limit=args.limit)
    df = res.rows
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(json.dumps({"step": res.node, "row_count": res.row_count,
                          "columns": [{"name": n, "type": t} for n, t in res.columns],
                          "rows": json.loads(df.to_json(orient="records", date_format="iso"))},
                         indent=2, default=str))
    else:
        import pandas as pd

        with pd.option_context("display.max_columns", 50, "display.width", 200):
            print(df.to_string(index=False) if len(df) else "(no rows)")
        print(f"-- {len(df)} of {res.row_count:,} rows; " + ", ".join(
            f"{n} {t}" for n, t in res.columns))
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    pipeline = _load(args)
    from builder import api

    print(api.compile_sql(pipeline, step=args.step, dialect=args.dialect))
    return EXIT_OK


def cmd_patterns(args: argparse.Namespace) -> int:
    from builder.cli.docs import patterns_json, patterns_table

    if args.format == "json":
        print(json.dumps(patterns_json(), indent=2))
    else:
        print(patterns_table())
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from builder.cli.export import export, write  # sqlglot (the schedule's cron check)

    text = export([Path(f) for f in args.files], args.to, schedule=args.schedule, name=args.name)
    if args.output:
        write(text, Path(args.output))
        print(f"wrote {args.to} file -> {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_ui(args: argparse.Namespace) -> int:
    # The script ships inside the package: the command works from a plain 'pip install' too.
    app = files("builder.ui").joinpath("streamlit_app.py")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", args.address,
           "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
           "--server.headless", "true", "--server.maxUploadSize", "500",
           "--client.toolbarMode", "minimal"]  # .streamlit/config.toml, for installed copies
    print(f"Dockyard app: http://{args.address}:{args.port}", flush=True)
    server = subprocess.Popen(cmd)
    # A scheduler or service manager stops 'dockyard ui' with SIGTERM: the server goes with it
    # (the default SIGTERM action would end this process and leave the server running).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dockyard", description="Build, check and run Dockyard pipelines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_file(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("file", help="pipeline YAML file")
        sp.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="override a pipeline param (value read as YAML: 8, 2024-01-01, text)")
        return sp

    sp = with_file("validate", "check a pipeline and report every problem")
    sp.set_defaults(func=cmd_validate)

    sp = with_file("run", "run a pipeline and write its outputs")
    sp.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    sp.add_argument("--master", help="Spark master URL (with --engine spark)")
    sp.add_argument("--conf", action="append", metavar="KEY=VALUE", help="Spark config")
    sp.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 2GB (spills to disk)")
    sp.add_argument("--step-stats", action="store_true",
                    help="store every step as a table to report its rows and time (slower: "
                         "by default a step read by one other step is streamed into it)")
    sp.add_argument("--upstream", action="store_true",
                    help="first run the pipelines that produce the staging tables this one reads")
    sp.add_argument("--no-cache", action="store_true",
                    help="plan the pipeline afresh: neither use nor store the run cache")
    sp.add_argument("--full-refresh", action="store_true",
                    help="read incremental sources in full, ignoring their watermarks")
    sp.set_defaults(func=cmd_run)

    sp = with_file("preview", "show the first rows of a step (writes nothing)")
    sp.add_argument("step")
    sp.add_argument("--limit", type=_row_limit, default=20,
                    help=f"rows to show, 0 to {MAX_PREVIEW_ROWS:,} (default 20)")
    sp.add_argument("--format", default="table", choices=["table", "csv", "json"])
    sp.set_defaults(func=cmd_preview)

    sp = with_file("compile", "print the SQL of a step as one query")
    sp.add_argument("--step", help="step to compile (default: the last step)")
    sp.add_argument("--dialect", default="duckdb",
                    help="any sqlglot dialect: duckdb, spark, postgres, snowflake, bigquery, ...")
    sp.set_defaults(func=cmd_compile)

    help_ = ("write an Airflow DAG, Dagster definitions or GitHub Actions workflow running the "
             "pipelines (one task each, upstream pipelines first)")
    sp = sub.add_parser("export", help=help_, description=help_)
    sp.add_argument("files", nargs="+", metavar="FILE",
                    help="pipeline YAML files or folders of them; the pipelines publishing the "
                         "staging tables they read are added")
    sp.add_argument("--to", required=True, choices=["airflow", "dagster", "github-actions"])
    sp.add_argument("--schedule", default="0 6 * * *",
                    help="cron expression, 5 fields, UTC (default: '0 6 * * *')")
    sp.add_argument("--name", help="DAG / job / workflow name (default: from the pipelines)")
    sp.add_argument("--output", "-o", metavar="PATH",
                    help="write here (atomically) instead of to stdout; only a file generated "
                         "by 'dockyard export' is overwritten")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("patterns", help="list every pattern with its params")
    sp.add_argument("--format", default="table", choices=["table", "json"])
    sp.set_defaults(func=cmd_patterns)

    sp = sub.add_parser("ui", help="start the browser app (localhost only by default)")
    sp.add_argument("--port", type=int, default=8501)
    sp.add_argument("--address", default="127.0.0.1")
    sp.set_defaults(func=cmd_ui)

    from builder.cli.catalog import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compile" and args.dialect:
        import sqlglot

        if args.dialect not in sqlglot.Dialect.classes:
            sys.stderr.write(f"dockyard: unknown dialect '{args.dialect}'."
                             + (did_you_mean(args.dialect, sqlglot.Dialect.classes) or "")
                             + "\n")
            return EXIT_INVALID
    try:
        return int(args.func(args))
    except ExecutionError as e:
        _print_problems(e.problems)
        return EXIT_FAILED
    except PipelineError as e:
        _print_problems(e.problems)
        return EXIT_INVALID
    except KeyboardInterrupt:
        sys.stderr.write("dockyard: interrupted; outputs written before the interrupt are "
                         "complete, the others were left unchanged.\n")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - never a traceback for a user
        if os.environ.get("DOCKYARD_DEBUG"):
            raise
        sys.stderr.write(f"dockyard: internal error: {type(e).__name__}: {e}. Set "
                         "DOCKYARD_DEBUG=1 for the traceback and please report it.\n")
        return EXIT_FAILED


def entry() -> NoReturn:
    """The ``dockyard`` command: :func:`main`, then exit without the interpreter's teardown.

    Tearing down the modules a run loads (sqlglot, networkx, duckdb, pydantic) takes ~0.2 s,
    a tenth of a small pipeline's whole run, and does nothing a finished command needs: every
    file is written and closed by then, and the streams are flushed here. PySpark stops its
    JVM from an exit hook, so after a Spark run the normal exit is kept.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass
    if "pyspark" in sys.modules:
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    entry()
