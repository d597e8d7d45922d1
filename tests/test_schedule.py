"""The cron line the app shows runs as cron runs it: `sh -c` from a bare environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from builder.pipeline.schedule import schedule

PIPELINE = """\
version: 1
name: tiny
sources:
  users: {path: ../data/users.csv}
steps:
  - id: picked
    sql: SELECT user_id FROM users WHERE user_id <= 3
outputs:
  picked: {path: ../out/picked.csv}
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "users.csv").write_text("user_id,name\n1,a\n2,b\n3,c\n4,d\n")
    (tmp_path / "saved_pipelines").mkdir()
    f = tmp_path / "saved_pipelines" / "tiny.yaml"
    f.write_text(PIPELINE)
    return f


def _exe(tmp_path: Path) -> str:
    """A `dockyard` executable running this checkout's code (the installed script may be
    another checkout's), with a path that needs quoting, as real install paths can."""
    folder = tmp_path / "my bin"
    folder.mkdir()
    exe = folder / "dockyard"
    root = Path(__file__).resolve().parent.parent
    exe.write_text(f"#!/bin/sh\nPYTHONPATH='{root}' exec '{sys.executable}' -m builder.cli \"$@\"\n")
    exe.chmod(0o755)
    return str(exe)


def test_the_cron_line_runs_from_cron_s_bare_environment(tmp_path):
    f = _project(tmp_path)
    plan = schedule(f, exe=_exe(tmp_path))
    assert plan.root == tmp_path.resolve()
    assert plan.command == "dockyard run saved_pipelines/tiny.yaml"
    assert plan.cron.startswith("0 6 * * * ")
    assert not (tmp_path / "logs").exists()
    # cron runs the command with sh -c, from the user's home, with PATH=/usr/bin:/bin
    done = subprocess.run(["sh", "-c", plan.cron_command], cwd=Path.home(),
                          env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert plan.log == tmp_path.resolve() / "logs" / "tiny.log"
    assert "picked" in plan.log.read_text()
    rows = duckdb.sql(f"SELECT user_id FROM read_csv('{tmp_path}/out/picked.csv') ORDER BY 1")
    assert rows.fetchall() == [(1,), (2,), (3,)]


def test_the_cron_line_reports_a_failed_run_in_its_log(tmp_path):
    f = _project(tmp_path)
    f.write_text(PIPELINE.replace("user_id <= 3", "nope <= 3"))
    plan = schedule(f, exe=_exe(tmp_path))
    done = subprocess.run(["sh", "-c", plan.cron_command], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "'nope'" in plan.log.read_text()


def test_a_pipeline_at_the_project_root_is_named_from_there(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(PIPELINE)
    plan = schedule(f, exe="/opt/dockyard/bin/dockyard")
    assert plan.root == tmp_path.resolve()
    assert "run p.yaml >> logs/p.log 2>&1" in plan.cron


def test_the_default_executable_is_found_on_path(tmp_path, monkeypatch):
    f = _project(tmp_path)
    exe = _exe(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(exe).parent}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("dockyard") == exe
    assert f"'{exe}' run" in schedule(f).cron
