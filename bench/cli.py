"""``python -m bench run``: the whole benchmark, written to BENCHMARKS.md.

Examples::

    python -m bench run                       # 10M clicks, 5 runs each, 1M + 10M previews
    python -m bench run --scale               # ... plus pipeline A at 50M rows, 2GB limit
    python -m bench run --quick               # 20k rows, 1 run: checks the harness works
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import dbt_project, harness, report
from bench.data import DATA_DIR, ensure_data

RESULTS_DIR = harness.BENCH_DIR / "results"


def _dbt_version(dbt: str | None) -> str | None:
    if dbt is None:
        return None
    r = subprocess.run([dbt, "--version"], capture_output=True, text=True,
                       env=harness._env())
    lines = [x.strip() for x in r.stdout.splitlines()]
    core = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("- installed")),
                "?")
    duck = next((x.split()[2] for x in lines if x.startswith("- duckdb")), "?")
    return f"dbt-core {core}, dbt-duckdb {duck}"


def _interactive(rows: int, repeat: int, last: bool, data_base: Path,
                 log: Any) -> dict[str, Any]:
    data = ensure_data(rows, data_base)
    cmd = [sys.executable, "-m", "bench.interactive", str(data), "--repeat", str(repeat)]
    if last:
        cmd += ["--planning", "--startup"]
    log(f"interactive at {rows:,} rows ...")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=harness.ROOT, env=harness._env())
    if r.returncode != 0:
        raise SystemExit(f"interactive benchmark failed:\n{r.stderr[-3000:]}")
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def _scale_json(rows: int) -> Path:
    return RESULTS_DIR / f"scale-r{rows}.json"


def run(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    """Run the benchmark; returns the results and writes BENCHMARKS.md unless --no-write."""
    data_base = Path(args.data_dir)
    load0 = os.getloadavg()[0]
    info: dict[str, Any] = {"machine": report.machine(), "repeat": args.repeat,
                            "preview_repeat": args.preview_repeat,
                            "warmup": not args.quick, "command": args.command_line,
                            "notes": []}
    dbt = dbt_project.find_dbt(args.dbt) if not args.no_dbt else None
    info["dbt_version"] = _dbt_version(dbt)
    data = ensure_data(args.rows, data_base, log=True)
    manifest = json.loads((data / "manifest.json").read_text())
    info["data_rows"] = ", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items()) + \
        f" (`--rows {args.rows}`; {data})"
    log(f"pipelines at {args.rows:,} clicks, {args.repeat} runs each"
        + (" after a warm-up" if not args.quick else "") + f"; dbt: {dbt or 'not installed'}")
    harness.byte_compile()
    info["notes"].append("Dockyard's modules are byte-compiled before timing, as `pip install` "
                         "does; this checkout is otherwise imported with "
                         "PYTHONDONTWRITEBYTECODE set, which recompiles them in every process.")
    pipelines = harness.run_pipelines(data, args.repeat, warmup=not args.quick, dbt=dbt, log=log)
    info["pipelines"] = pipelines
    sizes = sorted({args.rows} if args.quick else {*args.preview_rows, args.rows})
    info["interactive"] = {} if args.no_interactive else {
        n: _interactive(n, args.preview_repeat, n == sizes[-1], data_base, log) for n in sizes}
    if not args.no_breakdown:
        brows = args.rows if args.quick else args.breakdown_rows
        bdata = ensure_data(brows, data_base)
        log(f"breakdown of pipeline A at {brows:,} rows ...")
        r = subprocess.run([sys.executable, "-m", "bench.breakdown", str(bdata), "--repeat",
                            str(args.preview_repeat)], capture_output=True, text=True,
                           cwd=harness.ROOT, env=harness._env())
        if r.returncode != 0:
            raise SystemExit(f"breakdown failed:\n{r.stderr[-3000:]}")
        info["breakdown"] = {"rows": brows, "items": json.loads(r.stdout.strip().splitlines()[-1])}
    if args.scale:
        sdata = ensure_data(args.scale_rows, data_base, log=True)
        log(f"scale: pipeline A at {args.scale_rows:,} clicks, memory_limit {args.memory_limit}")
        scale = harness.run_scale(sdata, args.memory_limit, log=log)
        RESULTS_DIR.mkdir(exist_ok=True)
        _scale_json(args.scale_rows).write_text(json.dumps(
            {"date": info["machine"]["date"], "results": [r.to_json() for r in scale]}, indent=2))
        info["scale"] = scale
    elif not args.quick and _scale_json(args.scale_rows).exists():
        old = json.loads(_scale_json(args.scale_rows).read_text())
        info["scale"] = [_from_json(x) for x in old["results"]]
        info["notes"].append(f"Scale figures are from the run of {old['date']} "
                             f"(`--scale` was not given this time).")
    info["load"] = (load0, os.getloadavg()[0])
    info["targets"] = report.targets(pipelines, info["interactive"], args.rows)
    if info.get("scale"):
        ok = all(r.ok for r in info["scale"])
        info["targets"].append((f"pipeline A at {args.scale_rows:,} rows with memory_limit "
                                f"{args.memory_limit} completes", "completed" if ok
                                else "FAILED", ok))
    log("")
    for line in report.targets_table(info["targets"]):
        log(line)
    if not args.no_write:
        md = report.markdown(info)
        Path(args.output).write_text(md + "\n")
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (RESULTS_DIR / f"run-{stamp}.json").write_text(json.dumps(
            {**info, "pipelines": [r.to_json() for r in pipelines],
             "scale": [r.to_json() for r in info.get("scale") or []]}, indent=2, default=str))
        log(f"\nwrote {args.output}")
    return info


def _from_json(x: dict[str, Any]) -> harness.VariantResult:
    r = harness.VariantResult(x["pipeline"], x["variant"], note=x["note"], rows=x["rows"],
                              checksum=x["checksum"])
    r.runs = [harness.Measure(**m) for m in x["runs"]]
    return r


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmark and write BENCHMARKS.md")
    r.add_argument("--rows", type=int, default=None,
                   help="click events (default 10,000,000; 20,000 with --quick)")
    r.add_argument("--repeat", type=int, default=None,
                   help="timed runs per variant (default 5; 1 with --quick)")
    r.add_argument("--quick", action="store_true",
                   help="small and fast: 20k rows, 1 run, no warm-up, previews at --rows only")
    r.add_argument("--preview-rows", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1_000_000, 10_000_000], help="sizes for the preview timings")
    r.add_argument("--preview-repeat", type=int, default=None,
                   help="runs per preview/planning/breakdown timing (default 3; 1 with --quick)")
    r.add_argument("--no-interactive", action="store_true", help="skip previews and planning")
    r.add_argument("--breakdown-rows", type=int, default=1_000_000,
                   help="size for the where-the-time-goes breakdown of pipeline A")
    r.add_argument("--no-breakdown", action="store_true", help="skip the breakdown")
    r.add_argument("--scale", action="store_true",
                   help="also run pipeline A at --scale-rows under --memory-limit (slow)")
    r.add_argument("--scale-rows", type=int, default=50_000_000)
    r.add_argument("--memory-limit", default="2GB")
    r.add_argument("--dbt", help="dbt executable (default: $DOCKYARD_BENCH_DBT, PATH, "
                                 "bench/data/dbt-venv)")
    r.add_argument("--no-dbt", action="store_true", help="skip the dbt-duckdb variant")
    r.add_argument("--data-dir", default=str(DATA_DIR))
    r.add_argument("--output", default=str(harness.ROOT / "BENCHMARKS.md"))
    r.add_argument("--no-write", action="store_true", help="print only; write no files")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.rows = args.rows or (20_000 if args.quick else 10_000_000)
    args.repeat = args.repeat or (1 if args.quick else 5)
    args.preview_repeat = args.preview_repeat or (1 if args.quick else 3)
    args.command_line = "python -m bench " + shlex.join(argv)
    info = run(args)
    bad = [t for t in info["targets"] if "checksum" in t[0] and not t[2]]
    return 1 if bad else 0


__all__ = ["main", "run", "build_parser", "asdict"]
