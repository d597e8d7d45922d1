"""Rows/s reading from and writing to PostgreSQL: Dockyard (ADBC, Arrow) against ``psql \\copy``.

``python -m bench.postgres [--rows 1000000] [--repeat 3]`` starts a throwaway server the way the
tests do (tests/pg_server.py: initdb in a temp folder, a free localhost port), fills a table
``bench_orders`` (bigint, int, numeric(10,2), timestamptz, text), and times, median of
``--repeat`` runs each:

- read, Dockyard: a pipeline with that table as a postgres source, written to a Parquet file
  (``dockyard run``'s engine, in process: plan, typing from the catalog, stream, write);
- read, psql: ``\\copy (SELECT * FROM bench_orders) TO 'file.csv' CSV``;
- write, Dockyard: a pipeline reading that Parquet file with a postgres output (mode replace:
  load, add the primary key, swap in one transaction);
- write, psql: ``\\copy`` of the CSV file into a new table (created first), then the same
  primary key.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path


def _timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.postgres")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    import adbc_driver_postgresql.dbapi as pg

    from builder.engines.duckdb import DuckDBEngine
    from builder.pipeline.model import load
    from builder.plan.compiler import plan
    from builder.plan.runspec import RunSpec
    from tests.pg_server import start_server

    server = start_server()
    work = Path(tempfile.mkdtemp(prefix="dockyard-pgbench-"))
    os.chmod(work, 0o777)  # psql runs as this user, but keep the folder readable for all
    env = {**os.environ, "PG_DSN": server.dsn, "PGPASSWORD": "secret-pw"}
    os.environ["PG_DSN"] = server.dsn
    psql = [str(server.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
            "-p", str(server.port), "-U", server.user, "-d", "postgres"]
    try:
        con = pg.connect(server.dsn, autocommit=True)
        cur = con.cursor()
        cur.execute("CREATE TABLE bench_orders (id bigint PRIMARY KEY, user_id int, "
                    "amount numeric(10,2), placed timestamptz, note text)")
        cur.execute(f"INSERT INTO bench_orders SELECT i, i % 10000, (i % 100000) / 100.0, "
                    f"timestamptz '2024-01-01' + i * interval '1 second', 'order ' || i "
                    f"FROM generate_series(1, {args.rows}) AS i")
        cur.execute("VACUUM ANALYZE bench_orders")
        read_yaml = work / "read.yaml"
        read_yaml.write_text(textwrap.dedent("""\
            version: 1
            name: pg_read
            sources:
              orders: {postgres: {dsn: {env: PG_DSN}, table: public.bench_orders}}
            steps:
              - id: copied
                sql: SELECT * FROM orders
            outputs:
              copied: {path: orders.parquet}
        """))
        write_yaml = work / "write.yaml"
        write_yaml.write_text(textwrap.dedent("""\
            version: 1
            name: pg_write
            sources:
              orders: {path: orders.parquet}
            steps:
              - id: copied
                sql: SELECT * FROM orders
            outputs:
              copied:
                postgres: {dsn: {env: PG_DSN}, table: public.bench_written, primary_key: [id]}
        """))
        engine = DuckDBEngine()

        def dockyard_read() -> None:
            engine.run(RunSpec.from_plan(plan(load(read_yaml))))

        def dockyard_write() -> None:
            engine.run(RunSpec.from_plan(plan(load(write_yaml))))

        csv = work / "orders.csv"

        def psql_read() -> None:
            subprocess.run([*psql, "-c", f"\\copy (SELECT * FROM bench_orders) TO '{csv}' CSV"],
                           check=True, env=env)

        def psql_write() -> None:
            subprocess.run([*psql, "-c", "DROP TABLE IF EXISTS bench_psql; CREATE TABLE "
                            "bench_psql (LIKE bench_orders)"], check=True, env=env)
            subprocess.run([*psql, "-c", f"\\copy bench_psql FROM '{csv}' CSV"], check=True,
                           env=env)
            subprocess.run([*psql, "-c", "ALTER TABLE bench_psql ADD PRIMARY KEY (id)"],
                           check=True, env=env)

        results = [("read", "dockyard (ADBC -> DuckDB -> Parquet)", _timed(dockyard_read,
                                                                            args.repeat)),
                   ("read", "psql \\copy TO csv", _timed(psql_read, args.repeat)),
                   ("write", "dockyard (Parquet -> DuckDB -> ADBC, replace + PK)",
                    _timed(dockyard_write, args.repeat)),
                   ("write", "psql \\copy FROM csv (+ PK)", _timed(psql_write, args.repeat))]
        cur.execute("SELECT count(*) FROM bench_written")
        written = cur.fetchone()[0]
        assert written == args.rows, written
        con.close()
    finally:
        server.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.rows:,} rows, median of {args.repeat}:")
    print("| direction | variant | seconds | rows/s |")
    print("|---|---|---|---|")
    for direction, variant, secs in results:
        print(f"| {direction} | {variant} | {secs:.2f} s | {args.rows / secs:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
