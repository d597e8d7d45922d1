"""SQL injection, tried as an attacker would (issue 19, items 2-4).

* A source's or catalog entry's ``options`` key is SQL text in the reader call: it must be one
  of the reader's option names, and values are literals.
* An expression param (filter ``where``, derive ``columns``, expect's ``expression`` ...) may not
  read a file, the environment or a table that is not an input of its step.
* A ``{{ name }}`` value can never become SQL: it goes into the parsed tree as a literal, and a
  ``{{ }}`` inside a comment, a string or a quoted name is refused with its line:column.

Every attack checks the outcome: a one-line error naming the place, no file written, and the
secret's content nowhere (output, errors, run history).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import duckdb
import pytest

from builder.cli.main import main
from builder.pipeline.model import load
from builder.pipeline.project import WAREHOUSE_ENV, find_project
from builder.plan.compiler import plan
from builder.plan.reader_options import READER_FUNCTIONS, READER_OPTIONS
from builder.warehouse.store import run_history
from patterns import PATTERNS
from patterns.fields import field_kind

SECRET = "TOPSECRET-42"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with data in csv/parquet/json, and a secret file in the same data folder (so
    the sandbox for reading the sources would let a query read it too: the worst case)."""
    data = tmp_path / "data"
    for d in (data, tmp_path / "catalog", tmp_path / "saved_pipelines", tmp_path / "out"):
        d.mkdir()
    (data / "data.csv").write_text("id,name,amount\n1,bob,10\n2,alice,20\n3,carol,30\n")
    con = duckdb.connect()
    con.execute("COPY (FROM read_csv(?)) TO ? (FORMAT parquet)",
                [str(data / "data.csv"), str(data / "data.parquet")])
    con.execute("COPY (FROM read_csv(?)) TO ? (FORMAT json)",
                [str(data / "data.csv"), str(data / "data.json")])
    con.close()
    (data / "secret.csv").write_text(f"s\n{SECRET}\n")
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    monkeypatch.setenv("HOME_SECRET", SECRET)
    return tmp_path


def _write(root: Path, body: str, name: str = "p") -> Path:
    f = root / "saved_pipelines" / f"{name}.yaml"
    f.write_text(f"version: 1\nname: {name}\n" + textwrap.dedent(body), encoding="utf-8")
    return f


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(argv)
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert "Traceback" not in text and "internal error" not in text, text
    return rc, text


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ---- item 2: source options --------------------------------------------------------------

# Keys an attacker writes; each would close the reader call and run a COPY of its own.
OPTION_KEYS = [
    "header := true); COPY (SELECT 1) TO '{pwn}'; SELECT struct_pack(x",
    "x := 1)); COPY (SELECT 42 AS n) TO '{pwn}' (FORMAT csv); SELECT * FROM (SELECT 1",
    "filename := true) AS t; COPY (SELECT 1) TO '{pwn}'; --",
    "all_varchar\n:= true); COPY (SELECT 1) TO '{pwn}'; SELECT struct_pack(y",
]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
@pytest.mark.parametrize("key", OPTION_KEYS, ids=range(len(OPTION_KEYS)))
def test_source_option_key_cannot_carry_sql(proj, capsys, fmt, key):
    pwn = proj / "data" / "pwned.csv"
    key = key.format(pwn=pwn)
    f = _write(proj, f"""\
        sources:
          d:
            path: ../data/data.{fmt}
            options: {{{json.dumps(key)}: 1}}
        steps:
          - id: s
            sql: SELECT * FROM d
        outputs:
          s: {{path: ../out/s.csv}}
        """)
    before = _files(proj)
    for command in ("validate", "run"):
        rc, text = _cli([command, str(f)], capsys)
        assert rc == 2, text
        assert not pwn.exists(), f"'{command}' ran the SQL in an option key"
        line = next(x for x in text.splitlines() if "reader option" in x)
        assert f"source 'd': unknown {fmt} reader option" in line, line
    assert _files(proj) == before


def test_catalog_entry_option_key_cannot_carry_sql(proj, capsys):
    pwn = proj / "data" / "pwned.csv"
    key = OPTION_KEYS[0].format(pwn=pwn)
    (proj / "catalog" / "events.yaml").write_text(
        f"name: events\nlocation: ../data/data.csv\noptions: {{{json.dumps(key)}: 1}}\n")
    f = _write(proj, """\
        sources:
          e: {catalog: events}
        steps:
          - id: s
            sql: SELECT * FROM e
        outputs:
          s: {path: ../out/s.csv}
        """)
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2 and not pwn.exists(), text
    assert "source 'e': catalog entry 'events': unknown csv reader option" in text, text


def test_unknown_option_gets_did_you_mean_and_known_ones_work(proj, capsys):
    f = _write(proj, """\
        sources:
          d: {path: ../data/data.csv, options: {delimter: ','}}
        steps:
          - id: s
            sql: SELECT * FROM d
        """)
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2
    assert ("source 'd': unknown csv reader option 'delimter'. Did you mean 'delimiter'?"
            in text), text
    # Option names are case-insensitive, as in DuckDB.
    f = _write(proj, """\
        sources:
          d: {path: ../data/data.csv, options: {DELIM: ',', header: true, all_varchar: true}}
        steps:
          - id: s
            sql: SELECT * FROM d
        """)
    p = plan(load(f))
    assert not p.errors, p.errors
    assert [(c.name, c.type) for c in p.schema("d") or ()] == [
        ("id", "VARCHAR"), ("name", "VARCHAR"), ("amount", "VARCHAR")]


# Option values an attacker writes: each must arrive as one literal value.
OPTION_VALUES = [
    ("nullstr", "x'); COPY (SELECT 1) TO '{pwn}'; --"),
    ("nullstr", "x\\'); COPY (SELECT 1) TO '{pwn}'; --"),
    ("names", ["a'); COPY (SELECT 1) TO '{pwn}'; --", "b\"", "c"]),
    ("types", {"id\"); COPY (SELECT 1) TO '{pwn}'; --": "VARCHAR"}),
]


@pytest.mark.parametrize("key,value", OPTION_VALUES, ids=range(len(OPTION_VALUES)))
def test_source_option_values_are_literals(proj, capsys, key, value):
    pwn = proj / "data" / "pwned.csv"
    value = json.loads(json.dumps(value).replace("{pwn}", str(pwn)))
    f = _write(proj, f"""\
        sources:
          d: {{path: ../data/data.csv, options: {{{key}: {json.dumps(value)}}}}}
        steps:
          - id: s
            sql: SELECT * FROM d
        """)
    main(["validate", str(f)])
    capsys.readouterr()
    assert not pwn.exists()
    if key == "names":  # the value is the column's name, quotes and all
        p = plan(load(f))
        assert [c.name for c in p.schema("d") or ()] == value


def test_reader_option_lists_are_duckdbs_own_names():
    """Every allowed option is a named parameter of the DuckDB reader it is passed to."""
    con = duckdb.connect()
    for fmt, fn in READER_FUNCTIONS.items():
        rows = con.execute("SELECT parameters FROM duckdb_functions() WHERE function_name = ? "
                           "AND function_type = 'table'", [fn]).fetchall()
        named = {p for (params,) in rows for p in params[1:]}
        assert READER_OPTIONS[fmt] <= named, (fmt, sorted(READER_OPTIONS[fmt] - named))


def test_opening_the_attack_file_in_the_app_writes_nothing(proj, monkeypatch):
    from streamlit.testing.v1 import AppTest

    pwn = proj / "data" / "pwned.csv"
    _write(proj, f"""\
        sources:
          d:
            path: ../data/data.csv
            options: {{{json.dumps(OPTION_KEYS[0].format(pwn=pwn))}: 1}}
          ok: {{path: ../data/data.csv}}
        steps:
          - id: s
            pattern: filter
            inputs: [ok]
            params: {{where: "id > (SELECT count(*) FROM '{proj}/data/secret.csv')"}}
        """, name="evil")
    monkeypatch.setenv("DOCKYARD_PIPELINES_DIR", str(proj / "saved_pipelines"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.button(key="dy_open_evil").click().run()
    assert not at.exception
    assert not pwn.exists()
    step_errors = " ".join(e.value for e in at.error)
    assert "param 'where': table" in step_errors and "is not an input" in step_errors
    at.selectbox(key="dy_selected").set_value("d").run()  # the source's own problems
    assert not at.exception and not pwn.exists()
    source_errors = " ".join(e.value for e in at.error)
    assert "unknown csv reader option" in source_errors, source_errors
    assert SECRET not in step_errors + source_errors


# ---- item 3: expression params -----------------------------------------------------------

# (id, expression, what the one-line error says). {secret} is the secret file's absolute path.
EXPRESSIONS = [
    ("string_table", "id > (SELECT count(*) FROM '{secret}')", "is not an input of this step"),
    ("quoted_table", "id > (SELECT count(*) FROM \"{secret}\")", "is not an input of this step"),
    ("cast_leak", "CAST((SELECT * FROM '{secret}' LIMIT 1) AS INT) > 0",
     "is not an input of this step"),
    ("undeclared_step", "id IN (SELECT id FROM other)", "table 'other' is not an input"),
    ("qualified", "id IN (SELECT id FROM main.d)", "is not an input of this step"),
    ("exists_join", "EXISTS (SELECT 1 FROM d JOIN '{secret}' x ON true)",
     "is not an input of this step"),
    ("read_csv", "id > (SELECT count(*) FROM read_csv('{secret}'))", "function 'read_csv'"),
    ("read_text", "length((SELECT content FROM read_text('{secret}'))) > 0",
     "function 'read_text'"),
    ("glob", "id > (SELECT count(*) FROM glob('{dir}/*'))", "function 'glob'"),
    ("getenv", "getenv('HOME_SECRET') IS NOT NULL", "function 'getenv'"),
    ("current_setting", "current_setting('home_directory') IS NOT NULL",
     "function 'current_setting'"),
    ("pragma", "id IN (SELECT 1 FROM pragma_table_info('d'))",
     "table function 'pragma_table_info'"),
]


def _expression_params() -> list[tuple[str, str, str]]:
    """(pattern, param, how to set it) for every SQL-expression param of the registry, and the
    expression checks of expect (a list item, not a field of its own)."""
    out = []
    for pattern in PATTERNS:
        for name in pattern.params.model_fields:
            kind, _inp = field_kind(pattern.params, name)
            if kind in ("sql", "sql_map"):
                out.append((pattern.name, name, kind))
    out.append(("expect", "checks", "expect"))
    return out


EXPRESSION_PARAMS = _expression_params()


def _step_params(pattern: str, param: str, how: str, expression: str) -> dict[str, object]:
    params = dict(PATTERNS.get(pattern).example)
    # The pattern's other expression params read a column the test data has, so the attacked
    # one is the step's only problem (safe_divide's example divides 'clicks' by 'impressions').
    for name in PATTERNS.get(pattern).params.model_fields:
        if name != param and field_kind(PATTERNS.get(pattern).params, name)[0] == "sql":
            params[name] = "amount"
    if how == "sql":
        params[param] = expression
    elif how == "sql_map":
        params[param] = {"x": expression}
    else:
        params = {"checks": [{"expression": expression}]}
    return params


def test_the_registry_has_expression_params():
    assert {(p, n) for p, n, _h in EXPRESSION_PARAMS} >= {
        ("filter", "where"), ("derive", "columns"), ("expect", "checks")}


@pytest.mark.parametrize("where", EXPRESSION_PARAMS, ids=lambda w: f"{w[0]}.{w[1]}")
@pytest.mark.parametrize("case", EXPRESSIONS, ids=[c[0] for c in EXPRESSIONS])
def test_expression_params_read_only_their_inputs(proj, capsys, where, case):
    pattern, param, how = where
    _id, expression, expected = case
    expression = expression.format(secret=proj / "data" / "secret.csv", dir=proj / "data")
    step = {"id": "s", "pattern": pattern, "inputs": ["d"],
            "params": _step_params(pattern, param, how, expression)}
    other = {"id": "other", "sql": "SELECT * FROM d"}
    f = _write(proj, "sources:\n  d: {path: ../data/data.csv}\n"
               f"steps:\n  - {json.dumps(step)}\n  - {json.dumps(other)}\n"
               "outputs:\n  s: {path: ../out/s.csv}\n  other: {path: ../out/o.csv}\n")
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2, text
    line = next((x for x in text.splitlines() if "step 's'" in x and expected in x), None)
    assert line is not None, text
    assert f"param '{param}" in line, line
    rc, text = _cli(["run", str(f)], capsys)
    assert rc == 2 and SECRET not in text, text
    assert not (proj / "out" / "s.csv").exists()
    for run in run_history(find_project(f.resolve())):
        assert SECRET not in json.dumps(run, default=str)


def test_expression_subqueries_on_declared_inputs_still_work(proj):
    f = _write(proj, """\
        sources:
          d: {path: ../data/data.csv}
        steps:
          - id: s
            pattern: filter
            inputs: [d]
            params: {where: "amount > (SELECT avg(amount) FROM d) AND name <> 'x'"}
          - id: e
            pattern: expect
            inputs: [s]
            params: {checks: [{expression: "id IN (SELECT id FROM s)"}]}
        outputs:
          e: {path: ../out/e.csv}
        """)
    assert main(["run", str(f)]) == 0
    assert duckdb.sql(f"SELECT id FROM '{proj}/out/e.csv'").fetchall() == [(3,)]


def test_secret_read_through_a_check_never_reaches_errors_or_history(proj, capsys):
    """Before the fix, the run stopped with "Could not convert string 'TOPSECRET-42' to INT32"
    and stored that message in the run history."""
    f = _write(proj, f"""\
        sources:
          d: {{path: ../data/data.csv}}
        steps:
          - id: s
            pattern: expect
            inputs: [d]
            params:
              checks:
                - expression: "id > CAST((SELECT * FROM '{proj}/data/secret.csv' LIMIT 1) AS INT)"
        outputs:
          s: {{path: ../out/s.csv}}
        """)
    rc, text = _cli(["run", str(f)], capsys)
    assert rc == 2 and SECRET not in text, text
    assert "param 'checks[0].expression': table" in text, text
    runs = run_history(find_project(f.resolve()))
    assert SECRET not in json.dumps(runs, default=str)


def test_check_expressions_are_typed_before_the_run(proj, capsys):
    """A check that cannot bind is a validation error (typed in the no-file sandbox), not a
    failure half-way through a run."""
    f = _write(proj, """\
        sources:
          d: {path: ../data/data.csv}
        steps:
          - id: s
            pattern: expect
            inputs: [d]
            params: {checks: [{expression: "id > 'abc'::DATE"}]}
        """)
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2, text
    assert "step 's': check 'expression(id > 'abc'::DATE)' cannot run:" in text, text


def test_catalog_expectation_expressions_read_only_their_source(proj, capsys):
    (proj / "catalog" / "events.yaml").write_text(
        "name: events\nlocation: ../data/data.csv\nexpectations:\n"
        f"  - expression: \"id > (SELECT count(*) FROM '{proj}/data/secret.csv')\"\n")
    f = _write(proj, """\
        sources:
          e: {catalog: events}
        steps:
          - id: s
            sql: SELECT * FROM e
        """)
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2, text
    assert "source 'e': catalog entry 'events':" in text and "is not an input" in text, text


# ---- item 4: {{ name }} values -----------------------------------------------------------

def _param_pipeline(proj: Path, sql: str) -> Path:
    body = "\n".join("      " + line for line in sql.splitlines())
    return _write(proj, "params:\n  who: bob\n  n: 1\n  day: 2024-01-01\n"
                  "sources:\n  d: {path: ../data/data.csv}\n"
                  f"steps:\n  - id: s\n    sql: |\n{body}\n"
                  "outputs:\n  s: {path: ../out/s.csv}\n")


# (id, SQL of step 's', what the error says, SQL line, SQL column of the misplaced '{{').
MISPLACED = [
    ("comment", "SELECT * FROM d WHERE name = {{ who }} -- only {{ who }}'s rows",
     "'{{ who }}' is inside a comment", 1, 48),
    ("block_comment", "SELECT * FROM d\nWHERE name = {{ who }} /* {{ who }} */",
     "'{{ who }}' is inside a comment", 2, 27),
    ("quoted_alias", 'SELECT id AS "{{ who }}" FROM d', "'{{ who }}' is inside a quoted name",
     1, 15),
    ("string", "SELECT * FROM d WHERE name LIKE '%{{ who }}%'",
     "'{{ who }}' is inside a string literal", 1, 35),
    ("table_name", "SELECT * FROM {{ who }}", "'{{ who }}' is used as a name", 1, 15),
    ("alias", "SELECT id AS {{ who }} FROM d", "'{{ who }}' is used as a name", 1, 14),
    ("function", "SELECT {{ who }}(id) FROM d", "'{{ who }}' is used as a name", 1, 8),
    ("third_line", "SELECT *\nFROM d\n  WHERE id = {{ n }} AND name = '{{ who }}'",
     "'{{ who }}' is inside a string literal", 3, 34),
]


@pytest.mark.parametrize("case", MISPLACED, ids=[c[0] for c in MISPLACED])
def test_params_outside_value_positions_are_refused_with_line_col(proj, capsys, case):
    _id, sql, expected, line, col = case
    f = _param_pipeline(proj, sql)
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2, text
    hit = next((x for x in text.splitlines() if expected in x), None)
    assert hit is not None, text
    assert hit.endswith(f"(SQL line {line}, column {col})"), hit
    assert "step 's'" in hit


# Values that try to end a comment, a string or a name around the param.
HOSTILE_VALUES = [
    "bob\n OR true --",
    "bob' OR '1'='1",
    "bob'; DROP TABLE d; --",
    "*/ OR true /*",
    'bob" OR true --',
    "bob\\' OR true --",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
def test_param_values_are_one_literal_in_sql_steps(proj, capsys, value):
    f = _param_pipeline(proj, "SELECT * FROM d WHERE name = {{ who }}")
    rc, text = _cli(["run", str(f), "--set", f"who={json.dumps(value)}"], capsys)
    assert rc == 0, text
    # No row's name equals the hostile text: the value matched as one string, nothing else.
    assert duckdb.sql(f"SELECT count(*) FROM '{proj}/out/s.csv'").fetchall() == [(0,)]
    rc, text = _cli(["run", str(f), "--set", "who=bob"], capsys)
    assert rc == 0 and duckdb.sql(f"SELECT id FROM '{proj}/out/s.csv'").fetchall() == [(1,)]


def test_the_issue_example_is_refused_and_runs_nothing(proj, capsys):
    """Before the fix the value ended the comment around the second '{{ who }}' and the step
    returned every row."""
    f = _param_pipeline(proj, "SELECT * FROM d WHERE name = {{ who }} -- only {{ who }}'s rows")
    rc, text = _cli(["run", str(f), "--set", 'who="bob\\n OR true --"'], capsys)
    assert rc == 2, text
    assert "'{{ who }}' is inside a comment" in text and "(SQL line 1, column 48)" in text
    assert not (proj / "out" / "s.csv").exists()


@pytest.mark.parametrize("where,expected", [
    ("name = {{ who }} /* {{ who }} */", "'{{ who }}' at line 1, column 21 is inside a comment"),
    ("name LIKE '{{ who }}%'", "'{{ who }}' at line 1, column 12 is inside a string literal"),
    ('"{{ who }}" = 1', "'{{ who }}' at line 1, column 2 is inside a quoted name"),
])
def test_params_in_expression_params_are_refused_with_line_col(proj, capsys, where, expected):
    f = _write(proj, "params: {who: bob}\nsources:\n  d: {path: ../data/data.csv}\nsteps:\n"
               f"  - id: s\n    pattern: filter\n    inputs: [d]\n"
               f"    params: {{where: {json.dumps(where)}}}\n"
               f"  - id: e\n    pattern: expect\n    inputs: [d]\n"
               f"    params: {{checks: [{{expression: {json.dumps(where)}}}]}}\n")
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2, text
    assert f"step 's': param 'where': {expected}" in text, text
    assert f"step 'e': param 'checks[0].expression': {expected}" in text, text


def test_typed_params_still_work_as_values(proj, capsys):
    f = _write(proj, """\
        params: {n: 1, day: 2024-01-01, who: carol}
        sources:
          d: {path: ../data/data.csv}
        steps:
          - id: f
            pattern: filter
            inputs: [d]
            params: {where: "id > {{ n }} AND DATE '2024-06-01' >= {{ day }}"}
          - id: s
            sql: |
              SELECT id, name, {{ day }} + INTERVAL (id) DAY AS due FROM f
              WHERE name <> {{ who }} -- {{ not a param, never parsed }}
        outputs:
          s: {path: ../out/s.csv}
        """)
    rc, text = _cli(["validate", str(f)], capsys)
    assert rc == 2 and "'{{ not a param, never parsed }}' is not a param reference" in text
    f.write_text(f.read_text().replace(" -- {{ not a param, never parsed }}", ""))
    rc, text = _cli(["run", str(f)], capsys)
    assert rc == 0, text
    assert duckdb.sql(f"SELECT id, name, CAST(due AS DATE)::VARCHAR FROM '{proj}/out/s.csv'"
                      ).fetchall() == [(2, "alice", "2024-01-03")]
