"""Waits that overlap: DuckDB work that holds no GIL, started in a thread while Python goes on.

Creating a DuckDB database (its built-in extensions load), closing a database file, syncing a
written file to disk and the file system freeing a replaced file each take 20-50 ms, most of it
without the GIL. A run that waits for them one after the other spends a tenth of a small
pipeline's time there; started early in a :class:`Task`, they overlap with loading the pipeline,
with the queries, or with each other.

This module imports only the standard library and DuckDB's compiled extension (20 ms, see
:mod:`builder.duckdb_native`): ``dockyard run`` imports it first, so that :func:`prestart`
begins while the rest of Dockyard loads. (``builder.plan.sandbox`` keeps its own cache of databases
for typing and schemas, opened ahead with ``prewarm``.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from builder.duckdb_native import duckdb

T = TypeVar("T")
# Extensions are never installed or loaded on the fly: the machine may be offline, and user SQL
# must not pull code in.
CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


class Task(Generic[T]):
    """A call running in its own thread; :meth:`result` waits for it, then returns or raises."""

    def __init__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None

        def call() -> None:
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - raised again to whoever waits for it
                self._error = e

        self._thread = threading.Thread(target=call, name=f"dockyard-{fn.__name__}",
                                        daemon=True)
        self._thread.start()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


_spares: list[Task[duckdb.DuckDBPyConnection]] = []
_spare_lock = threading.Lock()


def prestart(count: int = 1) -> None:
    """Start creating in-memory databases now, up to ``count`` unused ones; :func:`take_spare`
    hands them out.

    ``dockyard run`` starts two as its first step: the run's database, and the one that attaches
    the warehouse to record the run. Their 30-50 ms each then overlap with importing duckdb and
    loading the pipeline instead of delaying the run's start and end.
    """
    with _spare_lock:
        while len(_spares) < count:
            _spares.append(Task(duckdb.connect, ":memory:", config=CONFIG))


def take_spare() -> duckdb.DuckDBPyConnection | None:
    """A prestarted in-memory database (never used before), or None if there is none."""
    with _spare_lock:
        task = _spares.pop(0) if _spares else None
    if task is None:
        return None
    try:
        return task.result()
    except duckdb.Error:
        return None  # the caller creates one itself, and reports any lasting problem


class SyncAhead:
    """Flushes a file to disk while another writer is still appending to it.

    A thread checks the file's size every ``poll`` seconds and syncs it each time ``step`` more
    bytes have arrived, so that the writer's own fsync at the end only has the last part left to
    flush. This is RocksDB's ``bytes_per_sync``: a 22 MB Parquet output took 30-40 ms to sync
    after its COPY; synced along the way, its disk writes overlap with the query instead. Errors
    are left to the final fsync, which reports them.
    """

    def __init__(self, path: str | os.PathLike[str], step: int = 4 << 20,
                 poll: float = 0.02) -> None:
        self._stop = threading.Event()
        self._task = Task(self._follow, os.fspath(path), step, poll)

    def _follow(self, path: str, step: int, poll: float) -> None:
        fd, synced = -1, 0
        try:
            while not self._stop.wait(poll):
                try:
                    size = os.stat(path).st_size
                    if size - synced < step:
                        continue
                    if fd < 0:
                        fd = os.open(path, os.O_RDONLY)
                    os.fdatasync(fd)
                    synced = size
                except OSError:
                    continue  # not created yet, or gone: the writer reports its own errors
        finally:
            if fd >= 0:
                os.close(fd)

    def stop(self) -> None:
        """Stop following the file (the writer has finished); waits for the thread."""
        self._stop.set()
        self._task.result()
