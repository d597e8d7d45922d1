"""One run of a pipeline at a time (builder.runner.lock): a busy lock is one line naming its
holder, the wait is bounded, a killed holder frees it, and it works without ``fcntl``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import ExecutionError
from builder.pipeline.model import load
from builder.runner.lock import lock_path, run_lock

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = """\
    version: 1
    name: locked
    steps:
      - id: a
        sql: SELECT 1 AS x
    outputs:
      a: {path: out/a.csv}
    """


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    f = tmp_path / "p.yaml"
    f.write_text(textwrap.dedent(PIPELINE), encoding="utf-8")
    return f


def _hold_in_another_process(f: Path) -> subprocess.Popen[str]:
    """A process holding ``f``'s run lock until its stdin closes (or it is killed)."""
    code = ("import sys\nfrom builder.pipeline.model import load\n"
            "from builder.runner.lock import run_lock\n"
            "with run_lock(load(sys.argv[1])):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code, str(f)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_run_held_by_another_process_is_refused_in_one_line_naming_it(pipeline_file, capsys):
    holder = _hold_in_another_process(pipeline_file)
    try:
        assert main(["run", str(pipeline_file)]) == 1
        lines = capsys.readouterr().err.splitlines()
    finally:
        holder.communicate("")
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{pipeline_file} pipeline 'locked' is already running "
                               f"(pid {holder.pid} since ")
    assert lines[0].endswith(" UTC); wait for it to finish, then run again.")
    assert main(["run", str(pipeline_file)]) == 0  # released: the next run goes ahead


def test_the_wait_is_bounded_and_a_lock_freed_meanwhile_is_taken(pipeline_file):
    p = load(pipeline_file)
    release = threading.Event()

    def hold_for_a_while() -> None:
        with run_lock(p):
            taken.set()
            release.wait(30)

    taken = threading.Event()
    thread = threading.Thread(target=hold_for_a_while)
    thread.start()
    try:
        assert taken.wait(30)
        t0 = time.monotonic()
        with pytest.raises(ExecutionError, match="'locked' is already running"):
            with run_lock(p, wait=0.3):
                pass
        assert time.monotonic() - t0 >= 0.3
        threading.Timer(0.2, release.set).start()
        with run_lock(p, wait=30):  # freed during the wait
            assert release.is_set()
    finally:
        release.set()
        thread.join()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_holder_leaves_no_stale_lock(pipeline_file):
    holder = _hold_in_another_process(pipeline_file)
    holder.kill()
    holder.wait()
    with run_lock(load(pipeline_file)):
        pass
    assert lock_path(load(pipeline_file)).parent.is_dir()


def test_the_run_lock_works_without_fcntl(pipeline_file):
    """Windows has no ``fcntl``: the lock must not need it (it used to import it directly)."""
    code = textwrap.dedent(f"""
        import sys, warnings
        sys.modules["fcntl"] = None  # as on Windows
        warnings.simplefilter("ignore")
        from builder.errors import ExecutionError
        from builder.pipeline.model import load
        from builder.runner.lock import run_lock
        p = load({str(pipeline_file)!r})
        with run_lock(p):
            try:
                with run_lock(p):
                    print("taken twice")
            except ExecutionError as e:
                print(str(e).splitlines()[0])
        with run_lock(p):
            print("free again")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert "pipeline 'locked' is already running (pid " in first
    assert second == "free again"
