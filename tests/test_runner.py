"""The runner (issue 21): the run lock, the run history and staging tables are the runner's; an
engine only executes a run spec, and the planner gets watermarks from whoever plans."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from builder.engines.duckdb import DuckDBEngine
from builder.errors import ExecutionError
from builder.pipeline.model import load
from builder.pipeline.project import WAREHOUSE_ENV, Project, find_project
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec
from builder.runner import run as runner
from builder.runner.lock import run_lock
from builder.runner.pipelines import plan_with
from builder.warehouse.store import WarehouseStore, run_history

DATA = (Path(__file__).parent / "fixtures" / "data").resolve()

TWO_OUTPUTS = f"""\
version: 1
name: two
sources:
  clicks: {{path: '{DATA}/clicks.csv'}}
steps:
  - id: first
    sql: SELECT user_id FROM clicks
  - id: second
    sql: SELECT user_id, page FROM clicks
outputs:
  first: {{path: ../out/first.parquet}}
  second: {{path: ../out/second.parquet}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    (tmp_path / "saved_pipelines").mkdir()
    return tmp_path


def _pipeline(root: Path, body: str) -> Path:
    f = root / "saved_pipelines" / "p.yaml"
    f.write_text(body, encoding="utf-8")
    return f


def test_an_engine_alone_writes_outputs_but_records_nothing_and_takes_no_lock(project):
    f = _pipeline(project, TWO_OUTPUTS)
    spec = RunSpec.from_plan(plan(load(f)))
    with run_lock(load(f)):  # the lock is the runner's: the engine runs regardless
        result = DuckDBEngine().run(spec)
    assert [o.rows for o in result.outputs] == [6, 6]
    assert (project / "out" / "second.parquet").is_file()
    assert not find_project(f).database.exists()  # no warehouse opened, nothing recorded


def test_the_runner_refuses_a_second_run_and_records_each_run(project):
    f = _pipeline(project, TWO_OUTPUTS)
    spec = RunSpec.from_plan(plan(load(f)))
    with run_lock(load(f)):
        with pytest.raises(ExecutionError, match="pipeline 'two' is already running"):
            runner.run(DuckDBEngine(), spec, WarehouseStore())
    result = runner.run(DuckDBEngine(), spec, WarehouseStore())
    runs = run_history(find_project(f))
    assert [r["status"] for r in runs] == ["success"]
    assert runs[0]["outputs"] == {o.output: {"target": o.target, "rows": 6}
                                  for o in result.outputs}


def test_a_failed_run_is_recorded_with_the_outputs_written_before_the_failure(project):
    """The engine fills in the runner's result as it goes, so the history keeps what the run
    wrote before it failed."""
    f = _pipeline(project, TWO_OUTPUTS)
    spec = RunSpec.from_plan(plan(load(f)))
    (project / "out" / "second.parquet").mkdir(parents=True)  # appeared after planning
    with pytest.raises(ExecutionError, match="output 'second': cannot write"):
        runner.run(DuckDBEngine(), spec, WarehouseStore())
    [run] = run_history(find_project(f))
    assert run["status"] == "failed" and "is a folder that no Dockyard run wrote" in run["error"]
    assert list(run["outputs"]) == ["first"]
    assert duckdb.sql(f"SELECT count(*) FROM '{project / 'out' / 'first.parquet'}'"
                      ).fetchall() == [(6,)]


def test_a_staging_output_needs_the_warehouse(project):
    f = _pipeline(project, TWO_OUTPUTS.replace("second: {path: ../out/second.parquet}",
                                               "second: {staging: clicks_pages}"))
    spec = RunSpec.from_plan(plan(load(f)))
    with pytest.raises(ExecutionError) as e:
        DuckDBEngine().run(spec)
    assert str(e.value).endswith("output 'second' publishes a staging table, which only a run "
                                 "with the warehouse writes (dockyard run, or builder.api.run).")
    assert not find_project(f).staging_table("clicks_pages").exists()
    runner.run(DuckDBEngine(), spec, WarehouseStore())
    table = find_project(f).staging_table("clicks_pages")
    assert duckdb.sql(f"SELECT count(*) FROM '{table}'").fetchall() == [(6,)]


INCREMENTAL = """\
version: 1
name: inc
sources:
  ev: {catalog: events, incremental: {by: event_time}}
steps:
  - id: big
    sql: SELECT * FROM ev
outputs:
  big: {staging: events_big, mode: merge, primary_key: [event_id]}
"""


class _Watermarks:
    """A watermark store that is not the warehouse: the planner takes any."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def read_watermark(self, project: Project, pipeline: str,
                       source: str) -> tuple[str, str] | None:
        self.asked.append((pipeline, source))
        return ("updated_at", "2024-01-01 11:00:00")


def test_watermarks_come_from_whoever_plans(project):
    (project / "data").mkdir()
    (project / "data" / "events.csv").write_text(
        "event_id,updated_at\n1,2024-01-01 10:00:00\n2,2024-01-01 12:00:00\n")
    (project / "catalog").mkdir()
    (project / "catalog" / "events.yaml").write_text(textwrap.dedent("""\
        name: events
        location: ../data/events.csv
        event_time: updated_at
        types: {updated_at: TIMESTAMP}
        """))
    f = _pipeline(project, INCREMENTAL)
    table = find_project(f).staging_table("events_big")
    table.parent.mkdir(parents=True)
    duckdb.sql(f"COPY (SELECT 1 AS event_id) TO '{table}' (FORMAT parquet)")
    # Without a watermark store: a full read.
    read = plan_with(load(f), None).sources["ev"].incremental
    assert read is not None and read.watermark is None
    store = _Watermarks()
    read = plan_with(load(f), store).sources["ev"].incremental  # type: ignore[arg-type]
    assert store.asked == [("inc", "ev")]
    assert read is not None and read.watermark == "2024-01-01 11:00:00"
    assert read.next_watermark == "2024-01-01 12:00:00"
