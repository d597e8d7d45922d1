"""DuckDB's compiled extension on its own, without the Python half of the ``duckdb`` package.

``import duckdb`` takes 100-150 ms, and all but 20 ms of it is the package's Python layer: the
relational API (``con.sql``, relations, expressions), which it adds to the connection class as it
loads. Validating, planning and running use only the extension's own API (``connect``,
``execute``, ``fetchall``, ``DESCRIBE`` for types, the exceptions), so they import it from here
and the command line never loads the rest. The previews (the app) use the relational API and
import ``duckdb`` themselves: the classes are the same, so connections made here gain those
methods then. :func:`q` quotes an identifier for any of them.
"""

from __future__ import annotations

try:
    import _duckdb as duckdb  # duckdb 2.x: the package re-exports this module's API
except ImportError:  # pragma: no cover - a duckdb build without a separate extension module
    import duckdb  # type: ignore[no-redef]

__all__ = ["duckdb", "q"]


def q(name: str) -> str:
    """A quoted DuckDB identifier: any character is safe (a double quote is doubled). The same
    text as sqlglot's ``exp.to_identifier(name, quoted=True).sql("duckdb")``, which takes 55 us:
    typing quotes every column of every step."""
    return '"' + name.replace('"', '""') + '"'

