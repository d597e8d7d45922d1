"""The targets table and ``BENCHMARKS.md``: machine, versions, tables, the command."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata
from typing import Any

from bench.harness import VariantResult

RUN_RATIO_MAX = 1.10
PANDAS_FACTOR_MIN = 3.0
REPREVIEW_MS_MAX = 300.0
PLAN_50_MS_MAX = 200.0
PLAN_500_MS_MAX = 2000.0
STARTUP_MS_MAX = 1000.0


def machine() -> dict[str, Any]:
    """CPU, RAM, load and versions of what is measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    ram = None
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
            ram = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version()}
    for pkg in ("duckdb", "pandas", "pyarrow", "sqlglot"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"cpu": cpu, "cpus": os.cpu_count(), "ram": ram, "platform": platform.platform(),
            "versions": versions, "date": dt.datetime.now().astimezone().isoformat("T", "seconds")}


def _fmt(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def _label(r: VariantResult) -> str:
    if r.variant == "dockyard_nocache":
        return "dockyard --no-cache"
    if r.variant == "dockyard" and r.runs:
        cached = sum(m.cached for m in r.runs)
        if cached == 0:
            return "dockyard (planned afresh)"
        return "dockyard" + (" (plan from the run cache)" if cached == len(r.runs) else
                             f" ({cached} of {len(r.runs)} runs from the run cache)")
    return r.variant


def pipeline_table(results: list[VariantResult]) -> list[str]:
    lines = ["| pipeline | variant | median wall | vs floor | of which work | peak RSS | runs | "
             "rows | checksum | matches floor |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in sorted({r.pipeline for r in results}):
        rows = [r for r in results if r.pipeline == p]
        floor = next((r for r in rows if r.variant == "floor"), None)
        for r in rows:
            if not r.runs:
                lines.append(f"| {p.upper()} | {r.variant} | {r.note or 'not run'} | | | | | | | |")
                continue
            ratio = (r.median_s / floor.median_s) if r.median_s and floor and floor.median_s \
                else None
            match = "yes" if floor and r.checksum and r.checksum == floor.checksum else "NO"
            runs = ", ".join(f"{m.seconds:.2f}" if m.returncode == 0 else "failed"
                             for m in r.runs)
            note = f" ({r.note})" if r.note else ""
            lines.append(f"| {p.upper()} | {_label(r)}{note} | {_fmt(r.median_s, ' s')} | "
                         f"{_fmt(ratio, 'x')} | {_fmt(r.work_s, ' s')} | "
                         f"{_fmt(r.peak_mib, ' MiB', 0)} | {runs} | "
                         f"{r.rows if r.rows is not None else '-'} | {r.checksum or '-'} | "
                         f"{match} |")
    return lines


def targets(results: list[VariantResult], interactive: dict[int, dict[str, Any]],
            rows: int) -> list[tuple[str, str, bool | None]]:
    """(target, measured, holds) for every target; None when it was not measured."""
    out: list[tuple[str, str, bool | None]] = []
    by = {(r.pipeline, r.variant): r for r in results}
    for p in sorted({r.pipeline for r in results}):
        dock, floor = by.get((p, "dockyard")), by.get((p, "floor"))
        pandas, dbt = by.get((p, "pandas")), by.get((p, "dbt"))
        if dock and floor and dock.median_s and floor.median_s:
            ratio = dock.median_s / floor.median_s
            out.append((f"{p.upper()}: dockyard run within {RUN_RATIO_MAX:.2f}x of the floor",
                        f"{ratio:.2f}x ({dock.median_s:.2f} s vs {floor.median_s:.2f} s)",
                        ratio <= RUN_RATIO_MAX))
        if dock and pandas and dock.median_s and pandas.median_s:
            f = pandas.median_s / dock.median_s
            out.append((f"{p.upper()}: >= {PANDAS_FACTOR_MIN:.0f}x faster than pandas",
                        f"{f:.1f}x", f >= PANDAS_FACTOR_MIN))
        if dock and dbt:
            if dbt.median_s and dock.median_s:
                f = dbt.median_s / dock.median_s
                out.append((f"{p.upper()}: faster than dbt-duckdb", f"{f:.1f}x faster"
                            if f >= 1 else f"{1 / f:.1f}x slower", f > 1))
            else:
                out.append((f"{p.upper()}: faster than dbt-duckdb", dbt.note or "dbt failed",
                            None))
        same = all(r.checksum == floor.checksum for r in results
                   if r.pipeline == p and r.runs and floor)
        out.append((f"{p.upper()}: every variant gives the same result (checksum)",
                    "all match" if same else "MISMATCH", same))
    size = max(interactive) if interactive else None
    if size is not None:
        prev = interactive[size]["previews"]
        re_sample = next((x for x in prev if x["mode"] == "sample" and
                          x["what"].startswith("re-preview")), None)
        re_full = next((x for x in prev if x["mode"] == "full" and
                        x["what"].startswith("re-preview")), None)
        if re_sample:
            out.append((f"re-preview after an edit < {REPREVIEW_MS_MAX:.0f} ms median "
                        f"({size:,} rows, sample mode)", f"{re_sample['median_ms']:.0f} ms "
                        f"(plan {re_sample['plan_ms']:.0f} ms)",
                        re_sample["median_ms"] < REPREVIEW_MS_MAX))
        if re_full:
            out.append(("full mode: unchanged upstream steps not recomputed",
                        f"{re_full['upstream_recomputed']} upstream recomputed "
                        f"({re_full['nodes_computed']} computed: the edited step and the "
                        f"last step)", re_full["upstream_recomputed"] == 0))
    plan_rows = next((v["planning"] for v in interactive.values() if "planning" in v), [])
    for item in plan_rows:
        limit = PLAN_50_MS_MAX if item["steps"] <= 50 else PLAN_500_MS_MAX
        out.append((f"validate + type {item['steps']} steps < {limit:.0f} ms",
                    f"{item['median_ms']:.0f} ms", item["median_ms"] < limit))
    st = next((v["startup"] for v in interactive.values() if "startup" in v), None)
    if st:
        out.append((f"'dockyard validate' start-up < {STARTUP_MS_MAX:.0f} ms",
                    f"{st['median_ms']:.0f} ms", st["median_ms"] < STARTUP_MS_MAX))
        out.append(("the CLI does not import streamlit",
                    "imported" if st["streamlit_imported"] else "not imported",
                    not st["streamlit_imported"]))
    del rows
    return out


def targets_table(rows: list[tuple[str, str, bool | None]]) -> list[str]:
    lines = ["| target | measured | holds |", "|---|---|---|"]
    for name, measured, ok in rows:
        lines.append(f"| {name} | {measured} | "
                     f"{'holds' if ok else 'not measured' if ok is None else 'DOES NOT HOLD'} |")
    return lines


def interactive_table(interactive: dict[int, dict[str, Any]]) -> list[str]:
    lines = ["| rows | mode | what | median | of which plan | nodes computed | upstream "
             "recomputed |", "|---|---|---|---|---|---|---|"]
    for size in sorted(interactive):
        for x in interactive[size]["previews"]:
            up = "-" if x["upstream_recomputed"] is None else str(x["upstream_recomputed"])
            lines.append(f"| {size:,} | {x['mode']} | {x['what']} | {x['median_ms']:.0f} ms | "
                         f"{x['plan_ms']:.0f} ms | {x['nodes_computed']} | {up} |")
    return lines


def planning_table(interactive: dict[int, dict[str, Any]]) -> list[str]:
    plan_rows = next((v["planning"] for v in interactive.values() if "planning" in v), [])
    lines = ["| steps | median (load + validate + type) | first run (also reads the source "
             "schema) |", "|---|---|---|"]
    for item in plan_rows:
        lines.append(f"| {item['steps']} | {item['median_ms']:.0f} ms | "
                     f"{item['first_ms']:.0f} ms |")
    if len(plan_rows) == 2 and plan_rows[0]["median_ms"]:
        growth = plan_rows[1]["median_ms"] / plan_rows[0]["median_ms"]
        steps = plan_rows[1]["steps"] / plan_rows[0]["steps"]
        lines.append("")
        lines.append(f"{steps:.0f}x the steps took {growth:.1f}x the time "
                     f"({'linear or better' if growth <= steps * 1.3 else 'worse than linear'}).")
    return lines


def markdown(info: dict[str, Any]) -> str:
    """The whole BENCHMARKS.md from a results dict (see :func:`bench.cli.run`)."""
    m = info["machine"]
    v = m["versions"]
    vers = ", ".join(f"{k} {val}" for k, val in v.items())
    out = ["# Benchmarks", "",
           "Generated by `python -m bench run` (see README, section *Benchmark*); do not edit by "
           "hand.", "",
           f"- **Command**: `{info['command']}`",
           f"- **Date**: {m['date']}",
           f"- **Machine**: {m['cpu']}, {m['cpus']} CPUs, {m['ram']} RAM, {m['platform']}",
           f"- **Versions**: {vers}, dbt: {info.get('dbt_version') or 'not installed'}",
           f"- **Load average** (1 min) at start / end: {info['load'][0]:.1f} / "
           f"{info['load'][1]:.1f}. The machine is shared: other people's tests run at the "
           "same time, so single runs are noisy; figures are medians of interleaved runs.",
           f"- **Data**: {info['data_rows']}", ""]
    out += ["## Targets", ""] + targets_table(info["targets"]) + [""]
    out += ["## Pipelines (whole process: start-up, read, compute, write)", "",
            f"Median of {info['repeat']} runs" + (" after one warm-up run" if info["warmup"]
                                                  else "") +
            ", variants interleaved. Peak RSS is the median of the runs' peaks. *Of which "
            "work*: the median time `dockyard run` reports for its engine (reading, computing, "
            "checking, writing) and the floor for its SQL statements; the rest of the wall time "
            "is the process starting, importing its libraries and (Dockyard) validating and "
            "typing the pipeline. *dockyard* is `dockyard run` as a scheduler runs it: from the "
            "second run of an unchanged pipeline on (new Parquet data with the same columns "
            "included), its plan comes from the run cache and sqlglot, networkx and pydantic "
            "are not even imported. *dockyard --no-cache* plans afresh in every run, as the "
            "first run after an edit does.", ""]
    out += pipeline_table(info["pipelines"]) + [""]
    out += ["Pipeline A: dedupe 10M+ clicks (2% re-deliveries, 1% late) -> sessionize (30 min) "
            "-> join users -> derive day -> aggregate per user and day -> window (7-row "
            "rolling sums) -> expect (not_null, unique, range, expression). Pipeline B: scd2 "
            "over 30 daily snapshots of 100k products -> point-in-time join of the orders. "
            "Floor: `bench/sql/pipeline_*.sql` in one DuckDB connection; pandas: "
            "`bench/pandas_impl.py`; dbt: `bench/dbt_project.py` (views, external parquet "
            "for the last model, `dbt build`).", ""]
    if info.get("notes"):
        out += [f"- {n}" for n in info["notes"]] + [""]
    out += ["## Interactive (previews in one Previewer, plan included)", "",
            f"Median of {info['preview_repeat']} runs per line.", ""]
    out += interactive_table(info["interactive"]) + [""]
    out += ["Cold: a new Previewer (nothing cached). Re-preview: the window step's frame is "
            "changed (a new value each time) and the last step previewed again; only the edited "
            "step and the one after it may be computed. Sample mode: SampleSpec(rows=100000) "
            "keeps whole users (sample_key user_id).", ""]
    out += ["## Planning (validate + type, in process)", "",
            "Load the file, validate and type every step (DuckDB binds each step over empty "
            "stand-ins), median of 5 runs in one process after a first run; the cache of "
            "parsed SQL expressions is cleared before each run, so every run parses as a new "
            "`dockyard validate` would.", ""] + planning_table(info["interactive"]) + [""]
    st = next((x["startup"] for x in info["interactive"].values() if "startup" in x), None)
    if st:
        out += ["## Start-up", "",
                f"`dockyard validate {st['pipeline']}` as a new process: median "
                f"{st['median_ms']:.0f} ms" + (f" of {st['runs']} runs (fastest "
                                              f"{st['min_ms']:.0f} ms)" if "runs" in st else "")
                + f"; streamlit imported: {'yes' if st['streamlit_imported'] else 'no'}.", ""]
    if info.get("scale"):
        out += ["## Scale", ""] + pipeline_table(info["scale"]) + [""]
        for r in info["scale"]:
            if r.runs:
                mm = r.runs[0]
                out.append(f"- {r.variant}: {'completed' if mm.returncode == 0 else 'FAILED'} "
                           f"in {mm.seconds:.1f} s, peak RSS {mm.peak_mib:.0f} MiB, spill "
                           f"folder peak {mm.spill_mib or 0:.0f} MiB ({r.note}).")
        out.append("")
    if info.get("breakdown"):
        b = info["breakdown"]
        items = b["items"]
        base = next((x["median_s"] for x in items if x["what"].startswith("floor")), None)
        out += ["## Where the time goes (pipeline A)", "",
                f"In one DuckDB connection at {b['rows']:,} rows (median of "
                f"{info['preview_repeat']}), created as a temp table: the floor's query, the "
                "Dockyard pipeline compiled to one query (what `dockyard run` streams), and "
                "that query without dedupe's tie-breaking sort columns, or counting the md5 "
                "session_id (as the pipeline did before) instead of session_number; results "
                "are unchanged on this data.", "",
                "| query | median | vs floor |", "|---|---|---|"]
        for x in items:
            ratio = x["median_s"] / base if x["median_s"] and base else None
            out.append(f"| {x['what']} | {_fmt(x['median_s'], ' s')} | {_fmt(ratio, 'x')} |")
        out.append("")
    if info.get("profile"):
        out += [info["profile"], ""]
    return "\n".join(out)
