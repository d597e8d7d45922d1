"""Interactive timings: previews (cold and after an edit), planning large pipelines, start-up.

Run in its own process per data size (``python -m bench.interactive DATA_DIR --repeat N``,
JSON on stdout) so cached preview tables of one size do not weigh on the next.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from builder.engines.preview import Previewer, SampleSpec
from builder.pipeline import yamlio
from builder.pipeline.model import Pipeline, load
from builder.plan.compiler import plan
from builder.plan.schema import forget_source_schemas
from patterns.sql import clear_parse_cache


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


EDITED_STEP = "rolling"


def _edit(pipeline: Pipeline, i: int) -> Pipeline:
    """Pipeline A with the frame of its window step (the last transform) widened by ``i`` rows.

    The last step (``checked``, an expect step) passes its input through, and a check edit does
    not change what a preview shows; editing the window step changes the data of the last two
    steps, while everything upstream of them must come from the cache.
    """
    doc = copy.deepcopy(pipeline)
    step = next(s for s in doc.steps if s.id == EDITED_STEP)
    functions = copy.deepcopy(step.params["functions"])
    for f in functions:
        f["frame"] = {"preceding": 6 + i}
    step.params = {**step.params, "functions": functions}
    return doc


def previews(pipeline_file: Path, repeat: int, modes: tuple[str, ...] = ("full", "sample")
             ) -> list[dict[str, Any]]:
    """Cold previews of the first, middle and last step, and re-previews after an edit."""
    with tempfile.TemporaryDirectory(prefix="dockyard-samples-") as kept:
        return _previews(pipeline_file, repeat, Path(kept), modes)


def _cold_sample_made(pipeline_file: Path, node: str, repeat: int) -> dict[str, Any]:
    """A cold sampled preview that must first sample the full sources (no kept samples)."""
    plans, totals, computed = [], [], 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="dockyard-samples-") as fresh, \
                Previewer(sample_dir=Path(fresh)) as pv:
            t0 = time.perf_counter()
            p = plan(load(pipeline_file), stop_at=node)
            t1 = time.perf_counter()
            pv.preview(p, node, sample=SampleSpec())
            plans.append(t1 - t0)
            totals.append(time.perf_counter() - t0)
            computed = len(pv.computed)
    return {"mode": "sample", "what": f"cold preview, last step ({node}), samples made from "
                                      "the full sources (first preview of this data)",
            "median_ms": _ms(statistics.median(totals)), "plan_ms": _ms(statistics.median(plans)),
            "nodes_computed": computed, "upstream_recomputed": None}


def _previews(pipeline_file: Path, repeat: int, kept: Path,
              modes: tuple[str, ...] = ("full", "sample")) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pipeline = load(pipeline_file)
    steps = [s.id for s in pipeline.steps]
    picks = {"first": steps[0], "middle": steps[len(steps) // 2], "last": steps[-1]}
    for mode, sample in (("full", None), ("sample", SampleSpec())):
        if mode not in modes:
            continue
        if sample is not None:
            out.append(_cold_sample_made(pipeline_file, picks["last"], repeat))
            with Previewer(sample_dir=kept) as pv:  # make the kept samples once
                pv.preview(plan(pipeline, stop_at=picks["last"]), picks["last"], sample=sample)
        for which, node in picks.items():
            plans, totals, computed = [], [], 0
            for _ in range(repeat):
                # A new connection: nothing cached in memory (sample mode: kept samples on disk,
                # as in a new app session on data previewed before).
                with Previewer(sample_dir=kept) as pv:
                    t0 = time.perf_counter()
                    p = plan(load(pipeline_file), stop_at=node)
                    t1 = time.perf_counter()
                    pv.preview(p, node, sample=sample)
                    t2 = time.perf_counter()
                    computed = len(pv.computed)
                plans.append(t1 - t0)
                totals.append(t2 - t0)
            kept_note = ", kept samples" if sample is not None else ""
            out.append({"mode": mode, "what": f"cold preview, {which} step ({node}){kept_note}",
                        "median_ms": _ms(statistics.median(totals)),
                        "plan_ms": _ms(statistics.median(plans)),
                        "nodes_computed": computed, "upstream_recomputed": None})
        # Edit a param and preview the last step again; upstream stays cached.
        last = picks["last"]
        changed = {EDITED_STEP, last}
        with Previewer(sample_dir=kept) as pv:
            pv.preview(plan(pipeline, stop_at=last), last, sample=sample)
            pv.settle()  # the app does this in the background once the preview is shown
            plans, totals, recomputed = [], [], []
            for i in range(1, repeat + 1):
                edited = _edit(pipeline, i)
                before = len(pv.computed)
                t0 = time.perf_counter()
                p = plan(edited, stop_at=last)
                t1 = time.perf_counter()
                res = pv.preview(p, last, sample=sample)
                t2 = time.perf_counter()
                assert res.row_count is not None
                plans.append(t1 - t0)
                totals.append(t2 - t0)
                recomputed.append(pv.computed[before:])
        upstream = max(len([n for n in r if n not in changed]) for r in recomputed)
        out.append({"mode": mode, "what": f"re-preview last step ({last}) after editing "
                                          f"'{EDITED_STEP}'",
                    "median_ms": _ms(statistics.median(totals)),
                    "plan_ms": _ms(statistics.median(plans)),
                    "nodes_computed": max(len(r) for r in recomputed),
                    "upstream_recomputed": upstream})
    return out


def synthetic_pipeline(n_steps: int, source: Path, folder: Path) -> Path:
    """A chain of ``n_steps`` steps (SQL, derive, filter, select, in turn) over one source."""
    steps: list[dict[str, Any]] = [
        {"id": "s0000", "sql": "SELECT user_id, country, 1 AS score FROM users"}]
    prev = "s0000"
    for i in range(1, n_steps):
        sid = f"s{i:04d}"
        kind = i % 4
        if kind == 0:
            steps.append({"id": sid, "sql": f"SELECT * REPLACE (score * 2 AS score) FROM {prev} "
                                            f"WHERE user_id > {-i}"})
        elif kind == 1:
            steps.append({"id": sid, "pattern": "derive", "inputs": [prev],
                          "params": {"columns": {"score": f"score + {i}"}}})
        elif kind == 2:
            steps.append({"id": sid, "pattern": "filter", "inputs": [prev],
                          "params": {"where": f"score > {-i} OR country = 'DE'"}})
        else:
            steps.append({"id": sid, "pattern": "select", "inputs": [prev],
                          "params": {"columns": ["user_id", "country", "score"]}})
        prev = sid
    doc = {"version": 1, "name": f"chain_{n_steps}",
           "sources": {"users": {"path": str(source.resolve())}}, "steps": steps,
           "outputs": {prev: {"path": str(folder / "out" / f"chain_{n_steps}.parquet")}}}
    target = folder / f"chain_{n_steps}.yaml"
    target.write_text(yamlio.dumps(doc))
    return target


def planning(source: Path, repeat: int, sizes: tuple[int, ...] = (50, 500)) -> list[dict[str, Any]]:
    """Load + validate + type pipelines of ``sizes`` steps (in-process, after one warm-up each).

    The sizes take turns, in alternating order: run one after the other, a 50-step series and a
    500-step series met different loads on the shared machine (the same plan's time per step
    drifts by 1.5x within minutes), and their ratio, read as the growth, measured that drift.
    """
    files: dict[int, Path] = {}
    times: dict[int, list[float]] = {n: [] for n in sizes}
    first: dict[int, float] = {}
    typed: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="dockyard-plan-") as tmp:
        for n in sizes:
            files[n] = synthetic_pipeline(n, source, Path(tmp))
        for r in range(repeat + 1):
            for n in sizes if r % 2 == 0 else sizes[::-1]:
                # Parsed SQL expressions are cached per process (the app re-plans on every
                # edit); cleared so each run parses as a fresh `dockyard validate` would.
                clear_parse_cache()
                if not r:
                    forget_source_schemas()
                t0 = time.perf_counter()
                p = plan(load(files[n]))
                dt = time.perf_counter() - t0
                if p.errors:
                    raise SystemExit(f"synthetic pipeline invalid: {p.errors[:3]}")
                if r:  # the first run also describes the source file (cached after)
                    times[n].append(dt)
                else:
                    first[n] = dt
                typed[n] = len(p.steps)
    return [{"steps": n, "median_ms": _ms(statistics.median(times[n])), "first_ms": _ms(first[n]),
             "typed_steps": typed[n]} for n in sizes]


def startup(pipeline_file: Path, repeat: int) -> dict[str, Any]:
    """Wall time of ``dockyard validate`` as a new process, and whether streamlit was imported.

    At least 9 runs (a second each): a single start-up is at the mercy of the shared machine.
    """
    times = []
    for _ in range(max(repeat, 9)):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "builder.cli", "validate", str(pipeline_file)],
                           capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"dockyard validate failed: {r.stderr}")
    probe = ("import sys, contextlib, io\nfrom builder.cli.main import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             f"    main(['validate', {str(pipeline_file)!r}])\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    imported = json.loads(r.stdout.strip().replace("'", '"') or "[]")
    return {"median_ms": _ms(statistics.median(times)), "min_ms": _ms(min(times)),
            "runs": len(times), "streamlit_imported": bool(imported),
            "pipeline": pipeline_file.name}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--planning", action="store_true", help="also time 50/500-step pipelines")
    ap.add_argument("--startup", action="store_true", help="also time dockyard validate")
    ap.add_argument("--sample-only", action="store_true",
                    help="only sample mode (full cold previews at 10M take ~18 s each)")
    a = ap.parse_args()
    from bench.harness import prepare_pipeline

    pipeline_file = prepare_pipeline("a", a.data)
    modes = ("sample",) if a.sample_only else ("full", "sample")
    result: dict[str, Any] = {"previews": previews(pipeline_file, a.repeat, modes)}
    if a.planning:
        result["planning"] = planning(a.data / "users.parquet", max(a.repeat, 5))
    if a.startup:
        result["startup"] = startup(pipeline_file, a.repeat)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
