"""Runs killed with SIGKILL at random points never lose a previous output or staging table.

Each round starts `dockyard run` in a subprocess and kills it after a random delay (seeded, so
a failure can be replayed): before it starts, while steps run, while outputs are written or
after it finished. After every round each output and staging table must be readable and hold
the rows of a complete run, and the registry must agree with the table.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from builder.pipeline.project import WAREHOUSE_ENV, find_project
from builder.warehouse.store import staging_info

ROUNDS = 8
SEED = 20261126

PIPELINE = """\
version: 1
name: killable
params:
  n: 400000
sources:
  seed: {path: ../data/seed.csv}
steps:
  - id: big
    sql: SELECT s.k, r.range AS i, md5(CAST(r.range AS VARCHAR)) AS h FROM seed s, range({{ n }}) r
  - id: per_k
    pattern: aggregate
    inputs: [big]
    params:
      group_by: [k]
      aggregations: [{function: count, as: rows}]
outputs:
  big: {path: ../out/big.parquet}
  per_k: {staging: per_k, mode: merge, primary_key: [k]}
"""


@pytest.mark.slow
def test_sigkill_at_random_points_never_loses_data(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "seed.csv").write_text("k\n1\n2\n3\n")
    folder = tmp_path / "saved_pipelines"
    folder.mkdir()
    path = folder / "killable.yaml"
    path.write_text(PIPELINE)
    cmd = [sys.executable, "-m", "builder.cli", "run", str(path)]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    big = tmp_path / "out" / "big.parquet"
    complete = [(1200000,)]
    project = find_project(path)
    rng = random.Random(SEED)
    outcomes = []
    for _ in range(ROUNDS):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, 2.5))
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        outcomes.append("killed" if killed else "finished")
        # Every output is readable and complete: the old version or the new one, never half.
        assert duckdb.sql(f"SELECT count(*) FROM '{big}'").fetchall() == complete
        staged = project.staging_dir / "per_k.parquet"
        assert duckdb.sql(f"SELECT k, rows FROM '{staged}' ORDER BY k").fetchall() == [
            (1, 400000), (2, 400000), (3, 400000)]
        info = staging_info(project, "per_k")
        assert info is not None and info["row_count"] == 3
    # The next run after all that works and cleans up what killed runs left behind.
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert not list(big.parent.glob(".big.parquet.dockyard-tmp-*"))
    assert not list(project.staging_dir.glob(".per_k.parquet.dockyard-tmp-*"))
    assert "killed" in outcomes, outcomes
