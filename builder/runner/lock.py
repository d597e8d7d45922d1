"""One run of a pipeline at a time: a second run refuses with a message instead of racing.

The lock is an OS file lock on ``<warehouse>/locks/<pipeline>.lock`` (the ``filelock``
package: ``flock`` on Unix, ``LockFileEx`` on Windows), so it is released by the OS when the
process ends, however it ends (a SIGKILLed run leaves no stale lock). Who holds it is noted
beside it (:func:`builder.locks.note_holder`), for the message the second run prints.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from builder.errors import ExecutionError
from builder.locks import clear_holder, holder_note, note_holder
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
    """Hold the pipeline's run lock; waits up to ``wait`` seconds, then refuses.

    Another thread of this process holding it (the app) excludes this one too.
    """
    path = lock_path(pipeline)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new lock object per run: two of them exclude each other even in one thread.
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        note = holder_note(path)
        raise ExecutionError(f"pipeline '{pipeline.name}' is already running"
                             f"{f' ({note})' if note else ''}; wait for it to finish, then run "
                             "again.", file=pipeline.file) from None
    note_holder(path)
    try:
        yield
    finally:
        clear_holder(path)  # before the release: never wipes the next holder's note
        lock.release()
