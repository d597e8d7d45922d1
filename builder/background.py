"""Waits that overlap: DuckDB work that holds no GIL, started in a thread while Python goes on.

Creating a DuckDB database (its built-in extensions load), opening or closing a database file,
and the file system freeing a replaced file each take 20-50 ms, most of it without the GIL. A
run that waits for them one after the other spends a tenth of a small pipeline's time there;
started early in a :class:`Task`, they overlap with loading the pipeline, with syncing an output
to disk, or with each other.

This module imports only the standard library and duckdb: ``dockyard run`` imports it first,
so that :func:`prestart` begins before the rest of Dockyard is loaded. (``builder.sandbox``
keeps its own cache of databases for typing and schemas, opened ahead with ``prewarm``.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import duckdb

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


_spare: list[Task[duckdb.DuckDBPyConnection]] = []
_spare_lock = threading.Lock()


def prestart() -> None:
    """Start creating the next in-memory database now; :func:`take_spare` hands it out.

    ``dockyard run`` calls this first, so the 30-50 ms of creating the run's database overlap
    with loading the pipeline instead of preceding the run.
    """
    with _spare_lock:
        if not _spare:
            _spare.append(Task(duckdb.connect, ":memory:", config=CONFIG))


def take_spare() -> duckdb.DuckDBPyConnection | None:
    """The prestarted in-memory database (never used before), or None if there is none."""
    with _spare_lock:
        task = _spare.pop() if _spare else None
    if task is None:
        return None
    try:
        return task.result()
    except duckdb.Error:
        return None  # the caller creates one itself, and reports any lasting problem
