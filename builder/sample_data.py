"""Deterministic sample data: click events, users, orders and daily product snapshots.

The same generator makes the small data set shipped in ``saved_pipelines/data/`` (the app's
examples) and the large ones of the benchmark (``bench/``): pseudo-random values come from
DuckDB's ``hash`` of row numbers and a seed, so a size and seed always give the same rows.

The data is shaped so the patterns have something to do: clicks come in sessions (gaps under
and over 30 minutes), about 2% are exact re-deliveries of an event and 1% arrive late; product
snapshots change price now and then, sometimes back to an earlier price, and products disappear.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from builder import fsio
from builder.pipeline.model import load
from builder.pipeline.project import find_project
from builder.plan.dependencies import producer_files
from builder.runner.pipelines import run_pipeline
from builder.warehouse.store import WarehouseStore

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "saved_pipelines" / "data"


def _r(expr: str, salt: int, seed: int) -> str:
    """A pseudo-random integer in [0, 2^31) from an expression, a salt and the seed."""
    return f"((hash({expr}, {salt}, {seed}) % 2147483647)::BIGINT)"


def generate(out_dir: Path, clicks: int = 20_000, users: int = 500, products: int = 200,
             days: int = 30, seed: int = 7, fmt_clicks: str = "parquet",
             threads: int | None = None, fmt_tables: str = "csv") -> dict[str, Path]:
    """Write users.<t>, clicks.<fmt>, orders.parquet and product_snapshots.<t> to ``out_dir``.

    ``fmt_tables`` (``csv`` or ``parquet``) is the format of users and product_snapshots: the
    example data keeps CSV, the benchmark writes parquet.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    if threads:
        con.execute(f"SET threads={int(threads)}")
    sessions = max(1, clicks // 8)
    paths = {
        "users": out_dir / f"users.{fmt_tables}",
        "clicks": out_dir / f"clicks.{fmt_clicks}",
        "orders": out_dir / "orders.parquet",
        "product_snapshots": out_dir / f"product_snapshots.{fmt_tables}",
    }
    tables_opts = "FORMAT parquet" if fmt_tables == "parquet" else "FORMAT csv, HEADER true"
    base = "TIMESTAMP '2024-01-01 00:00:00'"
    con.execute(f"""
        CREATE TEMP TABLE users AS
        SELECT i::INTEGER AS user_id,
               'user_' || i AS name,
               ['DE','FR','US','GB','IN','BR'][1 + {_r('i', 1, seed)} % 6] AS country,
               (DATE '2023-01-01' + ({_r('i', 2, seed)} % 365)::INTEGER) AS signup_date,
               'user' || i || '@example.com' AS email
        FROM range(1, {users} + 1) t(i)""")
    con.execute(f"""
        CREATE TEMP TABLE s AS
        SELECT s, 1 + {_r('s', 3, seed)} % {users} AS user_id,
               {base} + to_seconds(({_r('s', 4, seed)} % ({days} * 86400))::BIGINT) AS start,
               1 + {_r('s', 5, seed)} % 15 AS n
        FROM range({sessions}) t(s)""")
    con.execute(f"""
        CREATE TEMP TABLE c AS
        SELECT row_number() OVER (ORDER BY s, k) AS event_id, user_id,
               start + to_seconds((k * (30 + {_r('s * 100 + k', 6, seed)} % 900))::BIGINT) AS ts,
               ['home','search','product','cart','checkout','help'][1 + {_r('s*100+k', 7, seed)} % 6]
                   AS page,
               ['web','ios','android'][1 + {_r('s', 8, seed)} % 3] AS device,
               k
        FROM s, range(15) r(k) WHERE k < n""")
    con.execute(f"""
        CREATE TEMP TABLE clicks AS
        SELECT event_id, user_id, ts, page, device,
               ts + to_seconds(CASE WHEN {_r('event_id', 9, seed)} % 100 = 0
                    THEN 3600 * (1 + {_r('event_id', 10, seed)} % 48) ELSE 5 END::BIGINT)
                   AS ingested_at
        FROM c
        UNION ALL  -- re-deliveries: the same event again, ingested later
        SELECT event_id, user_id, ts, page, device, ts + INTERVAL 10 MINUTE
        FROM c WHERE {_r('event_id', 11, seed)} % 50 = 0
        ORDER BY ts, event_id""")
    n_orders = max(1, clicks // 10)
    con.execute(f"""
        CREATE TEMP TABLE orders AS
        SELECT i::INTEGER AS order_id, (1 + {_r('i', 12, seed)} % {users})::INTEGER AS user_id,
               (1 + {_r('i', 13, seed)} % {products})::INTEGER AS product_id,
               {base} + to_seconds(({_r('i', 14, seed)} % ({days} * 86400))::BIGINT)
                   AS ordered_at,
               (1 + {_r('i', 15, seed)} % 4)::INTEGER AS quantity,
               round(5 + ({_r('i', 16, seed)} % 20000) / 100.0, 2) AS amount,
               ['paid','paid','paid','refunded','cancelled'][1 + {_r('i', 17, seed)} % 5]
                   AS status
        FROM range(1, {n_orders} + 1) t(i)""")
    # Prices change on ~3% of product-days and flip back half the time; ~1% of products are
    # delisted for good at some day (hard deletes for scd2).
    con.execute(f"""
        CREATE TEMP TABLE product_snapshots AS
        WITH p AS (
            SELECT p AS product_id,
                   ['books','toys','garden','kitchen','sports'][1 + {_r('p', 18, seed)} % 5]
                       AS category,
                   round(3 + ({_r('p', 19, seed)} % 9000) / 100.0, 2) AS base_price,
                   CASE WHEN {_r('p', 20, seed)} % 100 < 5
                        THEN {_r('p', 21, seed)} % {days} ELSE {days} END AS delisted_day
            FROM range(1, {products} + 1) t(p)),
        d AS (SELECT d FROM range({days}) t(d)),
        changes AS (
            SELECT product_id, d, category, base_price, delisted_day,
                   sum(CASE WHEN {_r('product_id * 1000 + d', 22, seed)} % 100 < 3
                            THEN 1 ELSE 0 END) OVER (PARTITION BY product_id ORDER BY d)
                       AS version
            FROM p, d)
        SELECT (DATE '2024-01-01' + d::INTEGER) AS snapshot_date, product_id::INTEGER
                   AS product_id,
               'product ' || product_id AS name, category,
               CASE WHEN version % 2 = 0 THEN base_price
                    ELSE round(base_price * (1 + version / 10.0), 2) END AS price
        FROM changes WHERE d < delisted_day
        ORDER BY snapshot_date, product_id""")
    clicks_opts = "FORMAT parquet" if fmt_clicks == "parquet" else "FORMAT csv, HEADER true"
    options = {"users": tables_opts, "clicks": clicks_opts, "orders": "FORMAT parquet",
               "product_snapshots": tables_opts}
    try:
        for table, opts in options.items():
            _copy_atomically(con, table, paths[table], opts)
    finally:
        con.close()
    return paths


def _copy_atomically(con: duckdb.DuckDBPyConnection, table: str, target: Path,
                     options: str) -> None:
    """COPY ``table`` to a temp file beside ``target``, then put it in place (builder.fsio): a
    pipeline reading the example data never sees half a file."""
    tmp = fsio.temp_path(target)
    try:
        con.execute(f"COPY {table} TO ? ({options})", [str(tmp)])
        fsio.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ensure_sample_data(out_dir: Path = DEFAULT_DIR) -> Path:
    """Create the small example data set if any file is missing; returns its folder."""
    names = ("users.csv", "clicks.parquet", "orders.parquet", "product_snapshots.csv")
    if not all((out_dir / n).exists() for n in names):
        generate(out_dir)
    return out_dir


def ensure_examples(pipelines_dir: Path) -> list[str]:
    """Sample data, plus the staging tables example pipelines read (published by running
    the example that produces each, once). Returns the pipelines it ran."""
    ensure_sample_data(pipelines_dir / "data")
    project = find_project(pipelines_dir / "x.yaml")
    ran = []
    for name, file in producer_files(project).items():
        if not project.staging_table(name).exists():
            run_pipeline(load(file), WarehouseStore())
            ran.append(file.stem)
    return ran


def main() -> None:
    ap = argparse.ArgumentParser(description="Generate Dockyard's deterministic sample data.")
    ap.add_argument("--out", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--clicks", type=int, default=20_000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--products", type=int, default=200)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    for name, path in generate(a.out, a.clicks, a.users, a.products, a.days, a.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
