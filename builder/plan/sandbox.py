"""Sandboxed in-memory DuckDB databases for typing steps and reading source schemas.

Every plan types its steps on a database that may read no file at all, and reads each source's
schema on one that may read only that source's folder. Opening a database costs 35-50 ms (DuckDB
loads its built-in extensions), so the last few databases, one per set of allowed folders, are
kept (:func:`functools.lru_cache`).
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb

# Extensions are never installed or loaded on the fly: the machine may be offline, and user SQL
# must not pull code in. Every DuckDB database Dockyard creates uses this configuration.
CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def q(name: str) -> str:
    """A quoted DuckDB identifier: any character is safe (a double quote is doubled). The same
    text as sqlglot's ``exp.to_identifier(name, quoted=True).sql("duckdb")``, which takes 55 us:
    typing quotes every column of every step."""
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=8)
def _database(allowed: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    """The database for one sorted set of allowed folders. One pushed out of the cache is
    dropped, never closed: closing it would break cursors still in use."""
    con = duckdb.connect(":memory:", config=CONFIG)
    con.execute("SET TimeZone='UTC'")
    # Files change between plans; their schema cache is ours (keyed by size/mtime).
    con.execute("SET enable_external_file_cache=false")
    con.execute("SET allowed_directories=?", [list(allowed)])
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def sandboxed_cursor(allowed_dirs: Iterable[str]) -> duckdb.DuckDBPyConnection:
    """A cursor on an in-memory database that may read only ``allowed_dirs`` (none: no file).

    A cursor is a connection of its own: its TEMP tables are its own, and closing it keeps the
    database for the next plan.
    """
    return _database(tuple(sorted(allowed_dirs))).cursor()


def describe(read_sql: str, allowed_dirs: Iterable[str]) -> list[tuple[str, str]]:
    """(name, type) of each column a source's read query gives; DuckDB reads only file
    metadata (Parquet footers) or a sniffed sample (CSV)."""
    con = sandboxed_cursor(allowed_dirs)
    try:
        rows = con.execute(f"DESCRIBE {read_sql}").fetchall()
    finally:
        con.close()
    return [(str(r[0]), str(r[1])) for r in rows]


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
