"""The benchmark harness in its smallest mode: every variant runs and gives the same result.

Timings are not asserted (machines are shared and noisy); only that the harness produces a
results table and that every variant's checksum matches the hand-written SQL's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cli, harness, report
from bench.data import ensure_data
from builder.engines.duckdb import DuckDBEngine
from builder.pipeline.model import load
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec


def test_pipeline_steps_gives_the_same_output_with_fewer_tables(tmp_path: Path) -> None:
    data = ensure_data(2000, tmp_path / "data", log=False)
    f = harness.prepare_pipeline("a", data)
    p = plan(load(f))
    p.raise_for_errors()
    out = data / "out" / "dockyard_a.parquet"
    sums = {}
    for pipelined in (False, True):
        result = DuckDBEngine(pipeline_steps=pipelined).run(RunSpec.from_plan(p))
        rows = {s.node: s.rows for s in result.steps}
        sums[pipelined] = harness.checksum(out, harness.COLUMNS["a"])
        if pipelined:
            # chain steps are views; the step the checks read is a table, and the output
            # (expect: a copy of that step) is streamed into its file
            assert rows["deduped"] is None and rows["daily"] is None
            assert rows["rolling"] and rows["checked"] is None
        else:
            assert all(n is not None for n in rows.values())
    assert sums[False] == sums[True] and sums[True][0] > 0


@pytest.mark.slow
def test_quick_benchmark_results_match(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    args = cli.build_parser().parse_args(
        ["run", "--quick", "--rows", "20000", "--repeat", "1", "--no-breakdown",
         "--data-dir", str(tmp_path / "data"), "--output", str(out)])
    args.preview_repeat = 1
    args.command_line = "python -m bench run --quick"
    # Keep the test's results out of bench/results.
    cli.RESULTS_DIR = tmp_path / "results"
    info = cli.run(args, log=lambda *_: None)

    results: list[harness.VariantResult] = info["pipelines"]
    for pipeline in ("a", "b"):
        rows = {r.variant: r for r in results if r.pipeline == pipeline}
        assert set(rows) == set(harness.VARIANTS)
        floor = rows["floor"]
        assert floor.ok and floor.rows and floor.checksum
        for variant, r in rows.items():
            if variant == "dbt" and not r.runs:
                assert r.note == "not installed"
                continue
            assert r.ok, (pipeline, variant, [m.stderr for m in r.runs])
            assert r.checksum == floor.checksum, (pipeline, variant)
        # dockyard and the floor report the time of their work ("done in N s"), part of the wall
        for variant in ("dockyard", "dockyard_nocache", "floor"):
            r = rows[variant]
            assert r.work_s is not None and r.median_s is not None
            assert 0 < r.work_s < r.median_s, (pipeline, variant, r.work_s, r.median_s)
        # After the warm-up run, dockyard runs from the run cache; --no-cache never does.
        assert all(m.cached for m in rows["dockyard"].runs)
        assert not any(m.cached for m in rows["dockyard_nocache"].runs)

    table = "\n".join(report.pipeline_table(results))
    assert "| A | floor |" in table and "| B | dockyard" in table
    assert "| NO |" not in table  # every variant matches the floor
    text = out.read_text()
    assert "## Targets" in text and "every variant gives the same result" in text
    re_preview = [x for x in info["interactive"][20000]["previews"]
                  if x["what"].startswith("re-preview")]
    assert re_preview and all(x["upstream_recomputed"] == 0 for x in re_preview)
    assert not info["interactive"][20000]["startup"]["streamlit_imported"]
