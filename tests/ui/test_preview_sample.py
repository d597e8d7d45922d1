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
