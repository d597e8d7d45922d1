"""One run of a pipeline at a time: a second run refuses with a message instead of racing.

The lock is an OS file lock (``flock``) on ``<warehouse>/locks/<pipeline>.lock``, so it is
released by the kernel when the process ends, however it ends (a SIGKILLed run leaves no stale
lock). The file records who holds it, for the message the second run prints.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import ExecutionError
from builder.pipeline.project import find_project

if TYPE_CHECKING:
    from builder.pipeline.model import Pipeline
    from builder.plan.runspec import PipelineRef


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_NAME_CHARS = 60  # of the pipeline's name in the file name; the digest keeps them apart


def lock_path(pipeline: Pipeline | PipelineRef) -> Path:
    """``<warehouse>/locks/<name>-<digest>.lock``, one per pipeline file.

    The pipeline's name is free text ('../../x', 'a/b', quotes, 300 characters): in the file
    name it is cut to letters, digits, '-' and '_', so the lock never leaves the locks folder
    and is a valid file name; the digest of the file's path tells pipelines apart.
    """
    ident = str(Path(pipeline.path).resolve()) if pipeline.path else pipeline.name
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    label = _UNSAFE.sub("_", pipeline.name)[:_NAME_CHARS].strip("_") or "pipeline"
    return find_project(pipeline.path).warehouse / "locks" / f"{label}-{digest}.lock"


@contextmanager
def run_lock(pipeline: Pipeline | PipelineRef, wait: float = 0.0) -> Iterator[None]:
    """Hold the pipeline's run lock; waits up to ``wait`` seconds, then refuses."""
    path = lock_path(pipeline)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(path)
                    raise ExecutionError(f"pipeline '{pipeline.name}' is already running"
                                         f"{holder}; wait for it to finish, then run again.",
                                         file=pipeline.file) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.write(fd, f"pid {os.getpid()} since {stamp}".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""
