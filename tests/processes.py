"""Helpers for tests that run `dockyard` as a separate process and kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_run_while_writing(pipeline: Path, temp_files: Path, pattern: str,
                           env: dict[str, str] | None = None) -> None:
    """Start ``dockyard run pipeline``; SIGKILL it once a file matching ``pattern`` appears in
    ``temp_files`` (its temp output), or after 60 s. Fails if the run ended before the kill."""
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", "run", str(pipeline)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if list(temp_files.glob(pattern)):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
