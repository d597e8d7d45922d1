"""The app saves a hand-edited pipeline file with its comments (ruamel.yaml round trip)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from builder.pipeline.model import dump, load
from tests.ui.conftest import errors, open_example


def _comments(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def test_app_saves_keep_the_files_comments_and_own_saves_are_no_conflict(
        app: AppTest, pipelines_dir: Path):
    path = pipelines_dir / "daily_revenue.yaml"
    text = path.read_text()
    text = "# Finance dashboard; owner: finance@example.com\n" + text.replace(
        "  users: {path: data/users.csv}",
        "  # countries come from here\n  users: {path: data/users.csv}  # daily export")
    path.write_text(text)
    app.run()
    open_example(app)
    p = app.session_state["dy_pipeline"]
    p.description = "Paid revenue, edited in the app"
    app.button(key="dy_save_btn").click().run()
    assert not errors(app), errors(app)
    saved = path.read_text()
    assert _comments(saved) == _comments(text)
    assert load(path).description == "Paid revenue, edited in the app"
    assert dump(load(path)) == dump(app.session_state["dy_pipeline"])
    # The text written is what the app expects on disk: a second save is not a conflict.
    app.session_state["dy_pipeline"].description = "Edited twice"
    app.button(key="dy_save_btn").click().run()
    assert not errors(app), errors(app)
    assert load(path).description == "Edited twice"
    assert _comments(path.read_text()) == _comments(text)
