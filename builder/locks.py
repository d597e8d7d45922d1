"""Locks between runs: one process at a time in the warehouse file, one writer per staging table.

DuckDB lets one process write a database file, and a second one fails at once; a staging table
is appended to or merged by reading the current file and renaming a new one over it, so two
writers at the same time lose one's rows. Both are guarded by OS file locks under
``<warehouse>/locks/`` (the ``filelock`` package: ``flock`` on Unix, ``LockFileEx`` on Windows),
which the OS releases when the process ends, however it ends. A run that finds a lock held
waits for it, up to ``DOCKYARD_WAREHOUSE_WAIT`` seconds (default 120), then stops with an error
naming the file and the process holding it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder import fsio
from builder.errors import ConfigError, ExecutionError

WAIT_ENV = "DOCKYARD_WAREHOUSE_WAIT"
DEFAULT_WAIT = 120.0  # seconds: a long merge into a big staging table must not fail the next run
_HOLDER_SUFFIX = ".holder"
# Locks this thread holds: taking one again (a nested call) must not wait for itself.
_held = threading.local()


class WaitTimeout(ExecutionError):
    """A lock still held by another process after the wait (``DOCKYARD_WAREHOUSE_WAIT``)."""


def wait_bound() -> float:
    """Seconds to wait for a warehouse or staging-table lock (``DOCKYARD_WAREHOUSE_WAIT``)."""
    raw = os.environ.get(WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_WAIT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{WAIT_ENV} is '{raw}': expected a number of seconds (0 or more), "
                          f"e.g. {WAIT_ENV}=300.")
    return value


def warehouse_lock_file(warehouse: Path) -> Path:
    """The lock held while the warehouse's DuckDB file is open (reading or writing)."""
    return warehouse / "locks" / "warehouse.lock"


def table_lock_file(warehouse: Path, table: str) -> Path:
    """The lock held while staging table ``table`` is written (read, computed, renamed)."""
    # Hashed: a table name is user text and must not pick where the lock file goes.
    safe = re.sub(r"[^A-Za-z0-9_]", "_", table)[:40]
    digest = hashlib.sha256(table.encode()).hexdigest()[:12]
    return warehouse / "locks" / "tables" / f"{safe}-{digest}.lock"


@contextmanager
def hold(lock_file: Path, what: str, wait: float | None = None,
         file: str | None = None) -> Iterator[None]:
    """Hold the lock ``lock_file`` for a ``with`` block; wait up to ``wait`` seconds for it.

    ``what`` names the guarded thing for the error, e.g. ``the warehouse '/w/dockyard.duckdb'``.
    ``wait`` defaults to :func:`wait_bound`; ``file`` is the pipeline file, for the error. Threads of one process exclude each other too; a
    thread that already holds the lock (a nested call) goes on without waiting.
    """
    from filelock import FileLock, Timeout

    held: set[str] = _held.__dict__.setdefault("paths", set())
    key = str(lock_file)
    if key in held:
        yield
        return
    bound = wait_bound() if wait is None else wait
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    # A new lock object per hold: two of them exclude each other even in one process.
    lock = FileLock(key)
    try:
        lock.acquire(timeout=bound)
    except Timeout:
        raise WaitTimeout(f"{what} is in use{holder(lock_file)} for more than {bound:g} s; "
                             f"try again when it has finished, or set {WAIT_ENV} to wait longer "
                             "(seconds).", file=file) from None
    note_holder(lock_file)
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        clear_holder(lock_file)  # before the release: never wipes the next holder's note
        lock.release()


def note_holder(lock_file: Path) -> None:
    """Note ``pid N since T`` beside a lock this process has just taken, for the messages of
    the processes that find it held (the lock file itself is the OS lock's, left alone)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    _write_quietly(_holder_file(lock_file), f"pid {os.getpid()} since {stamp}")


def clear_holder(lock_file: Path) -> None:
    """Wipe the note of :func:`note_holder`; call it before releasing the lock."""
    _write_quietly(_holder_file(lock_file), "")


def holder_note(lock_file: Path) -> str:
    """The holder's note (``pid N since T``), or '' when unknown."""
    try:
        return _holder_file(lock_file).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _holder_file(lock_file: Path) -> Path:
    return lock_file.with_name(lock_file.name + _HOLDER_SUFFIX)


def holder(lock_file: Path) -> str:
    """`` by another process (pid N since T)``: who holds ``lock_file``, as far as known."""
    text = holder_note(lock_file)
    if text.startswith(f"pid {os.getpid()} "):  # a thread of this process (the app)
        return f" by another run in this process ({text})"
    return f" by another process ({text})" if text else " by another process"


def _write_quietly(path: Path, text: str) -> None:
    """Who holds a lock is only for messages: failing to note it changes nothing else."""
    try:
        fsio.write_text(path, text)
    except OSError:
        pass
