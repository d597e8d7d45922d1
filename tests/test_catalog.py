"""Catalog metadata applied at the edges, staging tables, lineage and run history (issue 5)."""

from __future__ import annotations

import hashlib
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from builder import api
from builder.cli.main import main
from builder.errors import ExecutionError
from builder.pipeline.model import load
from builder.pipeline.project import WAREHOUSE_ENV, find_project
from builder.plan.compiler import plan
from builder.plan.dependencies import upstream_files
from builder.plan.lineage import column_origins, trace
from builder.warehouse.store import run_history, staging_info
from tests.processes import kill_run_while_writing

EVENTS_CSV = """\
event_id,user_id,amount,email,updated_at
1,10,12.5,a@x.org,2024-01-01 10:00:00
1,10,99.0,a@x.org,2024-01-01 09:00:00
2,11,3.25,b@x.org,2024-01-02 10:00:00
3,12,7.0,,2024-01-03 10:00:00
"""

EVENTS_ENTRY = """\
name: events
description: Payment events.
owner: payments@example.com
location: ../data/events.csv
columns:
  event_id: The event's id.
  user_id: Who paid.
  amount: Amount in EUR.
primary_key: [event_id]
event_time: updated_at
dedupe: updated_at
types: {amount: DOUBLE, user_id: BIGINT}
pii: {email: hash}
pii_access: [support_export]
expectations:
  - not_null: [user_id]
sample_key: [user_id]
"""


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.csv").write_text(EVENTS_CSV)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "events.yaml").write_text(EVENTS_ENTRY)
    (tmp_path / "saved_pipelines").mkdir()
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    monkeypatch.setenv("DOCKYARD_PII_SALT", "pepper")
    return tmp_path


def _pipeline(root: Path, name: str, body: str) -> Path:
    path = root / "saved_pipelines" / f"{name}.yaml"
    path.write_text(f"version: 1\nname: {name}\n" + textwrap.dedent(body))
    return path


def _staging_rows(root: Path, name: str, order: str) -> list[tuple]:
    f = root / "warehouse" / "staging" / f"{name}.parquet"
    return duckdb.sql(f"SELECT * FROM '{f}' ORDER BY {order}").fetchall()


READ_ONLY = """\
sources:
  events: {catalog: events}
steps:
  - id: all_events
    sql: SELECT * FROM events
outputs:
  all_events: {path: ../out/events.csv}
"""


def test_catalog_metadata_is_applied_on_read_without_pipeline_code(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    p = plan(load(_pipeline(root, "reader", READ_ONLY)))
    assert not p.errors, p.errors
    sp = p.sources["events"]
    # casts, dedupe, masking, expectations: each named, in the compiled SQL as its own stage
    assert [name for name, _ in sp.stages] == ["events__typed", "events__deduped",
                                               "events__masked"]
    assert any("dedupe" in a for a in sp.applied) and any("masked email" in a for a in sp.applied)
    sql = p.sql("all_events")
    for stage in ("events__raw", "events__typed", "events__deduped", "events__masked"):
        assert f'"{stage}" AS (' in sql
    assert [(c.name, c.type) for c in p.schema("events") or ()][:3] == [
        ("event_id", "BIGINT"), ("user_id", "BIGINT"), ("amount", "DOUBLE")]
    rows = api.preview(p.pipeline, "all_events", limit=10).rows.sort_values("event_id")
    assert rows["event_id"].tolist() == [1, 2, 3]  # the duplicate event 1 is gone
    assert rows["amount"].tolist() == [12.5, 3.25, 7.0]  # the latest version of event 1 kept
    expected = hashlib.sha256(b"peppera@x.org").hexdigest()
    assert rows["email"].tolist()[0] == expected and rows["email"].isna().tolist()[2]


def test_pii_opt_out_only_where_the_catalog_allows_it(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    body = READ_ONLY.replace("{catalog: events}", "{catalog: events, pii_access: [email]}")
    refused = plan(load(_pipeline(root, "marketing", body)))
    assert any("asks for raw 'email', but the catalog does not list it in 'pii_access'"
               in str(e) for e in refused.errors)
    allowed = plan(load(_pipeline(root, "support_export", body)))
    assert not allowed.errors
    rows = api.preview(allowed.pipeline, "all_events").rows
    assert "a@x.org" in rows["email"].tolist()


def test_source_expectation_failure_names_source_and_check(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    (root / "data" / "events.csv").write_text(EVENTS_CSV + "4,,1.0,c@x.org,2024-01-04 00:00:00\n")
    path = _pipeline(root, "reader", READ_ONLY)
    with pytest.raises(ExecutionError, match=r"source 'events': check 'not_null\(user_id\)' "
                                             r"failed on 1 row"):
        api.run(load(path))
    assert not (root / "out" / "events.csv").exists()
    last = run_history(find_project(path))[0]
    assert last["status"] == "failed" and "not_null(user_id)" in last["error"]


def test_unknown_catalog_entry_and_bad_entry_are_one_line_errors(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path, monkeypatch)
    path = _pipeline(root, "reader", READ_ONLY.replace("{catalog: events}", "{catalog: event}"))
    assert main(["validate", str(path)]) == 2
    assert "catalog entry 'event' not found" in capsys.readouterr().err
    (root / "catalog" / "bad.yaml").write_text("name: bad\nlocation: x.csv\nprimry_key: [a]\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:3 unknown key 'primry_key' in catalog entry. Did you mean 'primary_key'?" in err


MERGE = """\
sources:
  events: {catalog: events}
steps:
  - id: latest
    pattern: select
    inputs: [events]
    params: {columns: [event_id, user_id, amount]}
outputs:
  latest: {staging: payments, mode: merge, primary_key: [event_id], description: Payments.}
"""


def test_merge_output_upserts_on_primary_key(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    path = _pipeline(root, "payments", MERGE)
    api.run(load(path))
    assert _staging_rows(root, "payments", "event_id") == [(1, 10, 12.5), (2, 11, 3.25),
                                                           (3, 12, 7.0)]
    # Event 2 changes, event 5 is new; event 1 and 3 are not in the new file but stay.
    (root / "data" / "events.csv").write_text(
        "event_id,user_id,amount,email,updated_at\n"
        "2,11,4.0,b@x.org,2024-02-01 00:00:00\n5,13,1.0,e@x.org,2024-02-01 00:00:00\n")
    api.run(load(path))
    assert _staging_rows(root, "payments", "event_id") == [
        (1, 10, 12.5), (2, 11, 4.0), (3, 12, 7.0), (5, 13, 1.0)]
    info = staging_info(find_project(path), "payments")
    assert info is not None and info["row_count"] == 4 and info["pipeline"] == "payments"
    assert info["columns"]["amount"] == "Amount in EUR."  # docs carried over from the catalog
    assert info["upstream"] == [{"source": "events", "kind": "catalog", "name": "events"}]


SCD2 = """\
sources:
  prices: {path: ../data/prices.csv}
steps:
  - id: current
    pattern: select
    inputs: [prices]
    params: {columns: [product_id, price]}
outputs:
  current: {staging: price_history, history: scd2, primary_key: [product_id]}
"""


def test_scd2_history_output_keeps_versions_across_three_runs(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    path = _pipeline(root, "prices", SCD2)
    prices = root / "data" / "prices.csv"
    for content in ("product_id,price\n1,10\n2,20\n",   # run 1: two products
                    "product_id,price\n1,11\n2,20\n",   # run 2: product 1 changes
                    "product_id,price\n1,10\n2,20\n"):  # run 3: product 1 changes back
        prices.write_text(content)
        api.run(load(path))
        time.sleep(0.01)
    rows = _staging_rows(root, "price_history", "product_id, valid_from")
    p1 = [r for r in rows if r[0] == 1]
    assert [(r[1], r[4]) for r in p1] == [(10, False), (11, False), (10, True)]
    assert p1[0][3] == p1[1][2] and p1[1][3] == p1[2][2] and p1[2][3] is None
    p2 = [r for r in rows if r[0] == 2]
    assert len(p2) == 1 and p2[0][4] is True and p2[0][3] is None


QUOTED_NAMES = """\
sources:
  prices: {path: ../data/prices.csv}
steps:
  - id: current
    sql: SELECT product_id AS "product id", price AS "it's ""the"" price" FROM prices
outputs:
  current: {staging: quoted_history, history: scd2, primary_key: [product id]}
"""


def test_warehouse_writes_names_and_paths_holding_quotes(tmp_path, monkeypatch):
    """Column names with spaces and quotes, and a project folder with a quote in its name, reach
    the warehouse's SQL (history, merge, the registry's view) as names, never as SQL text."""
    folder = tmp_path / "o'brien \"data\""
    folder.mkdir()
    root = _project(folder, monkeypatch)
    prices = root / "data" / "prices.csv"
    history = _pipeline(root, "quoted", QUOTED_NAMES)
    merge = _pipeline(root, "quoted_merge", QUOTED_NAMES.replace(
        "staging: quoted_history, history: scd2", "staging: quoted_merge, mode: merge"))
    for content in ("product_id,price\n1,10\n2,20\n", "product_id,price\n1,11\n3,30\n"):
        prices.write_text(content)
        api.run(load(history))
        api.run(load(merge))
        time.sleep(0.01)

    def staging_rows(name: str, order: str) -> list[tuple]:  # the folder's quote: a parameter
        f = root / "warehouse" / "staging" / f"{name}.parquet"
        return duckdb.execute(f"SELECT * FROM read_parquet(?) ORDER BY {order}", [str(f)]
                              ).fetchall()

    rows = staging_rows("quoted_history", '"product id", valid_from')
    assert [(r[0], r[1], r[4]) for r in rows] == [(1, 10, False), (1, 11, True), (2, 20, True),
                                                  (3, 30, True)]
    assert staging_rows("quoted_merge", '"product id"') == [(1, 11), (2, 20), (3, 30)]
    con = duckdb.connect(str(root / "warehouse" / "dockyard.duckdb"), read_only=True)
    try:  # the registry's view of the table reads the file under the quoted folder
        assert con.execute('SELECT "it\'s ""the"" price" FROM quoted_merge ORDER BY 1'
                           ).fetchall() == [(11,), (20,), (30,)]
    finally:
        con.close()


PUBLISH = """\
sources:
  events: {catalog: events}
steps:
  - id: per_user
    pattern: aggregate
    inputs: [events]
    params:
      group_by: [user_id]
      aggregations: [{function: sum, column: amount, as: total}]
outputs:
  per_user: {staging: user_totals}
"""

CONSUME = """\
sources:
  totals: {staging: user_totals}
steps:
  - id: big
    sql: SELECT user_id, total * 2 AS doubled FROM totals WHERE total > 5
outputs:
  big: {path: ../out/big.csv}
"""


def test_second_pipeline_reads_first_ones_staging_table_and_runs_upstream(tmp_path, monkeypatch,
                                                                          capsys):
    root = _project(tmp_path, monkeypatch)
    producer = _pipeline(root, "publish", PUBLISH)
    consumer = _pipeline(root, "consume", CONSUME)
    assert main(["validate", str(consumer)]) == 2
    assert "staging table 'user_totals' does not exist yet. It is produced by 'publish'" in \
        capsys.readouterr().err
    assert upstream_files(load(consumer)) == [producer]
    assert main(["run", str(consumer), "--upstream"]) == 0
    out = duckdb.sql(f"SELECT * FROM '{root / 'out' / 'big.csv'}' ORDER BY 1").fetchall()
    assert out == [(10, 25.0), (12, 14.0)]
    # Lineage crosses the pipelines: doubled <- total <- amount of the catalog entry.
    lin = trace(plan(load(consumer)), "big", "doubled")
    assert [(o.kind, o.target, o.column) for o in lin.origins] == [
        ("staging", "user_totals", "total")]
    assert [(o.kind, o.target, o.column, o.passthrough) for o in lin.upstream[0].origins] == [
        ("catalog", "events", "amount", False)]
    monkeypatch.chdir(root)
    assert main(["lineage", "user_totals.user_id"]) == 0
    assert "copied from catalog 'events' column 'user_id'" in capsys.readouterr().out
    assert main(["catalog", "list"]) == 0
    listed = capsys.readouterr().out
    assert "events" in listed and "user_totals" in listed and "publish.per_user" in listed
    assert main(["runs"]) == 0
    assert capsys.readouterr().out.count("success") == 2


def test_lineage_of_a_derived_column_lists_its_source_columns(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    path = _pipeline(root, "derived", """\
        sources:
          events: {catalog: events}
          users: {path: ../data/users.csv}
        steps:
          - id: joined
            pattern: join
            inputs: [events, users]
            params: {how: left, on: [user_id]}
          - id: scored
            sql: |
              SELECT event_id, amount * weight + length(country) AS score, country
              FROM joined
        outputs:
          scored: {path: ../out/scored.csv}
        """)
    (root / "data" / "users.csv").write_text("user_id,country,weight\n10,DE,1.5\n")
    p = plan(load(path))
    assert not p.errors, p.errors
    origins = {(o.source, o.column): o.passthrough for o in column_origins(p, "scored", "score")}
    assert origins == {("events", "amount"): False, ("users", "weight"): False,
                       ("users", "country"): False}
    assert [(o.source, o.column, o.passthrough) for o in column_origins(p, "scored", "country")] \
        == [("users", "country", True)]


KILL = """\
sources:
  events: {catalog: events}
steps:
  - id: big
    sql: SELECT e.event_id, r.range AS n FROM events e, range({N}) r
outputs:
  big: {staging: big_table}
"""


def test_killed_run_leaves_previous_staging_table_intact(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    path = _pipeline(root, "killme", KILL.replace("{N}", "10"))
    api.run(load(path))
    target = root / "warehouse" / "staging" / "big_table.parquet"
    before = duckdb.sql(f"SELECT count(*) FROM '{target}'").fetchall()
    assert before == [(30,)]
    path.write_text(path.read_text().replace("range(10)", "range(5000000)"))
    kill_run_while_writing(path, target.parent, ".big_table.parquet.dockyard-tmp-*",
                           env={"DOCKYARD_PII_SALT": "pepper"})
    assert duckdb.sql(f"SELECT count(*) FROM '{target}'").fetchall() == before
    info = staging_info(find_project(path), "big_table")
    assert info is not None and info["row_count"] == 30  # the registry still matches the table
