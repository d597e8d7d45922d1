"""Benchmark data: clicks, users, orders and daily product snapshots as parquet.

Reuses :func:`builder.sample_data.generate` (deterministic: DuckDB hashes of row numbers and a
seed), scaled from the number of clicks: ~1 user per 50 clicks (200k users at 10M clicks),
1 order per 10 clicks, and 30 daily snapshots of 100k products at any size. Each size lives in
its own folder ``bench/data/r<rows>/``, reused while its manifest matches.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from builder.sample_data import generate

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 7
DAYS = 30


def sizes(rows: int, products: int | None = None) -> dict[str, int]:
    """Generator arguments for ``rows`` click events (before re-deliveries)."""
    return {"clicks": rows, "users": max(50, rows // 50),
            "products": products if products is not None else (100_000 if rows >= 1_000_000
                                                             else max(100, rows // 10)),
            "days": DAYS, "seed": SEED}


def ensure_data(rows: int, base: Path = DATA_DIR, products: int | None = None,
                log: bool = True) -> Path:
    """The folder holding the data set for ``rows`` clicks, generated if missing."""
    out = base / f"r{rows}"
    want = sizes(rows, products)
    manifest = out / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("sizes") == want:
        return out
    if log:
        print(f"generating data: {want} -> {out}", flush=True)
    t0 = time.perf_counter()
    generate(out, fmt_tables="parquet", **want)
    info = {"sizes": want, "seconds": round(time.perf_counter() - t0, 1)}
    import duckdb

    con = duckdb.connect()
    info["rows"] = {name: con.execute(f"SELECT count(*) FROM '{out / name}.parquet'").fetchone()[0]
                    for name in ("clicks", "users", "orders", "product_snapshots")}
    con.close()
    manifest.write_text(json.dumps(info, indent=2))
    if log:
        print(f"generated in {info['seconds']}s: {info['rows']}", flush=True)
    return out
