"""AppTest fixtures: the app on a private copy of the example pipelines (never the repo's)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


@pytest.fixture
def pipelines_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    shutil.copytree(ROOT / "saved_pipelines" / "data", folder / "data")
    shutil.copy(ROOT / "saved_pipelines" / "daily_revenue.yaml", folder)
    monkeypatch.setenv("DOCKYARD_PIPELINES_DIR", str(folder))
    return folder


@pytest.fixture
def app(pipelines_dir: Path) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    yield at
    pv = at.session_state["dy_previewer"] if "dy_previewer" in at.session_state else None
    if pv is not None:
        pv.close()


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def param_widget(at: AppTest, kind: str, step: str, name: str):
    """The widget of a step's param (keys are 'g<generation>:param:<step>:<name>')."""
    for w in getattr(at, kind):
        if w.key and w.key.endswith(f":param:{step}:{name}"):
            return w
    raise AssertionError(f"no {kind} for {step}.{name}")


def widget(at: AppTest, kind: str, suffix: str):
    for w in getattr(at, kind):
        if w.key and w.key.endswith(suffix):
            return w
    raise AssertionError(f"no {kind} with key ending {suffix!r}")


def open_example(at: AppTest, name: str = "daily_revenue") -> None:
    at.button(key=f"dy_open_{name}").click().run()
    assert not at.exception
