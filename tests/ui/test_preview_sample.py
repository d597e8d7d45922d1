"""Sample mode by size: big inputs start sampled (kept samples on disk), small ones exact, and
full mode is one toggle away."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.ui import preview as preview_ui
from tests.ui.conftest import errors, open_example


def _headline(app: AppTest) -> str:
    return next(m.value for m in app.markdown if " rows**" in m.value)


def test_small_inputs_preview_exact_by_default(app: AppTest):
    open_example(app)
    assert app.toggle(key="dy_sample").value is False
    app.button(key="dy_preview_btn").click().run()
    assert not errors(app) and "approximate" not in _headline(app)


def test_big_inputs_preview_sampled_by_default_then_full(app: AppTest, pipelines_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(preview_ui, "SAMPLE_ABOVE_BYTES", 1000)  # the example's files are bigger
    open_example(app)
    assert app.toggle(key="dy_sample_big").value is True
    app.button(key="dy_preview_btn").click().run()
    assert not errors(app) and "(approximate: sample mode)" in _headline(app)
    kept = sorted(p.name.split("-")[0] for p in
                  (pipelines_dir / "warehouse" / "cache" / "samples").glob("*.parquet"))
    assert kept == ["orders", "users"]
    app.toggle(key="dy_sample_big").set_value(False).run()
    app.button(key="dy_preview_btn").click().run()
    assert not errors(app) and "approximate" not in _headline(app)
    assert not app.exception


# ---- the Previewer in sample mode: steps not cached are computed in one query ----------------

def _example(pipelines_dir: Path):
    from builder.pipeline.model import load

    return load(pipelines_dir / "daily_revenue.yaml")


def test_cold_sampled_preview_runs_the_steps_in_one_query_then_keeps_each(
        pipelines_dir: Path, tmp_path: Path):
    """A cold sampled preview computes the steps above the node inside its own query (no table
    per step first); settle() then gives each its table, so an edit below them recomputes only
    the edited step, and the rows are those of computing step by step."""
    from builder.engines.preview import Previewer, SampleSpec
    from builder.plan.compiler import plan

    p = _example(pipelines_dir)
    spec = SampleSpec(rows=500)
    with Previewer(sample_dir=tmp_path) as pv:  # makes the kept samples
        pv.preview(plan(p), "revenue_by_country", sample=spec)
    with Previewer(sample_dir=tmp_path) as by_step:
        pl = plan(p)
        for n in pl.needed_for(["revenue_by_country"]):
            cols, rows = by_step.fetch(pl, n, sample=spec)
    with Previewer(sample_dir=tmp_path) as pv:
        pl = plan(p)
        got_cols, got_rows = pv.fetch(pl, "revenue_by_country", sample=spec)
        assert got_cols == cols and sorted(got_rows) == sorted(rows) and len(rows) > 10
        assert pv.cached_nodes(pl, spec) == {"revenue_by_country"}
        pv.settle()
        assert pv.cached_nodes(pl, spec) == set(pl.needed_for(["revenue_by_country"]))
        before = len(pv.computed)
        p.step("order_lines").params["columns"] = ["order_id", "user_id", "ordered_at"]
        p.step("revenue_by_country").sql = p.step("revenue_by_country").sql.replace(
            "round(sum(o.amount), 2)", "0")
        pv.preview(plan(p), "revenue_by_country", sample=spec)
        assert pv.computed[before:] == ["order_lines", "revenue_by_country"]


def test_a_step_failing_inside_the_one_query_is_named(pipelines_dir: Path, tmp_path: Path):
    from builder.engines.preview import Previewer, SampleSpec
    from builder.errors import ExecutionError
    from builder.plan.compiler import plan

    p = _example(pipelines_dir)
    p.step("paid_orders").params["where"] = "CAST(status AS INTEGER) = 1"
    spec = SampleSpec(rows=500)
    with Previewer(sample_dir=tmp_path) as pv:
        with pytest.raises(ExecutionError, match=r"step 'paid_orders' failed: Could not convert"):
            pv.preview(plan(p), "revenue_by_country", sample=spec)
