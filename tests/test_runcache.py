"""The run cache: an unchanged pipeline runs from its stored plan, and anything planning read
that changes (the file, a source's schema, a CSV's content, the code) plans it again."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import duckdb
import pytest

from builder.cli.main import main
from builder.pipeline.model import load
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec
from builder.runner import cache as runcache

ROOT = Path(__file__).resolve().parent.parent
CACHED = "plan: unchanged since the last run"

PIPELINE = """\
    version: 1
    name: rc
    sources:
      events: {path: data/events.parquet}
      users: {path: data/users.csv}
    steps:
      - id: joined
        sql: |
          SELECT e.user_id, u.country, e.amount FROM events e JOIN users u USING (user_id)
      - id: per_country
        pattern: aggregate
        inputs: [joined]
        params:
          group_by: [country]
          aggregations: [{function: sum, column: amount, as: total}, {function: count, as: n}]
      - id: checked
        pattern: expect
        inputs: [per_country]
        params:
          checks: [{not_null: [country]}, {unique: [country]}]
    outputs:
      checked: {path: out/per_country.parquet}
"""


def _events(folder: Path, rows: int, extra: str = "") -> None:
    folder.mkdir(exist_ok=True)
    duckdb.sql(f"COPY (SELECT (i % 3) + 1 AS user_id, (i * 1.5)::DOUBLE AS amount{extra} "
               f"FROM range({rows}) t(i)) TO '{folder / 'events.parquet'}' (FORMAT parquet)")


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    _events(data, 10)
    (data / "users.csv").write_text("user_id,country\n1,NL\n2,FR\n3,NL\n", encoding="utf-8")
    f = tmp_path / "p.yaml"
    f.write_text(textwrap.dedent(PIPELINE), encoding="utf-8")
    return f


def _result(f: Path) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM '{f.parent / 'out/per_country.parquet'}' "
                      "ORDER BY country").fetchall()


def _run(f: Path, capsys, *extra: str) -> str:
    assert main(["run", str(f), *extra]) == 0
    return capsys.readouterr().out


def test_second_run_reuses_the_plan_with_the_same_result(proj, capsys):
    first = _run(proj, capsys)
    assert CACHED not in first
    before = _result(proj)
    assert before == [("FR", 18.0, 3), ("NL", 49.5, 7)]
    second = _run(proj, capsys)
    assert CACHED in second
    assert _result(proj) == before
    # Same steps reported either way.
    steps = [line for line in second.splitlines() if line.startswith("[")]
    assert [s.split(":")[0] for s in steps] == ["[1/3] step joined", "[2/3] step per_country",
                                                "[3/3] step checked"]


def test_new_parquet_data_with_the_same_schema_reuses_the_plan(proj, capsys):
    _run(proj, capsys)
    _events(proj.parent / "data", 4)  # tomorrow's file: fewer rows, same columns
    out = _run(proj, capsys)
    assert CACHED in out
    assert _result(proj) == [("FR", 1.5, 1), ("NL", 7.5, 3)]


def test_a_changed_parquet_schema_plans_again(proj, capsys):
    _run(proj, capsys)
    _events(proj.parent / "data", 4, extra=", 'x' AS note")
    out = _run(proj, capsys)
    assert CACHED not in out
    assert _result(proj) == [("FR", 1.5, 1), ("NL", 7.5, 3)]
    # A column the pipeline needs disappears: planning says so, nothing runs from the cache.
    duckdb.sql(f"COPY (SELECT 1 AS user_id) TO '{proj.parent / 'data/events.parquet'}' "
               "(FORMAT parquet)")
    assert main(["run", str(proj)]) == 2
    err = capsys.readouterr().err
    assert "step 'joined'" in err and "amount" in err


def test_a_changed_csv_plans_again(proj, capsys):
    _run(proj, capsys)
    csv = proj.parent / "data/users.csv"
    csv.write_text("user_id,country\n1,NL\n2,FR\n3,DE\n", encoding="utf-8")
    out = _run(proj, capsys)
    assert CACHED not in out
    assert _result(proj) == [("DE", 22.5, 3), ("FR", 18.0, 3), ("NL", 27.0, 4)]
    # A ragged CSV is caught by planning, as without the cache.
    csv.write_text("user_id,country\n1,NL,extra\n2,FR\n3,DE\n", encoding="utf-8")
    assert main(["run", str(proj)]) == 2
    assert "source 'users'" in capsys.readouterr().err


def test_a_missing_source_plans_again_and_says_so(proj, capsys):
    _run(proj, capsys)
    (proj.parent / "data/events.parquet").unlink()
    assert main(["run", str(proj)]) == 2
    err = capsys.readouterr().err
    assert "source 'events'" in err and "not found" in err


def test_an_edited_pipeline_plans_again(proj, capsys):
    _run(proj, capsys)
    proj.write_text(proj.read_text(encoding="utf-8").replace("as: total", "as: amount_sum"),
                    encoding="utf-8")
    out = _run(proj, capsys)
    assert CACHED not in out
    cols = [d[0] for d in duckdb.sql(
        f"SELECT * FROM '{proj.parent / 'out/per_country.parquet'}'").description]
    assert cols == ["country", "amount_sum", "n"]


def test_changed_code_plans_again(proj, capsys, monkeypatch):
    _run(proj, capsys)
    assert CACHED in _run(proj, capsys)
    monkeypatch.setattr(runcache, "code_fingerprint", lambda: "another version")
    assert CACHED not in _run(proj, capsys)


@pytest.mark.parametrize("module", ["builder/plan/runspec.py", "patterns/scd2.py"])
def test_the_code_fingerprint_follows_every_module(module):
    before = runcache.code_fingerprint()
    assert runcache.code_fingerprint() == before
    f = ROOT / module
    st = f.stat()
    try:  # an edited module (here: a newer mtime) is another version of the code
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert runcache.code_fingerprint() != before
    finally:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert runcache.code_fingerprint() == before


def test_no_cache_flag_neither_reads_nor_writes(proj, capsys):
    assert CACHED not in _run(proj, capsys, "--no-cache")
    assert not runcache.entry_path(proj).exists()
    _run(proj, capsys)
    assert CACHED not in _run(proj, capsys, "--no-cache")


def test_set_values_and_env_params_are_never_stored(proj, capsys, monkeypatch):
    text = proj.read_text(encoding="utf-8")
    proj.write_text(text.replace("name: rc\n", "name: rc\nparams: {salt: {env: RC_SALT}}\n"),
                    encoding="utf-8")
    monkeypatch.setenv("RC_SALT", "s3cret")
    _run(proj, capsys)
    _run(proj, capsys)
    assert not runcache.entry_path(proj).exists()
    proj.write_text(text.replace("name: rc\n", "name: rc\nparams: {salt: x}\n"),
                    encoding="utf-8")
    out = _run(proj, capsys, "--set", "salt=s3cret")
    assert CACHED not in out and not runcache.entry_path(proj).exists()


def test_a_damaged_entry_is_a_miss_and_is_rewritten(proj, capsys):
    _run(proj, capsys)
    entry = runcache.entry_path(proj)
    entry.write_text("{not json", encoding="utf-8")
    assert CACHED not in _run(proj, capsys)
    assert json.loads(entry.read_text(encoding="utf-8"))["format"] == runcache.FORMAT
    assert CACHED in _run(proj, capsys)


def test_plan_warnings_are_printed_on_a_cached_run_too(proj, capsys):
    text = proj.read_text(encoding="utf-8")
    # An unused step is a warning, not an error.
    proj.write_text(text.replace("outputs:", "  - id: unused\n    sql: SELECT 1 AS x\n"
                                 "outputs:"), encoding="utf-8")
    assert main(["run", str(proj)]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "unused" in line]
    assert warning
    assert main(["run", str(proj)]) == 0
    captured = capsys.readouterr()
    assert CACHED in captured.out and warning[0] in captured.err


def test_staging_outputs_are_never_stored(proj, capsys):
    text = proj.read_text(encoding="utf-8")
    proj.write_text(text.replace("checked: {path: out/per_country.parquet}",
                                 "checked: {staging: rc_per_country}"), encoding="utf-8")
    p = plan(load(proj))
    spec = RunSpec.from_plan(p)
    assert not spec.cacheable
    _run(proj, capsys)
    assert not runcache.entry_path(proj).exists()


def test_spec_survives_json(proj):
    spec = RunSpec.from_plan(plan(load(proj)))
    back = RunSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert back.nodes == spec.nodes and back.outputs == spec.outputs
    assert back.pipeline == spec.pipeline and back.sandbox_dirs == spec.sandbox_dirs
    assert [n.id for n in back.nodes] == ["events", "users", "joined", "per_country", "checked"]


def test_an_unwritable_warehouse_only_costs_the_planning(proj, capsys, monkeypatch):
    (proj.parent / "warehouse").mkdir()
    monkeypatch.setattr(runcache, "entry_path",
                        lambda file: Path(os.devnull) / "cannot" / "be" / "here.json")
    assert CACHED not in _run(proj, capsys)
    assert CACHED not in _run(proj, capsys)
    assert _result(proj) == [("FR", 18.0, 3), ("NL", 49.5, 7)]
