"""scd2 reads versions off a bit per snapshot in each (key, values) group, 62 snapshots per
BIGINT; it must give exactly what the pattern's docstring promises.

The expected output comes from a plain-Python reading of that docstring (``reference``), on
random snapshots with changes, values that come back, gaps, NULL keys and values, NULL times,
other columns and repeated keys, short and long enough to cross the 62-snapshot blocks, and on
hand-made cases at the block edges.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp, parse_one

from builder.engines.duckdb import DuckDBEngine
from builder.errors import ExecutionError
from builder.pipeline.model import Output, Pipeline, Source, Step
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec

DAY0 = dt.date(2024, 1, 1)
Row = tuple[Any, ...]  # (snap, id, tier, note)


class Repeated(Exception):
    """The reference's verdict: a key appears twice in one snapshot."""


def reference(rows: list[Row], hard: bool | str) -> list[Row]:
    """Versions as (id, tier, note, valid_from, valid_to, is_current), read off the docstring;
    with ``hard == "new_record"`` also is_deleted, and a deletion row after each version a
    deletion ends."""
    snaps = sorted({r[0] for r in rows if r[0] is not None})
    after = {s: snaps[i + 1] if i + 1 < len(snaps) else None for i, s in enumerate(snaps)}
    before = {s: snaps[i - 1] if i else None for i, s in enumerate(snaps)}
    by_key: dict[Any, list[Row]] = {}
    for r in rows:
        if r[0] is not None:
            by_key.setdefault(r[1], []).append(r)
    out: list[Row] = []
    for key, key_rows in by_key.items():
        key_rows.sort(key=lambda r: r[0])
        times = [r[0] for r in key_rows]
        if len(set(times)) != len(times):
            raise Repeated(key)
        starts = [i for i, r in enumerate(key_rows)
                  if i == 0 or r[2] != key_rows[i - 1][2]
                  or (hard and key_rows[i - 1][0] != before[r[0]])]
        for n, i in enumerate(starts):
            next_start = key_rows[starts[n + 1]][0] if n + 1 < len(starts) else None
            if hard:
                last = (starts[n + 1] if n + 1 < len(starts) else len(key_rows)) - 1
                valid_to = after[key_rows[last][0]]
            else:
                valid_to = next_start
            first = key_rows[i]
            version = (key, first[2], first[3], first[0], valid_to, valid_to is None)
            if hard != "new_record":
                out.append(version)
                continue
            out.append((*version, False))
            if valid_to is not None and next_start != valid_to:  # a deletion ended it
                out.append((key, first[2], first[3], valid_to, next_start, next_start is None,
                            True))
    return out


def scd2_pipeline(folder: Path, rows: list[Row], hard: bool | str) -> Pipeline:
    """An scd2 step (keys id, tracked tier) over ``rows``, written to ``folder``/t.parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (snap DATE, id INTEGER, tier VARCHAR, note VARCHAR)")
    if rows:
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    con.execute("COPY t TO ? (FORMAT parquet)", [str(folder / "t.parquet")])
    con.close()
    step = Step(id="history", pattern="scd2", inputs=["t"],
                params={"keys": ["id"], "tracked": ["tier"], "snapshot_time": "snap",
                        **({"hard_deletes": hard} if isinstance(hard, str) else
                           {"invalidate_hard_deletes": hard})})
    return Pipeline(name="scd", sources={"t": Source(id="t", path="t.parquet")}, steps=[step],
                    outputs={"history": Output(step="history", path="out.parquet")},
                    path=folder / "scd.yaml")


def run_scd2(folder: Path, rows: list[Row], hard: bool | str) -> list[Row]:
    compiled = plan(scd2_pipeline(folder, rows, hard))
    assert not compiled.errors, [str(e) for e in compiled.errors]
    DuckDBEngine().run(RunSpec.from_plan(compiled))
    deleted = ", is_deleted" if hard == "new_record" else ""
    return duckdb.sql(f"SELECT id, tier, note, valid_from, valid_to, is_current{deleted} FROM "
                      f"read_parquet('{folder / 'out.parquet'}')").fetchall()


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def check(folder: Path, rows: list[Row], hard: bool | str) -> None:
    try:
        expected = reference(rows, hard)
    except Repeated as e:
        with pytest.raises(ExecutionError, match=f"scd2: key id={'NULL' if e.args[0] is None else e.args[0]} "
                                                 "appears more than once in snapshot snap="):
            run_scd2(folder, rows, hard)
        return
    assert _sorted(run_scd2(folder, rows, hard)) == _sorted(expected)


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


# One key's history: per snapshot, absent (None) or a tier; notes change every snapshot, so a
# note taken from the wrong snapshot shows.
_HISTORY = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", None])), min_size=1,
                    max_size=9).map(lambda h: [("absent",) if v is None else (v,) for v in h])


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories=st.lists(_HISTORY, min_size=1, max_size=5),
       repeat=st.one_of(st.none(), st.tuples(st.integers(0, 4), st.integers(0, 8))),
       null_times=st.booleans(), hard=st.sampled_from([False, True, "new_record"]),
       stretch=st.sampled_from([1, 23]))
def test_random_snapshots_match_the_reference(histories, repeat, null_times, hard, stretch,
                                              tmp_path_factory):
    # stretch: each state of a history holds for that many snapshots; 23 makes histories of
    # up to 207 snapshots, whose runs cross the 62-snapshot blocks of the bit masks.
    ids: list[Any] = [1, 2, None, 4, 5]
    rows: list[Row] = []
    for k, history in enumerate(histories):
        for d, state in enumerate(s for s in history for _ in range(stretch)):
            if state != ("absent",):
                rows.append((day(d), ids[k], state[0], f"n{k}-{d}"))
    if repeat is not None and rows:
        # The same key once more in a snapshot (with another tier half of the time).
        r = rows[(repeat[0] * 7 + repeat[1]) % len(rows)]
        rows.append((r[0], r[1], r[2] if repeat[1] % 2 else "z", "again"))
    if null_times:
        rows.append((None, 1, "ignored", "no time"))
    check(tmp_path_factory.mktemp("scd"), rows, hard)


@pytest.mark.parametrize("hard", [False, True])
def test_a_repeat_hidden_by_a_gap_in_the_same_values_fails(hard, tmp_path):
    # Key 1 holds 'a' in snapshots 0, 0 (twice), 2: as many rows as snapshots 0-2 span, so only
    # counting distinct snapshots (not rows) shows the repeat.
    rows = [(day(0), 1, "a", "x"), (day(0), 1, "a", "y"), (day(2), 1, "a", "z"),
            (day(1), 2, "b", "w")]
    with pytest.raises(ExecutionError, match="key id=1 appears more than once in snapshot "
                                             "snap=2024-01-01"):
        run_scd2(tmp_path, rows, hard)


@pytest.mark.parametrize("hard", [False, True])
def test_histories_longer_than_one_block_of_snapshots(hard, tmp_path):
    n = 140  # snapshots: ranks fall into three 62-rank blocks
    rows: list[Row] = []
    for d in range(n):
        rows.append((day(d), 1, "steady", f"s{d}"))  # one version across all blocks
        if d != 100:
            rows.append((day(d), 2, "a" if d < 61 else "b", f"t{d}"))  # changes at a block edge
        rows.append((day(d), 3, "a" if d < 50 or d >= 90 else "b", f"u{d}"))  # comes back
        # back within the first block, the second run crossing into the next block
        rows.append((day(d), 4, "a" if d < 23 or d >= 46 else "b", f"w{d}"))
        # two runs of 'a' inside the second block, neither at its edges
        rows.append((day(d), 5, "a" if 70 <= d < 80 or 90 <= d < 100 else "b", f"x{d}"))
        if d % 2 == 0:
            rows.append((day(d), None, "odd", f"v{d}"))  # every other snapshot
    check(tmp_path, rows, hard)
    got = {(r[0], r[3]): r for r in run_scd2(tmp_path / "again", rows, hard)}
    assert got[(1, day(0))][4] is None  # key 1: one current version
    assert got[(2, day(61))][2] == "t61"  # other columns from the version's first snapshot
    assert ((2, day(101)) in got) is hard  # the gap at 100 splits key 2 only with hard deletes


@pytest.mark.parametrize("hard", [False, True])
def test_a_repeat_and_a_gap_in_different_blocks_fails(hard, tmp_path):
    rows = [(day(d), 7, "a", "n") for d in range(130) if d != 120]
    rows.append((day(120), 8, "b", "m"))  # snapshot 120 exists; key 7 is missing from it
    rows.append((day(3), 7, "a", "again"))  # 130 rows over 130 snapshots: counts alone agree
    with pytest.raises(ExecutionError, match="key id=7 appears more than once in snapshot "
                                             "snap=2024-01-04"):
        run_scd2(tmp_path, rows, hard)


def test_two_scd2_steps_compile_to_one_spark_query_with_distinct_names(tmp_path):
    con = duckdb.connect()
    con.execute("COPY (SELECT DATE '2024-01-01' AS snap, 1 AS id, 'a' AS tier, 'n' AS note) "
                "TO ? (FORMAT parquet)", [str(tmp_path / "t.parquet")])
    con.close()
    params = {"keys": ["id"], "tracked": ["tier"], "snapshot_time": "snap"}
    steps = [Step(id="h1", pattern="scd2", inputs=["t"], params=params),
             Step(id="h2", pattern="scd2", inputs=["t"], params=params),
             Step(id="both", sql="SELECT * FROM h1 UNION ALL SELECT * FROM h2")]
    p = plan(Pipeline(name="two", sources={"t": Source(id="t", path="t.parquet")}, steps=steps,
                      outputs={"both": Output(step="both", path="out.parquet")},
                      path=tmp_path / "two.yaml"))
    assert not p.errors, [str(e) for e in p.errors]
    spark_sql = p.sql("both", dialect="spark")
    names = [c.alias for c in parse_one(spark_sql, read="spark").find(exp.With).expressions]
    assert len(names) == len(set(names)), names
    assert {"__scd_groups_h1", "__scd_groups_h2"} <= set(names)



def _step(tmp_path: Path, rows: list[Row], hard: bool) -> tuple[duckdb.DuckDBPyConnection,
                                                                 exp.Query]:
    """A connection with the input as view ``t``, and the scd2 step's query (reading ``t``)."""
    compiled = plan(scd2_pipeline(tmp_path, rows, hard))
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{tmp_path / 't.parquet'}')")
    return con, compiled.steps["history"].query


def _ctes(query: exp.Query) -> str:
    """The query's CTEs as a WITH clause."""
    ctes = query.find(exp.With)
    assert ctes is not None
    return "WITH " + ", ".join(c.sql(dialect="duckdb") for c in ctes.expressions)


@pytest.mark.parametrize("hard", [False, True])
def test_runs_are_read_off_the_bits_of_each_group(hard, tmp_path):
    # The runs CTE: each run of consecutive snapshots of a (key, values) group, as first and
    # last snapshot rank. Groups with one run take the bit-count path, the others the join to
    # the positions of their run starts.
    rows: list[Row] = [(day(d), 1, "a", "n") for d in range(4)]  # one run
    rows += [(day(d), 2, "a" if d in (0, 2, 3) else "b", "n") for d in range(4)]  # comes back
    rows += [(day(d), 3, "a", "n") for d in (0, 2)]  # missing from snapshot 1 and 3
    rows += [(day(d), 4, "a" if d % 2 else "b", "n") for d in range(4)]  # flips every time
    con, step = _step(tmp_path, rows, hard)
    runs = con.execute(_ctes(step) + ' SELECT id, tier, "__scd_r0", "__scd_r1" FROM '
                       '"__scd_runs_history" ORDER BY ALL').fetchall()
    con.close()
    assert runs == [(1, "a", 0, 3), (2, "a", 0, 0), (2, "a", 2, 3), (2, "b", 1, 1),
                    (3, "a", 0, 0), (3, "a", 2, 2), (4, "a", 1, 1), (4, "a", 3, 3),
                    (4, "b", 0, 0), (4, "b", 2, 2)]


def _window_rows(con: duckdb.DuckDBPyConnection, query: str, profile: Path) -> list[int]:
    """Rows that each WINDOW operator of ``query`` processed (DuckDB's JSON profile)."""
    con.execute(f"SET enable_profiling='json'; SET profiling_output='{profile}'")
    con.execute(query).fetchall()
    con.execute("SET enable_profiling='no_output'")
    found: list[int] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("name") == "WINDOW":
            found.append(int(node["intermediate_rows"]))
        for child in node.get("children", []):
            walk(child)

    for node in json.loads(profile.read_text())["operator"]:
        walk(node)
    return found


@pytest.mark.parametrize("hard", [False, True])
def test_snapshot_rows_are_never_sorted(hard, tmp_path):
    # The point of the bits: only snapshots and runs (a few per key) are ever ordered, never
    # the snapshot rows. 200 keys x 40 snapshots, each key changing twice and coming back.
    rows: list[Row] = [(day(d), k, "a" if d < 10 or d >= 30 else "b", f"n{d}")
                       for k in range(200) for d in range(40)]
    con, step = _step(tmp_path, rows, hard)
    versions = con.execute(f"SELECT count(*) FROM ({step.sql(dialect='duckdb')})").fetchall()
    assert versions == [(600,)]
    windows = _window_rows(con, f"SELECT * FROM ({step.sql(dialect='duckdb')})",
                           tmp_path / "profile.json")
    con.close()
    assert windows, "expected the snapshot ranking to use a window"
    assert max(windows) <= 600, windows  # at most one row per run, not 8,000 snapshot rows
