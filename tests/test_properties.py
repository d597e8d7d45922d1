"""Identifiers and values are never spliced into SQL as text (property-based, hypothesis).

Column names and values are drawn from quotes, spaces, unicode, reserved words and SQL fragments
(``a"b``, ``x'y``, ``select``, ``1; DROP TABLE t``, ``--``, ``/* */``, emoji, ...). For EVERY
registered pattern, the first case of its case file (tests/fixtures/patterns/<name>.yaml) is
re-run with every column name replaced by such a name, wherever it appears (input schemas,
params, SQL expressions, expected output): the pattern either produces exactly the expected rows
under the new names, or rejects the input with a validation problem (never an exception).
Values get the same treatment: a filter on an injected string matches exactly the rows with that
value, and ``{{ param }}`` values always end up as one literal.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from builder.engines.preview import Previewer
from builder.errors import Problem
from builder.pipeline.model import Output, Pipeline, Source, Step, dump, loads_pipeline
from builder.pipeline.params import render_params
from builder.plan.compiler import plan
from patterns import PATTERNS
from patterns.fields import field_kind
from tests.pattern_cases import STEP_ID, Case, assert_rows, case_pipeline, load_cases

NASTY = [
    'a"b', "x'y", "select", "from", "order", "group by", "1; DROP TABLE t", "--", "/* */",
    "a -- b", "😀", " ", "a b", " lead", "trail ", "Ünïcødé", "列名", '""', "''", "NULL", "null",
    "true", "*", "a.b", "[x]", "`tick`", "$1", "?", "%s", "\\", "tab\there", "new\nline",
    "e\u0301", "x desc", "desc", "rowid", "_dy_tmp", "count(*)", "0x1", "');--",
    "\"; DROP TABLE t; --",
]
_CHARS = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list("\"'`;-/* \t\n"))
NAMES = st.sampled_from(NASTY) | st.text(_CHARS, min_size=1, max_size=10)
VALUES = st.sampled_from(NASTY + ["", "O'Brien", "%", "_", "{{ x }}"]) | st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)

# A few output names come from param defaults; naming them in the params lets them be fuzzed.
EXTRA_PARAMS: dict[str, dict[str, Any]] = {
    "date_spine": {"column": "date"},
    "sessionize": {"session_column": "session_id", "number_column": "session_number"},
}
# Patterns whose output rows hold column names as values, and whose outputs are named by
# input values.
NAMES_AS_VALUES = {"unpivot"}
VALUES_AS_NAMES = {"pivot"}
# Params (at any depth) whose strings are SQL expressions over the input's columns.
_SQL_KEYS = {"expression"}
_ORDER_RE = re.compile(r"^(?P<col>.+?)\s+(?P<dir>asc|desc)$", re.IGNORECASE)


def _base_cases() -> dict[str, Case]:
    out: dict[str, Case] = {}
    for c in load_cases():
        if c.pattern not in out and c.expected is not None and not c.error and not c.error_run:
            out[c.pattern] = c
    return out


BASE = _base_cases()
PATTERN_NAMES = sorted(p.name for p in PATTERNS)


def test_every_registered_pattern_is_covered():
    assert sorted(BASE) == PATTERN_NAMES


# ---- renaming a case -----------------------------------------------------------------------

def _old_names(case: Case, params: dict[str, Any]) -> list[str]:
    """Input columns, plus output columns that the params name (``as:``, derive keys, ...)."""
    names: list[str] = []
    for spec in case.inputs.values():
        names += [c for c in spec["columns"] if c not in names]
    strings: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                strings.add(str(k))
                if k != "function":  # 'count', 'row_number': function names, not columns
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            strings.add(v)

    walk(params)
    assert case.expected is not None
    names += [c for c in case.expected.get("columns", []) if c in strings and c not in names]
    return names


def _rename_sql(text: str, mapping: dict[str, str]) -> str:
    tree = sqlglot.parse_one(text, dialect="duckdb")

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name in mapping:
            return exp.column(mapping[node.name], quoted=True)
        return node

    return tree.transform(swap).sql(dialect="duckdb")


def _rename_order(items: list[Any], mapping: dict[str, str]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            m = _ORDER_RE.match(item.strip())
            column, desc = (m["col"], m["dir"].lower() == "desc") if m else (item.strip(), False)
            # The long form: a name like 'x desc' must not be read as a direction.
            out.append({"column": mapping.get(column, column), "descending": desc})
        else:
            out.append(_rename_value(item, mapping))
    return out


def _rename_value(v: Any, mapping: dict[str, str], sql: bool = False) -> Any:
    if isinstance(v, dict):
        return {mapping.get(k, k): _rename_value(x, mapping, sql or k in _SQL_KEYS)
                for k, x in v.items()}
    if isinstance(v, list):
        return [_rename_value(x, mapping, sql) for x in v]
    if isinstance(v, str):
        return _rename_sql(v, mapping) if sql else mapping.get(v, v)
    return v


def _rename_params(pattern: str, params: dict[str, Any], mapping: dict[str, str]) -> dict:
    model = PATTERNS.get(pattern).params
    fields = {(f.alias or n): n for n, f in model.model_fields.items()}
    out: dict[str, Any] = {}
    for key, value in params.items():
        kind = field_kind(model, fields[key])[0] if key in fields else None
        if kind == "sql":
            out[key] = _rename_sql(str(value), mapping)
        elif kind == "sql_map":
            out[key] = {mapping.get(k, k): _rename_sql(str(x), mapping) for k, x in value.items()}
        elif kind == "order_by":
            out[key] = _rename_order(value if isinstance(value, list) else [value], mapping)
        else:
            out[key] = _rename_value(value, mapping)
    return out


def _derived(name: str, mapping: dict[str, str]) -> str:
    """An output name built from an input name ('n_right', 'sum_amount') under the new names."""
    if name in mapping:
        return mapping[name]
    best = ""
    for old in mapping:
        if (name.endswith("_" + old) or name.startswith(old + "_")) and len(old) > len(best):
            best = old
    if not best:
        return name
    if name.endswith("_" + best):
        return name[: -len(best)] + mapping[best]
    return mapping[best] + name[len(best):]


def renamed_case(case: Case, new_names: list[str]) -> tuple[Case, dict[str, str]]:
    params = {**copy.deepcopy(case.params), **EXTRA_PARAMS.get(case.pattern, {})}
    old = _old_names(case, params)
    mapping = dict(zip(old, new_names))
    inputs = {tid: {**spec, "columns": {mapping[c]: t for c, t in spec["columns"].items()}}
              for tid, spec in case.inputs.items()}
    if case.pattern in VALUES_AS_NAMES:
        for spec in inputs.values():
            spec["rows"] = [[mapping.get(v, v) if isinstance(v, str) else v for v in r]
                            for r in spec.get("rows") or []]
    assert case.expected is not None
    expected = dict(case.expected)
    expected["columns"] = [_derived(c, mapping) for c in case.expected["columns"]]
    if case.pattern in NAMES_AS_VALUES:
        expected["rows"] = [[mapping.get(v, v) if isinstance(v, str) else v for v in r]
                            for r in case.expected.get("rows") or []]
    new = Case(pattern=case.pattern, name=case.name, inputs=inputs,
               params=_rename_params(case.pattern, params, mapping), expected=expected)
    return new, mapping


# ---- running a case ------------------------------------------------------------------------

def _one_line_problems(problems: list[Problem]) -> None:
    for p in problems:
        assert isinstance(p, Problem)
        text = str(p)
        assert text.strip() and "Traceback" not in text
        assert p.step == STEP_ID or p.step is None, text


def run_case(case: Case, folder: Path) -> str:
    """'ok' when the pattern produced the expected rows, 'rejected' for a validation problem."""
    pipeline = case_pipeline(case, folder)
    # The YAML file form keeps every name and value exactly.
    reread = loads_pipeline(dump(pipeline), path=pipeline.path)
    assert reread.step(STEP_ID).params == pipeline.step(STEP_ID).params
    p = plan(reread)
    if p.errors:
        _one_line_problems(p.errors)
        return "rejected"
    assert case.expected is not None
    with Previewer() as pv:
        cols, rows = pv.fetch(p, STEP_ID)
    assert_rows([c for c, _ in cols], [list(r) for r in rows], case.expected, case.id)
    return "ok"


def _unique_names(n: int) -> st.SearchStrategy[list[str]]:
    return st.lists(NAMES, min_size=n, max_size=n, unique_by=lambda s: s.casefold())


@pytest.mark.parametrize("pattern", PATTERN_NAMES)
def test_pattern_with_hostile_column_names_works_or_is_rejected(pattern, tmp_path_factory):
    base = BASE[pattern]
    n = len(_old_names(base, {**base.params, **EXTRA_PARAMS.get(pattern, {})}))
    outcomes: list[str] = []

    @settings(max_examples=4, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(names=_unique_names(n))
    def check(names: list[str]) -> None:
        case, _mapping = renamed_case(base, names)
        outcomes.append(run_case(case, tmp_path_factory.mktemp(pattern)))

    check()
    assert outcomes


# Every hand-picked name must simply work (quoted identifiers everywhere), in every pattern.
_PICKS = [n for n in NASTY if n not in ("x desc", "desc")]


@pytest.mark.parametrize("pattern", PATTERN_NAMES)
def test_pattern_works_with_hand_picked_hostile_names(pattern, tmp_path):
    base = BASE[pattern]
    n = len(_old_names(base, {**base.params, **EXTRA_PARAMS.get(pattern, {})}))
    start = PATTERN_NAMES.index(pattern)
    names = [_PICKS[(start + i * 5) % len(_PICKS)] for i in range(n)]
    assert len({x.casefold() for x in names}) == n
    case, mapping = renamed_case(base, names)
    assert run_case(case, tmp_path) == "ok", mapping


# ---- values ----------------------------------------------------------------------------------

def _table_pipeline(folder: Path, rows: list[tuple[Any, ...]], columns: dict[str, str],
                    steps: list[Step], params: dict[str, Any] | None = None) -> Pipeline:
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    cols = ", ".join(f'"{c.replace(chr(34), chr(34) * 2)}" {t}' for c, t in columns.items())
    con.execute(f"CREATE TABLE t ({cols})")
    if rows:
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in columns)})", rows)
    con.execute("COPY t TO ? (FORMAT parquet)", [str(folder / "t.parquet")])
    con.close()
    last = steps[-1].id
    return Pipeline(name="v", params=params or {}, sources={"t": Source(id="t", path="t.parquet")},
                    steps=steps, outputs={last: Output(step=last, path="out.parquet")},
                    path=folder / "v.yaml")


def _fetch(p: Pipeline, node: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    compiled = plan(loads_pipeline(dump(p), path=p.path))
    needed = set(compiled.needed_for([node]))
    assert not [e for e in compiled.errors if e.step in needed or e.step is None], \
        [str(e) for e in compiled.errors]
    with Previewer() as pv:
        cols, rows = pv.fetch(compiled, node)
    return [c for c, _ in cols], [tuple(r) for r in rows]


_VALUE_SETTINGS = settings(max_examples=15, deadline=None, database=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture])


@_VALUE_SETTINGS
@given(values=st.lists(VALUES, min_size=1, max_size=6), pick=st.integers(0, 5))
def test_filter_on_an_injected_value_matches_exactly_its_rows(values, pick, tmp_path_factory):
    needle = values[pick % len(values)]
    rows = [(i, v) for i, v in enumerate(values)]
    steps = [
        Step(id="by_pattern", pattern="filter", inputs=["t"], params={"where": "v = {{ needle }}"}),
        Step(id="by_sql", sql="SELECT id FROM by_pattern WHERE v = {{ needle }} AND "
                              "{{ needle }} = v"),
    ]
    p = _table_pipeline(tmp_path_factory.mktemp("f"), rows, {"id": "INTEGER", "v": "VARCHAR"},
                        steps, {"needle": needle})
    want = sorted(i for i, v in rows if v == needle)
    assert sorted(r[0] for r in _fetch(p, "by_pattern")[1]) == want
    assert sorted(r[0] for r in _fetch(p, "by_sql")[1]) == want


@_VALUE_SETTINGS
@given(value=VALUES, other=VALUES, name=NAMES)
def test_value_params_of_patterns_are_literals(value, other, name, tmp_path_factory):
    if value == other:
        other = other + "_"
    rows = [(1, None), (2, other)]
    steps = [
        Step(id="filled", pattern="fill_nulls", inputs=["t"], params={"columns": {"v": value}}),
        Step(id="mapped", pattern="case_map", inputs=["filled"],
             params={"column": "v", "mapping": {value: other, other: value}, "default": value,
                     "as": name}),
        Step(id="checked", pattern="expect", inputs=["mapped"],
             params={"checks": [{"accepted_values": {"column": "v", "values": [value, other]}}]}),
        Step(id="piv", pattern="pivot", inputs=["checked"],
             params={"index": ["id"], "column": "v", "value": "id", "function": "count",
                     "values": [value, other]}),
    ]
    p = _table_pipeline(tmp_path_factory.mktemp("v"), rows, {"id": "INTEGER", "v": "VARCHAR"},
                        steps)
    compiled = plan(loads_pipeline(dump(p), path=p.path))
    for e in compiled.errors:
        # Names that cannot be columns (blank, '' or two differing only in case, or taken):
        # one problem on the step, never an exception.
        assert isinstance(e, Problem) and e.step in {"mapped", "piv"}, str(e)
        assert not name.strip() or name.casefold() in ("id", "v") or "" in (value, other) \
            or value.casefold() == other.casefold(), str(e)
    if any(e.step == "mapped" for e in compiled.errors):
        return
    cols, got = _fetch(p, "checked")
    assert cols == ["id", "v", name] or name.casefold() in ("id", "v")
    if name.casefold() not in ("id", "v"):
        assert sorted(got) == [(1, value, other), (2, other, value)]
    if compiled.errors:
        return
    cols, got = _fetch(p, "piv")
    assert cols == ["id", value, other]
    assert sorted(got) == [(1, 1, None), (2, None, 1)]


@_VALUE_SETTINGS
@given(text=VALUES)
def test_hostile_interval_type_and_regex_params_are_problems_not_exceptions(text,
                                                                            tmp_path_factory):
    steps = [
        Step(id="s", pattern="sessionize", inputs=["t"], params={"timestamp": "ts", "gap": text}),
        Step(id="c", pattern="cast", inputs=["t"], params={"columns": {"v": text}}),
        Step(id="b", pattern="time_bucket", inputs=["t"], params={"column": "ts",
                                                                  "interval": text}),
        Step(id="j", pattern="json_extract", inputs=["t"], params={"column": "v",
                                                                   "paths": {"x": text}}),
        Step(id="k", pattern="surrogate_key", inputs=["t"], params={"columns": ["v"],
                                                                    "as": text or "k"}),
    ]
    p = _table_pipeline(tmp_path_factory.mktemp("h"), [(dt.datetime(2024, 1, 1), "a")],
                        {"ts": "TIMESTAMP", "v": "VARCHAR"}, steps)
    compiled = plan(loads_pipeline(dump(p), path=p.path))
    for e in compiled.errors:
        assert isinstance(e, Problem) and e.step in {"s", "c", "b", "j", "k"}, str(e)
        assert "\n" not in e.message, e.message
    for st_plan in compiled.steps.values():
        if st_plan.query is not None:
            # Whatever was accepted is one query, whatever the text held.
            assert len(sqlglot.parse(st_plan.query.sql("duckdb"), dialect="duckdb")) == 1


# ---- {{ param }} values --------------------------------------------------------------------

PARAM_VALUES = (VALUES | st.integers(-10**30, 10**30) | st.floats(allow_nan=True)
                | st.dates() | st.datetimes(min_value=dt.datetime(1, 1, 1, 0, 0, 1)) | st.booleans())


@settings(max_examples=150, deadline=None, database=None)
@given(value=PARAM_VALUES)
def test_param_values_render_as_a_single_literal(value):
    sql = render_params("SELECT {{ p }} AS x FROM t WHERE {{ p }} IS NOT NULL", {"p": value})
    statements = sqlglot.parse(sql, dialect="duckdb")
    assert len(statements) == 1 and isinstance(statements[0], exp.Select), sql
    select = statements[0]
    assert [a.alias for a in select.expressions] == ["x"]
    # No column reference and no subquery can come from a value.
    assert not list(select.find_all(exp.Column)), sql
    assert [t.name for t in select.find_all(exp.Table)] == ["t"]
    got = duckdb.sql(render_params("SELECT {{ p }} AS x", {"p": value})).fetchall()[0][0]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(got)
    elif isinstance(value, float):
        assert float(got) == value
    elif isinstance(value, dt.datetime):
        assert got == value
    else:
        assert got == value


@_VALUE_SETTINGS
@given(value=VALUES)
def test_param_value_through_a_sql_step_round_trips(value, tmp_path_factory):
    steps = [Step(id="s", sql="SELECT {{ p }} AS x, count(*) AS n FROM t")]
    p = _table_pipeline(tmp_path_factory.mktemp("p"), [(1,)], {"id": "INTEGER"}, steps,
                        {"p": value})
    assert _fetch(p, "s") == (["x", "n"], [(value, 1)])
