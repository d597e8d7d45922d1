"""The floor: a hand-written DuckDB SQL script run by the duckdb Python package.

``python -m bench.floor SCRIPT DATA_DIR OUT [--memory-limit 2GB] [--temp-directory DIR]``
fills ``{data}`` and ``{out}`` in the script and runs it in one in-memory connection, then
prints ``done in N.NNs`` (the statements' time, as ``dockyard run`` prints its engine's).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("script", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--memory-limit")
    ap.add_argument("--temp-directory")
    a = ap.parse_args()
    sql = a.script.read_text().replace("{data}", str(a.data)).replace("{out}", str(a.out))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if a.memory_limit:
        con.execute("SET memory_limit = ?", [a.memory_limit])
    if a.temp_directory:
        con.execute("SET temp_directory = ?", [a.temp_directory])
    for statement in duckdb.extract_statements(sql):
        con.execute(statement)
    con.close()
    print(f"done in {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
