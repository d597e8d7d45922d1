"""Incremental runs of a catalog source (issue 23, item 3): only rows newer than the last
successful run's watermark, minus the lookback, are read and merged into the staging table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from builder.cli.main import main
from builder.pipeline.project import WAREHOUSE_ENV, find_project
from builder.warehouse.store import read_watermark

HEADER = "event_id,user_id,amount,note,updated_at\n"
FIRST = """\
1,10,5.0,ok,2024-01-01 10:00:00
2,11,7.5,ok,2024-01-01 11:00:00
3,10,1.0,ok,2024-01-01 12:00:00
"""
# A day later: new events, a newer version of event 1, and a late event (4) stamped 1.5 hours
# before the last run's newest row: inside the 2-hour lookback.
SECOND = """\
5,12,3.0,ok,2024-01-01 14:00:00
1,10,6.0,ok,2024-01-01 13:00:00
4,11,2.0,ok,2024-01-01 10:30:00
6,12,9.0,ok,2024-01-01 15:00:00
"""

ENTRY = """\
name: events
location: ../data/events.csv
primary_key: [event_id]
event_time: updated_at
dedupe: updated_at
types: {amount: DOUBLE, updated_at: TIMESTAMP}
"""

PIPELINE = """\
version: 1
name: inc
sources:
  ev: {catalog: events, incremental: {by: event_time, lookback: 2 hours}}
steps:
  - id: big
    sql: SELECT event_id, user_id, amount * 2 AS doubled, CAST(note AS VARCHAR) AS note, updated_at FROM ev
outputs:
  big: {staging: events_big, mode: merge, primary_key: [event_id]}
"""


def _project(root: Path, monkeypatch: pytest.MonkeyPatch, rows: str,
             pipeline: str = PIPELINE, entry: str = ENTRY) -> Path:
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    for d in ("data", "catalog", "saved_pipelines"):
        (root / d).mkdir(parents=True)
    (root / "data" / "events.csv").write_text(HEADER + rows)
    (root / "catalog" / "events.yaml").write_text(entry)
    f = root / "saved_pipelines" / "inc.yaml"
    f.write_text(pipeline)
    return f


def _table(root: Path) -> list[tuple]:
    f = root / "warehouse" / "staging" / "events_big.parquet"
    return duckdb.sql(f"SELECT * FROM '{f}' ORDER BY event_id").fetchall()


def _processed(out: str) -> int:
    """Rows the step computed, from the run's progress line."""
    line = next(x for x in out.splitlines() if "step big:" in x)
    return int(line.split("step big: ")[1].split(" rows")[0])


def test_two_incremental_runs_give_the_table_of_one_full_run(tmp_path, monkeypatch, capsys):
    full = _project(tmp_path / "full", monkeypatch, FIRST + SECOND)
    assert main(["run", str(full)]) == 0
    capsys.readouterr()
    inc = _project(tmp_path / "inc", monkeypatch, FIRST)
    assert main(["run", str(inc)]) == 0
    assert _processed(capsys.readouterr().out) == 3
    project = find_project(inc)
    assert read_watermark(project, "inc", "ev") == ("updated_at", "2024-01-01 12:00:00")
    with (tmp_path / "inc" / "data" / "events.csv").open("a") as f:
        f.write(SECOND)
    assert main(["run", str(inc)]) == 0
    # Only rows after 10:00 (12:00 minus 2 hours) were read: event 1's old version and the
    # 10:00 row stay out, the late 10:30 row comes in.
    assert _processed(capsys.readouterr().out) == 6
    assert _table(tmp_path / "inc") == _table(tmp_path / "full")
    assert len(_table(tmp_path / "full")) == 6
    assert read_watermark(project, "inc", "ev") == ("updated_at", "2024-01-01 15:00:00")
    # A third run with no new data reads only the lookback window and changes nothing.
    assert main(["run", str(inc)]) == 0
    assert _processed(capsys.readouterr().out) == 2
    assert _table(tmp_path / "inc") == _table(tmp_path / "full")


def test_the_compiled_sql_shows_the_watermark_filter(tmp_path, monkeypatch, capsys):
    f = _project(tmp_path, monkeypatch, FIRST)
    assert main(["run", str(f)]) == 0
    capsys.readouterr()
    assert main(["compile", str(f)]) == 0
    sql = capsys.readouterr().out
    assert "\"ev__incremental\" AS" in sql
    assert "\"updated_at\" > CAST('2024-01-01 12:00:00' AS TIMESTAMP) - INTERVAL '2' HOUR" in sql


def test_a_failed_run_does_not_advance_the_watermark(tmp_path, monkeypatch, capsys):
    f = _project(tmp_path, monkeypatch, FIRST,
                 pipeline=PIPELINE.replace("CAST(note AS VARCHAR)", "CAST(note AS INTEGER)")
                 .replace(",ok,", ",1,"))
    (tmp_path / "data" / "events.csv").write_text(HEADER + FIRST.replace(",ok,", ",1,"))
    assert main(["run", str(f)]) == 0
    project = find_project(f)
    assert read_watermark(project, "inc", "ev") == ("updated_at", "2024-01-01 12:00:00")
    before = _table(tmp_path)
    # A new row the step cannot convert: the run fails while running.
    with (tmp_path / "data" / "events.csv").open("a") as fh:
        fh.write("7,13,1.0,oops,2024-01-02 09:00:00\n")
    assert main(["run", str(f)]) == 1
    assert "oops" in capsys.readouterr().err
    assert read_watermark(project, "inc", "ev") == ("updated_at", "2024-01-01 12:00:00")
    assert _table(tmp_path) == before
    # Fixed at the source: the next run reads the row, as it never counted as processed.
    text = (tmp_path / "data" / "events.csv").read_text().replace("oops", "7")
    (tmp_path / "data" / "events.csv").write_text(text)
    assert main(["run", str(f)]) == 0
    assert [r[0] for r in _table(tmp_path)] == [1, 2, 3, 7]
    assert read_watermark(project, "inc", "ev") == ("updated_at", "2024-01-02 09:00:00")


def test_full_refresh_ignores_the_watermark(tmp_path, monkeypatch, capsys):
    f = _project(tmp_path, monkeypatch, FIRST)
    assert main(["run", str(f)]) == 0
    with (tmp_path / "data" / "events.csv").open("a") as fh:
        fh.write("8,14,4.0,ok,2023-12-31 00:00:00\n")  # far too late for the lookback
    capsys.readouterr()
    assert main(["run", str(f)]) == 0
    assert _processed(capsys.readouterr().out) == 2  # 10:00 is not after 12:00 - 2 hours
    assert 8 not in [r[0] for r in _table(tmp_path)]
    assert main(["run", str(f), "--full-refresh"]) == 0
    assert _processed(capsys.readouterr().out) == 4
    assert [r[0] for r in _table(tmp_path)] == [1, 2, 3, 8]


def test_a_missing_staging_table_means_a_full_read(tmp_path, monkeypatch, capsys):
    f = _project(tmp_path, monkeypatch, FIRST)
    assert main(["run", str(f)]) == 0
    (tmp_path / "warehouse" / "staging" / "events_big.parquet").unlink()
    capsys.readouterr()
    assert main(["run", str(f)]) == 0
    assert _processed(capsys.readouterr().out) == 3
    assert len(_table(tmp_path)) == 3


@pytest.mark.parametrize(("pipeline", "entry", "message"), [
    (PIPELINE, ENTRY.replace("event_time: updated_at\n", ""),
     "catalog entry 'events' has no 'event_time': add 'event_time: COLUMN' to the entry"),
    (PIPELINE.replace("mode: merge, ", ""), ENTRY,
     "output 'big' must merge them into a staging table: write it as {staging: NAME, "
     "mode: merge, primary_key: [KEY]}"),
    (PIPELINE.replace("{staging: events_big, mode: merge, primary_key: [event_id]}",
                      "{path: ../out/big.csv}"), ENTRY, "output 'big' must merge them"),
    (PIPELINE.replace("by: event_time", "by: note"), ENTRY,
     "'incremental' is by column 'note' of type VARCHAR; it must be a DATE or TIMESTAMP"),
    (PIPELINE.replace("by: event_time", "by: updated"), ENTRY,
     "'incremental' is by column 'updated', which the data set does not have. Did you mean "
     "'updated_at'?"),
    (PIPELINE.replace("2 hours", "2 fortnights"), ENTRY, "'incremental' lookback: "),
    (PIPELINE.replace("lookback:", "look_back:"), ENTRY,
     "unknown key 'look_back' in 'incremental'. Did you mean 'lookback'?"),
    (PIPELINE.replace("{catalog: events, incremental", "{path: ../data/events.csv, "
                      "incremental"), ENTRY, "'incremental' reads a catalog entry"),
])
def test_an_invalid_incremental_source_is_a_one_line_error(tmp_path, monkeypatch, capsys,
                                                           pipeline, entry, message):
    f = _project(tmp_path, monkeypatch, FIRST, pipeline=pipeline, entry=entry)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1, err


def test_the_edit_api_sets_and_clears_incremental_and_refuses_it_on_a_file(tmp_path, monkeypatch):
    from builder.errors import ConfigError
    from builder.pipeline import edit
    from builder.pipeline.model import dump, load, loads_pipeline
    from builder.pipeline.yamlio import loads

    f = _project(tmp_path, monkeypatch, FIRST)
    p = load(f)
    edit.update_source(p, "ev", incremental={"by": "updated_at", "lookback": "1 day"})
    text = dump(p)
    assert loads(text)["sources"]["ev"]["incremental"] == {"by": "updated_at", "lookback": "1 day"}
    assert loads_pipeline(text, path=f).sources["ev"].incremental == {
        "by": "updated_at", "lookback": "1 day"}
    edit.update_source(p, "ev", incremental=None)
    assert "incremental" not in loads(dump(p))["sources"]["ev"]
    p.sources["ev"].catalog, p.sources["ev"].path = None, "../data/events.csv"
    with pytest.raises(ConfigError, match="'incremental' reads a catalog entry"):
        edit.update_source(p, "ev", incremental={"by": "updated_at"})
