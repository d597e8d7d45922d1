"""Where pipeline A's time goes: its compiled SQL run as one query, with pattern costs removed.

``python -m bench.breakdown DATA_DIR --repeat N`` (JSON on stdout) times, in one DuckDB
connection, the floor's query, the whole Dockyard pipeline compiled to one query
(``Plan.sql``), and that query with (1) the dedupe step ordering ties by the remaining columns
(strings) dropped and (2) the sessions counted by the md5 ``session_id`` instead of
``session_number`` (what the pipeline counted before). Both edits keep the result identical on
this data; a variant whose text is not found in the compiled SQL (patterns changed) is reported
as not applicable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import duckdb

from bench.harness import BENCH_DIR, prepare_pipeline
from builder.pipeline.model import load
from builder.plan.compiler import plan

TIE_BREAKERS = ('ORDER BY "ingested_at" ASC, "user_id" ASC, "ts" ASC, "page" ASC, "device" ASC',
                'ORDER BY "ingested_at" ASC')
SESSION_KEY = ('COUNT(DISTINCT "session_number")', 'COUNT(DISTINCT "session_id")')


def variants(data: Path) -> dict[str, str | None]:
    f = prepare_pipeline("a", data)
    p = plan(load(f))
    p.raise_for_errors()
    last_transform = [s.id for s in p.pipeline.steps][-2]  # the step the expect step checks
    dock = p.sql(last_transform, pretty=False)
    floor = (BENCH_DIR / "sql" / "pipeline_a.sql").read_text().replace("{data}", str(data))
    floor_q = floor.split("CREATE TEMP TABLE result AS", 1)[1].split(";", 1)[0]

    def sub(sql: str | None, pair: tuple[str, str]) -> str | None:
        return sql.replace(*pair) if sql is not None and pair[0] in sql else None

    no_ties = sub(dock, TIE_BREAKERS)
    return {
        "floor (hand-written query)": floor_q,
        "dockyard, whole pipeline as one query": dock,
        "... without dedupe's tie-breaking sort columns": no_ties,
        "... counting sessions by the md5 session_id, not session_number":
            sub(dock, SESSION_KEY),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    queries = variants(a.data.resolve())
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET preserve_insertion_order=false")
    times: dict[str, list[float]] = {k: [] for k, v in queries.items() if v is not None}
    for _ in range(a.repeat):
        for k in times:
            t0 = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE x AS {queries[k]}")
            times[k].append(time.perf_counter() - t0)
    out = [{"what": k, "median_s": round(statistics.median(times[k]), 3) if k in times else None}
           for k in queries]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
