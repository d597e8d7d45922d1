"""`dockyard ui` from a plain `pip install` (a wheel in a fresh environment), not a checkout."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

APP_TEST = """
from importlib.resources import files
from pathlib import Path
from streamlit.testing.v1 import AppTest

import builder
assert Path(builder.__file__).is_relative_to(Path.cwd().parent / "venv"), builder.__file__
at = AppTest.from_file(str(files("builder.ui").joinpath("streamlit_app.py")), default_timeout=60)
at.run()
assert not at.exception, at.exception
print("INFO:", [i.value for i in at.info])
"""


# The installed copy must be the one that runs, whatever the test run's own PYTHONPATH says.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with Dockyard installed from a wheel (its dependencies are the test
    environment's); returns its bin/ folder."""
    tmp = tmp_path_factory.mktemp("install")
    # A copy of what the package is made of: setuptools writes its build/ folder beside the
    # sources, which must not land in the checkout.
    src = tmp / "src"
    for part in ("builder", "patterns"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    # Built as 'pip install' builds it (setuptools from the package index, as for the README's
    # install); the wheel then installs offline.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("dockyard-*.whl"))
    assert "builder/ui/streamlit_app.py" in zipfile.ZipFile(wheel).namelist()
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")],
                   check=True, timeout=300)
    subprocess.run([str(tmp / "venv/bin/python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--ignore-installed", "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    (tmp / "work").mkdir()
    return tmp / "venv" / "bin"


def test_the_installed_app_runs_in_the_folder_it_was_started_from(installed: Path):
    work = installed.parent.parent / "work"
    done = subprocess.run([str(installed / "python"), "-c", APP_TEST], cwd=work,
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "No pipelines in 'saved_pipelines' yet" in done.stdout
    assert (work / "saved_pipelines" / "data" / "clicks.parquet").is_file()


def test_dockyard_ui_serves_the_app_from_an_installed_package(installed: Path):
    work = installed.parent.parent / "work"
    port = _free_port()
    proc = subprocess.Popen([str(installed / "dockyard"), "ui", "--port", str(port)], cwd=work,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        health = ""
        while time.time() < deadline and proc.poll() is None and health != "ok":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as r:
                    health = r.read().decode()
            except OSError:
                time.sleep(0.5)
        assert health == "ok", proc.stdout.read() if proc.poll() is not None else "no answer"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # Stopping 'dockyard ui' stops the server it started: nothing answers on the port anymore.
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).close()
        except OSError:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the app server still answers on port {port} after 'dockyard ui' "
                             "was stopped")
