"""Pipelines A and B as dbt-duckdb models, generated into a throwaway project at bench time.

One model per step (views, dbt's default), the last one ``materialized='external'`` (a parquet
file, like the other variants' outputs); pipeline A's checks are singular tests, so the variant
runs ``dbt build`` (models, then tests). The model SQL is the hand-written SQL split into steps.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MODELS: dict[str, dict[str, str]] = {
    "a": {
        "a_deduped": """
            SELECT user_id, ts FROM read_parquet('{data}/clicks.parquet')
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ingested_at) = 1""",
        "a_sessions": """
            WITH flagged AS (
                SELECT user_id, ts,
                       CASE WHEN ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts)
                                 <= INTERVAL 30 MINUTE THEN 0 ELSE 1 END AS new_session
                FROM {{ ref('a_deduped') }})
            SELECT user_id, ts,
                   sum(new_session) OVER (PARTITION BY user_id ORDER BY ts RANGE BETWEEN
                                          UNBOUNDED PRECEDING AND CURRENT ROW) AS session_no
            FROM flagged""",
        "a_daily": """
            SELECT s.user_id, u.country, CAST(s.ts AS DATE) AS day, count(*) AS events,
                   count(DISTINCT s.session_no) AS sessions
            FROM {{ ref('a_sessions') }} s
            LEFT JOIN read_parquet('{data}/users.parquet') u USING (user_id)
            GROUP BY ALL""",
        "pipeline_a": """
            {{ config(materialized='external', location='{out}',
                      options={'compression': 'zstd', 'compression_level': 1}) }}
            SELECT user_id, country, day, events, sessions,
                   sum(events) OVER w AS events_7d, sum(sessions) OVER w AS sessions_7d
            FROM {{ ref('a_daily') }}
            WINDOW w AS (PARTITION BY user_id ORDER BY day
                         ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)""",
    },
    "b": {
        "b_changes": """
            SELECT *,
                   CASE WHEN lag(price) OVER w IS NOT DISTINCT FROM price
                         AND lag(name) OVER w IS NOT DISTINCT FROM name
                         AND lag(category) OVER w IS NOT DISTINCT FROM category
                         AND lag(snapshot_date) OVER w = snapshot_date - 1
                        THEN 0 ELSE 1 END AS is_new
            FROM read_parquet('{data}/product_snapshots.parquet')
            WINDOW w AS (PARTITION BY product_id ORDER BY snapshot_date)""",
        "b_versions": """
            WITH marked AS (
                SELECT *, sum(is_new) OVER (PARTITION BY product_id ORDER BY snapshot_date)
                              AS version
                FROM {{ ref('b_changes') }}
            ), runs AS (
                SELECT product_id, version, any_value(category) AS category,
                       any_value(price) AS price, min(snapshot_date) AS valid_from,
                       max(snapshot_date) AS last_seen
                FROM marked GROUP BY product_id, version
            )
            SELECT product_id, category, price, valid_from,
                   coalesce(lead(valid_from) OVER (PARTITION BY product_id ORDER BY valid_from),
                            CASE WHEN last_seen < (SELECT max(snapshot_date)
                                                   FROM {{ ref('b_changes') }})
                                 THEN last_seen + 1 END) AS valid_to
            FROM runs""",
        "pipeline_b": """
            {{ config(materialized='external', location='{out}',
                      options={'compression': 'zstd', 'compression_level': 1}) }}
            SELECT o.order_id, o.user_id, o.product_id, o.ordered_at, o.quantity, o.amount,
                   v.category, v.price AS unit_price, round(o.quantity * v.price, 2) AS list_value
            FROM read_parquet('{data}/orders.parquet') o
            LEFT JOIN {{ ref('b_versions') }} v
              ON o.product_id = v.product_id AND o.ordered_at >= v.valid_from
             AND (v.valid_to IS NULL OR o.ordered_at < v.valid_to)""",
    },
}

TESTS: dict[str, dict[str, str]] = {
    "a": {
        "a_checks": """
            SELECT * FROM {{ ref('pipeline_a') }}
            WHERE user_id IS NULL OR day IS NULL OR events < 1 OR NOT (events_7d >= events)""",
        "a_unique_user_day": """
            SELECT user_id, day FROM {{ ref('pipeline_a') }} GROUP BY ALL HAVING count(*) > 1""",
    },
    "b": {},
}

PROFILE = """\
bench:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: '{db}'
      threads: 1
      settings:
        TimeZone: UTC
        preserve_insertion_order: false
"""


def find_dbt(explicit: str | None = None) -> str | None:
    """The dbt executable: ``explicit``, $DOCKYARD_BENCH_DBT, ``dbt`` on PATH, or the venv
    ``bench/data/dbt-venv`` (where the README's install line puts it)."""
    local = Path(__file__).resolve().parent / "data" / "dbt-venv" / "bin" / "dbt"
    for cand in (explicit, os.environ.get("DOCKYARD_BENCH_DBT"), shutil.which("dbt"),
                 str(local)):
        if cand and Path(cand).exists():
            return cand
    return None


def make_project(root: Path, pipeline: str, data: Path, out: Path) -> list[str]:
    """Write a dbt project for ``pipeline`` under ``root``; returns the ``dbt build`` args."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "tests").mkdir(exist_ok=True)
    (root / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
        "model-paths: [models]\ntest-paths: [tests]\n")
    (root / "profiles.yml").write_text(PROFILE.format(db=root / "bench.duckdb"))

    def fill(sql: str) -> str:
        return sql.replace("{data}", str(data)).replace("{out}", str(out)).strip() + "\n"

    for name, sql in MODELS[pipeline].items():
        (root / "models" / f"{name}.sql").write_text(fill(sql))
    for name, sql in TESTS[pipeline].items():
        (root / "tests" / f"{name}.sql").write_text(fill(sql))
    return ["build", "--project-dir", str(root), "--profiles-dir", str(root), "--quiet"]
