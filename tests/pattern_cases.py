"""Load pattern case files (tests/fixtures/patterns/<name>.yaml) and run them on an engine.

Each case becomes a one-step pipeline: its inputs are written as typed Parquet files, the step
is the pattern with the case's params, and the result is read through the real path (model ->
plan -> engine). Values are normalised so both engines compare equal: timestamps as
'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC, dates as 'YYYY-MM-DD', decimals as floats.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from builder.pipeline.model import Output, Pipeline, Source, Step
from builder.pipeline.yamlio import loads

CASES_DIR = Path(__file__).parent / "fixtures" / "patterns"
STEP_ID = "result"


@dataclass
class Case:
    pattern: str
    name: str
    inputs: dict[str, dict[str, Any]]
    params: dict[str, Any]
    expected: dict[str, Any] | None = None
    expected_rejected: dict[str, Any] | None = None
    error: str | None = None
    error_run: str | None = None
    sql: str | None = None
    spark: bool = True  # False: DuckDB-only case (must say why in 'note')
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.pattern}: {self.name}"


def load_cases(pattern: str | None = None) -> list[Case]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = loads(path.read_text(encoding="utf-8"), file=str(path))
        name = data["pattern"]
        if pattern and name != pattern:
            continue
        for c in data.get("cases", []):
            cases.append(Case(
                pattern=name, name=c["name"], inputs=c.get("inputs") or {},
                params=c.get("params") or {}, expected=c.get("expected"),
                expected_rejected=c.get("expected_rejected"), error=c.get("error"),
                error_run=c.get("error_run"), sql=c.get("sql"),
                spark=c.get("spark", True), raw=c))
    return cases


def write_inputs(case: Case, folder: Path) -> dict[str, Path]:
    """Each input as a typed Parquet file; returns id -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    paths = {}
    for name, spec in case.inputs.items():
        cols = spec.get("columns") or {}
        col_sql = ", ".join(f'"{c.replace(chr(34), chr(34) * 2)}" {t}' for c, t in cols.items())
        con.execute(f"CREATE OR REPLACE TABLE t ({col_sql})")
        rows = spec.get("rows") or []
        if rows:
            marks = ", ".join("?" for _ in cols)
            con.executemany(f"INSERT INTO t VALUES ({marks})",
                            [[_to_db(v) for v in r] for r in rows])
        path = folder / f"{name}.parquet"
        con.execute("COPY t TO ? (FORMAT parquet)", [str(path)])
        paths[name] = path
    con.close()
    return paths


def _to_db(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return [_to_db(x) for x in v]
    return v


def case_pipeline(case: Case, folder: Path) -> Pipeline:
    paths = write_inputs(case, folder / "in")
    sources = {name: Source(id=name, path=str(p)) for name, p in paths.items()}
    step = Step(id=STEP_ID, pattern=case.pattern, params=case.params,
                inputs=list(case.inputs) if case.inputs else [])
    outputs = {STEP_ID: Output(step=STEP_ID, path=str(folder / "out" / "result.parquet"))}
    # A case's 'pipeline_params' are the pipeline's 'params:' ('{{ name }}' in the step).
    return Pipeline(name=f"case_{case.pattern}", params=dict(case.raw.get("pipeline_params") or {}),
                    sources=sources, steps=[step], outputs=outputs,
                    path=folder / "pipeline.yaml")


def normalize(value: Any) -> Any:
    """A value in a form both engines and YAML agree on."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return normalize(value.tolist())
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def normalize_expected(value: Any) -> Any:
    if isinstance(value, str):
        # Strings that spell a timestamp compare as timestamps (seconds precision written).
        try:
            parsed = dt.datetime.fromisoformat(value)
            if " " in value or "T" in value:
                return normalize(parsed)
        except ValueError:
            pass
    return normalize(value)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == b


def _sort_key(row: list[Any]) -> tuple[Any, ...]:
    return tuple((v is None, repr(v)) for v in row)


def assert_rows(actual_cols: list[str], actual_rows: list[list[Any]],
                expected: dict[str, Any], label: str) -> None:
    """Compare a result with a case's expectation (columns exactly, rows order-insensitive)."""
    if "columns" in expected:
        assert actual_cols == list(expected["columns"]), \
            f"{label}: columns {actual_cols} != {expected['columns']}"
    exp_rows = [[normalize_expected(v) for v in r] for r in expected.get("rows") or []]
    act_rows = [[normalize(v) for v in r] for r in actual_rows]
    if not expected.get("ordered", False):
        exp_rows = sorted(exp_rows, key=_sort_key)
        act_rows = sorted(act_rows, key=_sort_key)
    assert len(act_rows) == len(exp_rows), \
        f"{label}: {len(act_rows)} rows != {len(exp_rows)} expected\nactual: {act_rows}"
    for a, e in zip(act_rows, exp_rows):
        assert _close(a, e), f"{label}: row {a} != expected {e}\nall actual: {act_rows}"
