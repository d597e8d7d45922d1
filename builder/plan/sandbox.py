"""Sandboxed in-memory DuckDB databases for typing steps and reading source schemas.

Every plan types its steps on a database that may read no file at all, and reads each source's
schema on one that may read only that source's folder. Opening a database costs 35-50 ms (DuckDB
loads its built-in extensions), so one locked database per set of allowed folders is kept.

This module imports nothing but duckdb (and :mod:`builder.background`, which imports nothing
else either) and the light :mod:`builder.pipeline.project`, so the CLI can start opening the databases a command will need (``prewarm``)
while it imports sqlglot, networkx and pydantic: DuckDB releases the GIL while it opens a
database, so on two cores the two overlap.
"""

from __future__ import annotations

import glob
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from builder.background import CONFIG, Task
from builder.duckdb_native import duckdb
from builder.pipeline.project import find_project

if TYPE_CHECKING:
    from builder.plan.compiler import Plan

_SIZE = 8


class _Slot:
    """One database, opened once; ``lock`` makes a second opener wait for the first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None


_DATABASES: OrderedDict[tuple[str, ...], _Slot] = OrderedDict()
_DATABASES_LOCK = threading.Lock()


def _open(allowed: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config=CONFIG)
    con.execute("SET TimeZone='UTC'")
    # Files change between plans; their schema cache is ours (keyed by size/mtime).
    con.execute("SET enable_external_file_cache=false")
    con.execute("SET allowed_directories=?", [list(allowed)])
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def _database(allowed_dirs: Iterable[str]) -> duckdb.DuckDBPyConnection:
    key = tuple(sorted(allowed_dirs))
    with _DATABASES_LOCK:
        slot = _DATABASES.get(key)
        if slot is None:
            slot = _DATABASES[key] = _Slot()
            while len(_DATABASES) > _SIZE:
                # Dropped, never closed: closing would break cursors still in use.
                _DATABASES.popitem(last=False)
        _DATABASES.move_to_end(key)
    with slot.lock:
        if slot.con is None:
            slot.con = _open(key)
        return slot.con


def sandboxed_cursor(allowed_dirs: Iterable[str]) -> duckdb.DuckDBPyConnection:
    """A cursor on an in-memory database that may read only ``allowed_dirs`` (none: no file).

    A cursor is a connection of its own: its TEMP tables are its own, and closing it keeps the
    database for the next plan.
    """
    return _database(allowed_dirs).cursor()


def describe(read_sql: str, allowed_dirs: Iterable[str]) -> list[tuple[str, str]]:
    """(name, type) of each column a source's read query gives; DuckDB reads only file
    metadata (Parquet footers) or a sniffed sample (CSV)."""
    con = sandboxed_cursor(allowed_dirs)
    try:
        rows = con.execute(f"DESCRIBE {read_sql}").fetchall()
    finally:
        con.close()
    return [(str(r[0]), str(r[1])) for r in rows]


def prewarm(dir_sets: Iterable[Iterable[str]]) -> Task[None]:
    """Open the databases for these sets of allowed folders in a background thread.

    A later ``sandboxed_cursor`` for one of them waits for it instead of opening another. The
    thread is a daemon: a process that exits first does not wait for it. Failures are left to
    that later call, which reports them where they matter.
    """
    sets = [tuple(d) for d in dir_sets]

    def work() -> None:
        for dirs in sets:
            try:
                _database(dirs)
            except Exception:  # noqa: BLE001 - best effort: the real call reports it, no traceback
                return

    return Task(work)


def source_dir(path: str) -> Path:
    """The folder a source path or glob lives in (the part before the first wildcard)."""
    head = path
    for i, ch in enumerate(path):
        if ch in "*?[":
            head = path[:i]
            break
    p = Path(head)
    return p if head.endswith(os.sep) else p.parent


def normalise_dirs(dirs: Iterable[Path]) -> list[str]:
    """Each folder as declared and as resolved (a data folder may itself be a link), once."""
    seen: list[str] = []
    for d in dirs:
        for form in (Path(os.path.abspath(d)), Path(d).resolve()):
            text = str(form).rstrip(os.sep) + os.sep
            if text not in seen:
                seen.append(text)
    return seen


def sandbox_dirs_for_paths(paths: Iterable[str]) -> list[str]:
    """The sandbox folders for reading these source paths (globs allowed)."""
    return normalise_dirs([source_dir(p) for p in paths if "://" not in p])


def sandbox_dirs(plan: Plan, extra: Iterable[str | Path] = ()) -> list[str]:
    """Folders a pipeline's run may touch: its source folders, output folders and ``extra``."""
    pipeline = plan.pipeline
    dirs: list[Path] = []
    for src in pipeline.sources.values():
        if src.path and "://" not in src.path:
            dirs.append(source_dir(pipeline.resolve(src.path)))
    for sp in plan.sources.values():
        dirs.extend(source_dir(p) for p in sp.paths if "://" not in p)
    for out in pipeline.outputs.values():
        if out.path:
            dirs.append(Path(pipeline.resolve(out.path)).parent)
        elif out.staging:
            dirs.append(find_project(pipeline.path).staging_dir)
    dirs.extend(Path(d) for d in extra)
    return normalise_dirs(dirs)


def file_identity(path: str) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime_ns) of every file a path or glob matches; changes when data changes."""
    if "://" in path:
        return ((path, 0, 0),)
    matches = sorted(glob.glob(path, recursive=True)) if any(c in path for c in "*?[") else [path]
    out = []
    for m in matches:
        try:
            st = os.stat(m)
        except OSError:
            continue
        out.append((m, st.st_size, st.st_mtime_ns))
    return tuple(out)
