"""Parity: every pattern case and every example pipeline gives the same rows on Spark as on DuckDB.

One Spark session (``local[2]``, 2 shuffle partitions, UI off) serves the whole module. Rows are
compared order-insensitively, floats within a tolerance and timestamps in UTC (see
``tests/pattern_cases.py``). Run just this set with ``pytest -m spark``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from builder.engines import get_engine
from builder.engines.base import EngineUnavailable
from builder.errors import CompileError, ExecutionError
from builder.pipeline.model import Output, Pipeline, Source, Step, dump, load
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec
from builder.runner import run as runner
from builder.warehouse.store import WarehouseStore
from tests.pattern_cases import (
    STEP_ID,
    Case,
    _close,
    _sort_key,
    assert_rows,
    case_pipeline,
    load_cases,
    normalize,
)

SPARK = [pytest.mark.spark, pytest.mark.slow]
SAVED = Path(__file__).resolve().parent.parent / "saved_pipelines"
FILES = sorted(SAVED.glob("*.yaml"))

# Pattern cases known to give different results on Spark: "pattern: case name" -> why.
# Each entry is a bug in that pattern's SQL (not portable), to be fixed in the pattern; remove
# the entry once it passes (the xfail is strict, so a fixed case fails until it is removed).
SPARK_KNOWN_FAILURES: dict[str, str] = {}

_CASES = [c for c in load_cases() if c.spark and (c.expected is not None or c.error_run)
          and not c.error]


def _case_param(case: Case) -> Any:
    marks = list(SPARK)
    if case.id in SPARK_KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(reason=SPARK_KNOWN_FAILURES[case.id], strict=True))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="session")
def spark_engine():
    pytest.importorskip("pyspark")
    from builder.engines.spark import SparkEngine

    engine = SparkEngine(master="local[2]", conf={
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "false",  # tiny inputs: fewer stages, same rows
    })
    try:
        session = engine.session()
    except EngineUnavailable as e:
        pytest.skip(str(e))
    session.sparkContext.setLogLevel("ERROR")
    yield engine
    session.stop()


# ---- pattern cases -----------------------------------------------------------------------

@pytest.mark.parametrize("case", [_case_param(c) for c in _CASES])
def test_pattern_case_on_spark(case: Case, tmp_path: Path, spark_engine) -> None:
    p = plan(case_pipeline(case, tmp_path))
    if p.errors:
        pytest.skip("the case does not compile on DuckDB either (see test_patterns): "
                    + str(p.errors[0]))
    if case.error_run:
        with pytest.raises(ExecutionError) as ei:
            spark_engine.run(RunSpec.from_plan(p))
        assert case.error_run in str(ei.value), str(ei.value)
        return
    if case.expected is not None:
        cols, rows = spark_engine.fetch(p, STEP_ID)
        assert_rows([c for c, _ in cols], [list(r) for r in rows], case.expected,
                    case.id + " (spark)")
    if case.expected_rejected is not None:
        cols, rows = spark_engine.fetch(p, f"{STEP_ID}.rejected")
        assert_rows([c for c, _ in cols], [list(r) for r in rows], case.expected_rejected,
                    case.id + " (spark, rejected)")


# ---- example pipelines -------------------------------------------------------------------

def _redirect(pipeline: Pipeline, folder: Path) -> None:
    for out in pipeline.outputs.values():
        if out.path:
            out.path = str(folder / Path(out.path).name)


def _read_back(target: str, fmt: str) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """Columns and rows of an output file (DuckDB's) or output directory (Spark's)."""
    path = Path(target)
    pattern = str(path / f"*.{fmt}") if path.is_dir() else str(path)
    fn = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json"}[fmt]
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    rel = con.sql(f"SELECT * FROM {fn}('{pattern}')")
    cols = list(zip(rel.columns, [str(t) for t in rel.types]))
    rows = [list(r) for r in rel.fetchall()]
    con.close()
    return cols, rows


def _assert_same_rows(label: str, duck: list[list[Any]], spark: list[list[Any]]) -> None:
    d = sorted([[normalize(v) for v in r] for r in duck], key=_sort_key)
    s = sorted([[normalize(v) for v in r] for r in spark], key=_sort_key)
    assert len(d) == len(s), f"{label}: DuckDB {len(d)} rows, Spark {len(s)} rows"
    for a, b in zip(d, s):
        assert _close(a, b), f"{label}: DuckDB row {a} != Spark row {b}"


def _run_with_upstream(path: Path, engine: Any, folder: Path) -> tuple[Pipeline, Any]:
    """Run a saved pipeline (after the pipelines publishing its staging sources) into
    ``folder``: file outputs there, staging tables in ``folder/warehouse``."""
    from builder.plan.dependencies import upstream_files

    pipeline = load(path)
    for f in [*upstream_files(pipeline), path]:
        pl = load(f)
        _redirect(pl, folder)
        p = plan(pl)
        assert not p.errors, [str(e) for e in p.errors]
        # Through the runner: staging outputs are published in the warehouse, as a run does.
        result = runner.run(engine, RunSpec.from_plan(p), WarehouseStore())
    return pl, result


def _output_rows(pipeline: Pipeline, target: str, output: str):
    out = pipeline.outputs[output]
    return _read_back(target, "parquet" if out.staging else out.resolved_format or "parquet")


@pytest.mark.parametrize("path", [pytest.param(f, id=f.stem, marks=SPARK) for f in FILES])
def test_example_pipeline_same_rows_on_both_engines(path: Path, tmp_path: Path, spark_engine,
                                                    monkeypatch) -> None:
    results = {}
    for name in ("duckdb", "spark"):
        folder = tmp_path / name
        monkeypatch.setenv("DOCKYARD_WAREHOUSE", str(folder / "warehouse"))
        if name == "spark":
            # An earlier output file (as DuckDB writes it) is replaced by Spark's directory.
            for out in load(path).outputs.values():
                if out.path:
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / Path(out.path).name).write_text("old")
            engine = spark_engine
        else:
            engine = get_engine("duckdb")
        results[name] = _run_with_upstream(path, engine, folder)
    (duck_p, duck_r), (_, spark_r) = results["duckdb"], results["spark"]
    assert [s.node for s in spark_r.steps] == [s.node for s in duck_r.steps]
    assert len(spark_r.outputs) == len(duck_r.outputs) == len(duck_p.outputs)
    for d_out, s_out in zip(duck_r.outputs, spark_r.outputs):
        label = f"{path.stem}/{d_out.output}"
        if duck_p.outputs[d_out.output].path:
            assert Path(s_out.target).is_dir(), "a Spark output is a directory of part files"
            assert not list(Path(s_out.target).parent.glob(".*dockyard-*")), "temp files left"
        d_cols, d_rows = _output_rows(duck_p, d_out.target, d_out.output)
        s_cols, s_rows = _output_rows(duck_p, s_out.target, d_out.output)
        assert s_cols == d_cols, f"{label}: schemas differ"
        assert s_out.rows == d_out.rows == len(d_rows), label
        _assert_same_rows(label, d_rows, s_rows)


@pytest.mark.parametrize("path", [pytest.param(FILES[0], id=FILES[0].stem, marks=SPARK)]
                         if FILES else [])
def test_cli_run_engine_spark(path: Path, tmp_path: Path, spark_engine, capsys) -> None:
    from builder.cli.main import main

    pipeline = load(path)
    for src in pipeline.sources.values():
        if src.path:
            src.path = pipeline.resolve(src.path)
    _redirect(pipeline, tmp_path / "out")
    file = tmp_path / path.name
    file.write_text(dump(pipeline), encoding="utf-8")
    assert main(["run", str(file), "--engine", "spark", "--master", "local[2]"]) == 0
    out = capsys.readouterr().out
    assert "wrote " in out and "rows ->" in out


@pytest.mark.parametrize("path", [pytest.param(FILES[0], id=FILES[0].stem, marks=SPARK)]
                         if FILES else [])
def test_preview_on_spark(path: Path, spark_engine) -> None:
    pipeline = load(path)
    p = plan(pipeline)
    node = next(iter(pipeline.outputs))
    res = spark_engine.preview(p, node, limit=3)
    from builder.engines.preview import Previewer

    with Previewer() as pv:
        duck = pv.preview(p, node, limit=3)
    assert len(res.rows) == min(3, duck.row_count or 0)
    assert res.row_count == duck.row_count
    assert [c for c, _ in res.columns] == [c for c, _ in duck.columns]


# ---- refusals ----------------------------------------------------------------------------

def _sql_pipeline(tmp_path: Path, sql: str) -> Pipeline:
    data = tmp_path / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS x, [range, 1] AS l, range % 3 AS g FROM range(5)) "
               f"TO '{data}' (FORMAT parquet)")
    return Pipeline(name="refuse", sources={"t": Source(id="t", path=str(data))},
                    steps=[Step(id="bad_step", sql=sql)],
                    outputs={"bad_step": Output(step="bad_step", path=str(tmp_path / "o.parquet"))},
                    path=tmp_path / "p.yaml")


@pytest.mark.parametrize("sql, construct", [
    ("SELECT list_aggregate(l, 'sum') AS s FROM t", "list_aggregate"),
    ("SELECT * FROM t PIVOT (sum(x) FOR g IN (0, 1, 2))", "PIVOT"),
    ("SELECT x, g FROM t QUALIFY row_number() OVER (PARTITION BY g ORDER BY x) = 1 "
     "ORDER BY x LIMIT 2", "QUALIFY combined with ORDER BY/LIMIT"),
    ("SELECT * EXCLUDE (l) FROM t", "EXCLUDE"),
    ("SELECT hash(x) AS h FROM t", "hash"),
])
def test_spark_refuses_non_portable_sql_before_running(sql: str, construct: str,
                                                       tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from builder.engines.spark import SparkEngine

    p = plan(_sql_pipeline(tmp_path, sql))
    assert not p.errors, [str(e) for e in p.errors]
    engine = SparkEngine()
    with pytest.raises(CompileError) as ei:
        engine.run(RunSpec.from_plan(p))
    text = str(ei.value)
    assert "step 'bad_step'" in text and construct in text and "spark" in text, text
    assert len(ei.value.problems) == 1 and "\n" not in ei.value.problems[0].message
    assert engine._spark is None, "nothing may start before the refusal"
    assert not (tmp_path / "o.parquet").exists()


def test_duckdb_pivot_statement_is_refused_when_validating(tmp_path: Path) -> None:
    p = plan(_sql_pipeline(tmp_path, "PIVOT t ON g USING sum(x)"))
    assert any("PIVOT" in str(e) and "bad_step" in str(e) for e in p.errors)


def test_missing_pyspark_says_how_to_install(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith(("pyspark.", "py4j"))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pyspark", None)
    for name in [m for m in sys.modules if m.startswith("builder.engines.spark")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(EngineUnavailable) as ei:
        get_engine("spark")
    assert "pip install 'dockyard[spark]'" in str(ei.value)


@pytest.mark.spark
@pytest.mark.slow
def test_rewritten_constructs_match_duckdb(tmp_path: Path, spark_engine) -> None:
    """Constructs sqlglot renders with other results are rendered with DuckDB's meaning."""
    data = tmp_path / "t.parquet"
    duckdb.sql(f"""COPY (SELECT * FROM (VALUES
        (2.5::DOUBLE, 2.5::DECIMAL(10, 2), TIMESTAMP '2024-01-01 23:30:00.250',
         TIMESTAMP '2024-01-02 00:10:00'),
        (-2.5::DOUBLE, -2.5::DECIMAL(10, 2), TIMESTAMP '2024-02-29 12:00:00',
         TIMESTAMP '2025-03-01 11:00:00'),
        (1234.5678::DOUBLE, 3.7::DECIMAL(10, 2), TIMESTAMP '1969-12-31 23:59:59.5',
         TIMESTAMP '1970-01-01 00:00:00')) v(d, m, t1, t2)) TO '{data}' (FORMAT parquet)""")
    sql = """SELECT CAST(d AS INT) AS d_int, CAST(m AS BIGINT) AS m_int, TRY_CAST(d AS INT) AS d_try,
        CAST(d * 2 AS INT) AS expr_int, epoch(t1) AS e,
        date_diff('year', t1, t2) AS y, date_diff('quarter', t1, t2) AS q,
        date_diff('month', t1, t2) AS mo, date_diff('day', t1, t2) AS dd,
        date_diff('hour', t1, t2) AS h, date_diff('minute', t1, t2) AS mi,
        date_diff('second', t1, t2) AS s FROM t"""
    pipeline = Pipeline(name="rewrites", sources={"t": Source(id="t", path=str(data))},
                        steps=[Step(id="r", sql=sql)],
                        outputs={"r": Output(step="r", path=str(tmp_path / "r.parquet"))},
                        path=tmp_path / "p.yaml")
    p = plan(pipeline)
    assert not p.errors, [str(e) for e in p.errors]
    from builder.engines.preview import Previewer

    with Previewer() as pv:
        d_cols, d_rows = pv.fetch(p, "r")
    s_cols, s_rows = spark_engine.fetch(p, "r")
    assert [c for c, _ in s_cols] == [c for c, _ in d_cols]
    _assert_same_rows("rewrites", [list(r) for r in d_rows], [list(r) for r in s_rows])
