"""DuckDB connections for runs and previews: sandboxed, extensions off, configuration locked.

Every connection that runs user SQL is sandboxed: it can read and write only the folders the
pipeline declares (sources, outputs, the warehouse, the spill folder); extensions are never
installed or loaded on the fly; and the configuration is locked so a query cannot undo any of it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from builder.errors import ConfigError, engine_message
from builder.plan.sandbox import CONFIG, normalise_dirs, q


@dataclass(frozen=True)
class ConnectionSettings:
    """How the connections of an engine (and of its previews) are made; see :func:`connect`."""

    memory_limit: str | None = None  # spill to disk past it, e.g. '2GB'
    threads: int | None = None
    temp_directory: str | None = None  # the spill folder (default: one per process in /tmp)
    sandbox: bool = True
    extra_dirs: tuple[str, ...] = ()  # folders allowed besides the pipeline's own

    def connect(self, dirs: Iterable[str]) -> duckdb.DuckDBPyConnection:
        """A connection allowed ``dirs`` and :attr:`extra_dirs`."""
        return connect(normalise_dirs([*map(Path, dirs), *map(Path, self.extra_dirs)]),
                       memory_limit=self.memory_limit, threads=self.threads,
                       temp_directory=self.temp_directory, sandbox=self.sandbox)


def connect(allowed_dirs: list[str], *, database: str = ":memory:",
            memory_limit: str | None = None, threads: int | None = None,
            temp_directory: str | None = None, sandbox: bool = True,
            settings: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection limited to ``allowed_dirs``, extensions off, configuration locked."""
    con = duckdb.connect(database, config=CONFIG)
    con.execute("SET TimeZone='UTC'")
    if memory_limit:
        try:
            con.execute("SET memory_limit=?", [memory_limit])
        except duckdb.Error as e:  # '--memory-limit lots': the user's value, not a crash
            con.close()
            raise ConfigError(f"memory limit '{memory_limit}': {engine_message(e)} Write it "
                              "like 2GB or 500MB.") from None
    if threads:
        con.execute(f"SET threads={int(threads)}")
    tmp = temp_directory or os.path.join(tempfile.gettempdir(), f"dockyard-spill-{os.getpid()}")
    con.execute("SET temp_directory=?", [tmp])
    con.execute("SET preserve_insertion_order=false")
    for key, value in (settings or {}).items():
        con.execute(f"SET {q(key)}=?", [value])
    if sandbox:
        dirs = [*allowed_dirs, str(Path(tmp).resolve()) + os.sep]
        con.execute("SET allowed_directories=?", [dirs])
        con.execute("SET enable_external_access=false")
        con.execute("SET lock_configuration=true")
    return con
