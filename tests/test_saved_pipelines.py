"""Every example in saved_pipelines/ validates, round-trips and runs (outputs redirected)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from builder import api
from builder.pipeline.model import dump, load
from builder.pipeline.project import WAREHOUSE_ENV
from builder.plan.compiler import plan
from builder.runner.pipelines import run_upstream
from builder.warehouse.store import WarehouseStore

SAVED = Path(__file__).resolve().parent.parent / "saved_pipelines"
FILES = sorted(SAVED.glob("*.yaml"))


def test_there_are_examples():
    assert len(FILES) >= 1


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_example_validates_round_trips_and_runs(path: Path, tmp_path: Path, warehouse: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    # Staging tables go to a private warehouse; upstream examples publish theirs first.
    monkeypatch.setenv(WAREHOUSE_ENV, str(warehouse))
    pipeline = load(path)
    assert dump(pipeline) == path.read_text(encoding="utf-8"), "saved file is not canonical"
    run_upstream(pipeline, WarehouseStore())
    p = plan(pipeline)
    assert not p.errors, [str(e) for e in p.errors]
    assert not p.warnings, [str(w) for w in p.warnings]
    for out in pipeline.outputs.values():  # write into tmp, not the repository
        if out.path:
            out.path = str(tmp_path / Path(out.path).name)
    result = api.run(pipeline)
    assert result.outputs
    for o in result.outputs:
        if o.target.endswith(".parquet"):
            n = duckdb.sql(f"SELECT count(*) FROM '{o.target}'").fetchall()[0][0]
            assert n == o.rows and n > 0
