"""``dockyard catalog list|show NAME``, ``dockyard lineage NAME.COLUMN`` and ``dockyard runs``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from builder.errors import CompileError, ConfigError, did_you_mean
from builder.pipeline.project import Project, find_project

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def add_commands(sub: Any) -> None:
    cp = sub.add_parser("catalog", help="list or show catalog entries and staging tables")
    cp.add_argument("action", choices=["list", "show"])
    cp.add_argument("name", nargs="?", help="entry or staging table (with show)")
    cp.add_argument("--project", type=Path, help="project folder (default: the current one)")
    cp.add_argument("--format", choices=["table", "json"], default="table")
    cp.set_defaults(func=cmd_catalog)

    lp = sub.add_parser("lineage", help="where a column comes from, down to source columns")
    lp.add_argument("target", help="STAGING_TABLE.COLUMN, or STEP.COLUMN with --pipeline")
    lp.add_argument("--pipeline", type=Path, help="pipeline file whose step is meant")
    lp.add_argument("--project", type=Path)
    lp.set_defaults(func=cmd_lineage)

    rp = sub.add_parser("runs", help="run history of the project's pipelines")
    rp.add_argument("pipeline", nargs="?", help="only this pipeline (by name)")
    rp.add_argument("--limit", type=int, default=20)
    rp.add_argument("--project", type=Path)
    rp.set_defaults(func=cmd_runs)


def _project(args: argparse.Namespace) -> Project:
    return find_project((args.project or Path.cwd()).resolve() / "x.yaml")


def cmd_catalog(args: argparse.Namespace) -> int:
    # Imported here: it loads the pipeline model, which every other command (a cached
    # 'dockyard run' among them) would otherwise pay for at start-up (~25 ms).
    from builder.warehouse.browse import describe, entries

    project = _project(args)
    from builder.pipeline.catalog import load_catalog

    for p in load_catalog(project).problems:
        sys.stderr.write(str(p) + "\n")
    if args.action == "list":
        rows = entries(project)
        if args.format == "json":
            print(json.dumps(rows, indent=2, default=str))
            return EXIT_OK
        if not rows:
            print(f"no catalog entries in {project.catalog_dir} and no staging tables yet")
        for r in rows:
            extra = f"  ({r['rows']} rows, by {r['producer']})" if r["kind"] == "staging" else ""
            print(f"{r['name']:<24} {r['kind']:<8} {r.get('description') or ''}{extra}")
        return EXIT_OK
    if not args.name:
        raise ConfigError("catalog show needs a NAME, e.g. 'dockyard catalog show orders'.")
    info = describe(project, args.name)
    if args.format == "json":
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            if isinstance(value, (dict, list)):
                print(f"{key}:")
                if isinstance(value, dict):
                    for k, v in value.items():
                        print(f"  {k}: {v}")
                for v in value if isinstance(value, list) else []:
                    text = " ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else \
                        ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict) else v
                    print(f"  - {text}")
            else:
                print(f"{key}: {value}")
    return EXIT_OK


def cmd_lineage(args: argparse.Namespace) -> int:
    from builder.pipeline.model import load
    from builder.plan.compiler import plan
    from builder.plan.dependencies import producer_files
    from builder.plan.lineage import render, trace

    if "." not in args.target:
        raise ConfigError(f"lineage target '{args.target}' must be NAME.COLUMN, e.g. "
                          "sessions.session_id.")
    name, column = args.target.split(".", 1)
    if args.pipeline:
        p = plan(load(args.pipeline))
        step = name
    else:
        project = _project(args)
        files = producer_files(project)
        if name not in files:
            raise ConfigError(f"no saved pipeline publishes a staging table '{name}'."
                              + (did_you_mean(name, files) or " Use --pipeline FILE to "
                                 "trace a step of a pipeline."))
        p = plan(load(files[name]))
        out = next(o for o in p.pipeline.outputs.values() if o.staging == name)
        step = out.step
    p.raise_for_errors()
    try:
        lin = trace(p, step, column)
    except CompileError as e:
        raise ConfigError(e.problems[0].message) from None
    print("\n".join(render(lin)))
    return EXIT_OK


def _short(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_runs(args: argparse.Namespace) -> int:
    from builder.warehouse.store import run_history

    rows = run_history(_project(args), args.pipeline, args.limit)
    if not rows:
        print("no runs recorded yet")
    for r in rows:
        secs = (r["ended"] - r["started"]).total_seconds() if r["ended"] else 0.0
        outs = ", ".join(f"{k}: {v['rows']} rows" for k, v in r["outputs"].items())
        print(f"{r['started']:%Y-%m-%d %H:%M:%S}  {r['pipeline']:<20} {r['status']:<8} "
              f"{secs:6.1f}s  {_short(outs or r['error'] or '')}")
    return EXIT_OK
