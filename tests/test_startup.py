"""What keeps `dockyard` quick to start and plan, checked as behaviour (timings are in bench/).

The pattern registry loads a pattern on first use and checks it, YAML is read by libyaml when
available (same values and lines as the pure-Python reader), typing connections share one
database but not their tables and get DuckDB's own names and types, the sandboxed databases read
only their folders, the command line exits with the right code and complete output, and every
example runs planned and then from the run cache with the same outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from builder.pipeline import yamlio
from builder.plan import sandbox
from builder.plan.schema import Typer
from builder.plan.types import ColumnInfo
from patterns.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "saved_pipelines" / "clicks_daily.yaml"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def _refuses_files(run_sql) -> None:
    """The sandbox: a query reading a file outside the allowed folders fails."""
    with pytest.raises(Exception, match="(?i)permission|disabled"):
        run_sql("SELECT * FROM read_csv('/etc/hostname')")


def test_registry_loads_a_pattern_on_first_use_and_checks_its_module():
    reg = Registry(["filter", "select"])
    assert reg._patterns["filter"] is None  # declared, not imported
    assert "filter" in reg and reg.names() == ["filter", "select"]
    assert reg.get("filter").name == "filter"
    assert [p.name for p in reg] == ["filter", "select"]
    with pytest.raises(ValueError, match="registered twice"):
        Registry(["filter", "filter"])
    with pytest.raises(ValueError, match=r"patterns/base\.py must declare PATTERN"):
        Registry(["base"]).get("base")  # a module of the package that declares no pattern


@pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="PyYAML without libyaml")
def test_libyaml_reader_gives_the_same_values_and_lines():
    text = EXAMPLE.read_text()
    fast = yaml.load(text, Loader=yamlio._FastLoader)  # noqa: S506 - SafeLoader subclass
    slow = yaml.load(text, Loader=yamlio._Loader)  # noqa: S506 - SafeLoader subclass
    assert yamlio._FastLoader is not yamlio._Loader
    assert fast == slow

    def lines(node: object) -> list[object]:
        if isinstance(node, yamlio.LineDict):
            return [node.line, sorted(node.key_lines.items())] + [
                lines(v) for v in node.values()]
        if isinstance(node, list):
            return [lines(v) for v in node]
        return []

    assert lines(fast) == lines(slow) and lines(fast)[0] == 1
    # YAML 1.2 booleans in both: 'on' stays a string (a join's key list).
    assert yamlio.loads("on: [a]\nx: yes\ny: true") == {"on": ["a"], "x": "yes", "y": True}


def test_a_syntax_error_keeps_the_explanatory_message():
    with pytest.raises(Exception) as ei:
        yamlio.loads("steps:\n  - id: a\n - id: b\n", file="p.yaml")
    assert "p.yaml:3 invalid YAML: expected the end of the block, but found a list item" \
        in str(ei.value)


def test_typers_share_a_database_but_not_their_tables():
    a, b = Typer(), Typer()
    try:
        a.define("t", (ColumnInfo("x", "INTEGER"),))
        b.define("t", (ColumnInfo("y", "VARCHAR"),))
        assert a.describe_query("SELECT * FROM t") == (ColumnInfo("x", "INTEGER"),)
        assert b.describe_query("SELECT * FROM t") == (ColumnInfo("y", "VARCHAR"),)
        # Types read from the bound query are DuckDB's own spellings, nested ones included.
        got = a.describe_query("SELECT 1.5::DECIMAL(18,2) AS d, {'k': [1]} AS s, "
                               "'a'::ENUM('a', 'b') AS e, now() AS ts")
        assert [c.type for c in got] == ["DECIMAL(18,2)", "STRUCT(k INTEGER[])",
                                         "ENUM('a', 'b')", "TIMESTAMP WITH TIME ZONE"]
    finally:
        a.close()
        b.close()
    c = Typer()
    try:  # a closed Typer's tables are gone
        with pytest.raises(Exception, match="Table with name t does not exist"):
            c.describe_query("SELECT * FROM t")
        _refuses_files(c.describe_query)
    finally:
        c.close()


def test_typing_gives_the_names_and_types_duckdb_describes():
    """describe_query binds a query without running it; its names and types are the ones
    DESCRIBE reports for the same query."""
    import duckdb

    query = ("SELECT 1::INTEGER AS a, 1.5::DECIMAL(18,3) AS \"b c\", 'x' AS \"x\"\"y\", "
             "now() AS ts, now()::TIMESTAMP AS t2, {'a': 1, 'b c': [1, 2]} AS s, "
             "[1, 2]::INTEGER[] AS l, MAP {'k': 1} AS m, 'happy'::ENUM('happy', 'sad') AS e, "
             "union_value(num := 2) AS u, INTERVAL 1 DAY AS i, uuid() AS uu, 'a'::BLOB AS bl, "
             "'{}'::JSON AS j, [1, 2, 3]::INTEGER[3] AS arr, NULL AS n, 1::HUGEINT AS h, "
             "1::UTINYINT AS ut, current_date AS d, '12:00'::TIME AS tm, 1.5::FLOAT AS f, "
             "true AS bo")
    typer = Typer()
    try:
        got = typer.describe_query(query)
    finally:
        typer.close()
    described = duckdb.connect().execute(f"DESCRIBE {query}").fetchall()
    assert got == tuple(ColumnInfo(str(r[0]), str(r[1])) for r in described)
    assert len(got) == 22


def test_typing_never_runs_the_query():
    typer = Typer()
    try:
        assert typer.describe_query("SELECT error('ran') AS x, 1 AS y") == (
            ColumnInfo("x", '"NULL"'), ColumnInfo("y", "INTEGER"))
    finally:
        typer.close()


def test_a_stand_in_has_the_names_and_types_it_was_defined_with():
    """Every type DuckDB reports can be a stand-in's column type, under any column name."""
    typer = Typer()
    try:
        got = typer.describe_query(
            "SELECT 1.5::DECIMAL(18,3) AS \"b c\", 'x' AS \"x\"\"y\", {'a': 1, 'b c': [1, 2]} AS "
            "s, MAP {'k': 1} AS m, 'happy'::ENUM('happy', 'sad') AS \"order\", "
            "union_value(num := 2) AS \"ünï\", [1, 2, 3]::INTEGER[3] AS \"a.b\", NULL AS n")
        typer.define("t t", got)
        assert typer.describe_query('SELECT * FROM "t t"') == got
    finally:
        typer.close()


@pytest.mark.parametrize("name", ["a", "A b", 'x"y', '"', "", "order", "ünï", "a\nb", "it's",
                                  "back\\slash", '""x""', "1abc", "emoji\U0001F600"])
def test_quoting_a_name_is_sqlglots_duckdb_quoting(name):
    from builder.plan.sandbox import q
    from patterns.sql import ident

    assert q(name) == ident(name).sql("duckdb")


def test_a_failed_definition_keeps_the_stand_ins_made_before_it():
    """Stand-ins are made in one transaction, which a failed CREATE aborts: the ones made
    before are made again, so the steps after a broken one are still typed."""
    import duckdb

    typer = Typer()
    try:
        typer.define("a", (ColumnInfo("x", "INTEGER"),))
        typer.define("b", (ColumnInfo("y", "VARCHAR"),))
        with pytest.raises(duckdb.Error, match="already exists"):  # SELECT x, x
            typer.define("c", (ColumnInfo("x", "INTEGER"), ColumnInfo("x", "INTEGER")))
        with pytest.raises(duckdb.Error, match="Table with name c does not exist"):
            typer.describe_query("SELECT * FROM c")
        typer.define("d", (ColumnInfo("z", "DATE"),))
        assert typer.describe_query("SELECT * FROM a, b, d") == (
            ColumnInfo("x", "INTEGER"), ColumnInfo("y", "VARCHAR"), ColumnInfo("z", "DATE"))
    finally:
        typer.close()


@pytest.mark.parametrize(("file", "code", "stream", "text"), [
    (EXAMPLE, 0, "stdout", "valid ("),
    (ROOT / "nope.yaml", 2, "stderr", "pipeline file"),
])
def test_command_exits_with_its_code_and_complete_output(file, code, stream, text):
    r = subprocess.run([sys.executable, "-m", "builder.cli", "validate", str(file)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == code, r.stderr
    assert text in getattr(r, stream)


def test_a_sandboxed_database_reads_only_its_folders(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    dirs = sandbox.sandbox_dirs_for_paths([str(tmp_path / "*.csv")])
    assert dirs[0] == str(tmp_path.resolve()) + "/"
    cur = sandbox.sandboxed_cursor(dirs)
    try:
        assert cur.execute(f"SELECT x FROM read_csv('{tmp_path}/a.csv')").fetchall() == [(1,)]
        _refuses_files(cur.execute)
        with pytest.raises(Exception, match="(?i)lock|cannot"):
            cur.execute("SET enable_external_access=true")
    finally:
        cur.close()


def test_every_example_runs_planned_then_from_the_run_cache(tmp_path):
    """Every example validates and runs, planned and then from the run cache, with the same
    outputs."""
    import os
    import shutil

    project = tmp_path / "project"
    shutil.copytree(ROOT / "saved_pipelines", project / "saved_pipelines")
    shutil.copytree(ROOT / "catalog", project / "catalog")
    files = sorted(str(f) for f in (project / "saved_pipelines").glob("*.yaml"))
    code = textwrap.dedent(f"""
        import contextlib, io, json
        from builder.cli.main import main
        results = []
        for command in (["run"], ["validate"], ["run"]):  # validate needs upstream staging
            for f in {files!r}:
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    code = main([*command, f])
                results.append([code, "plan: unchanged since the last run" in out.getvalue(),
                                [line for line in out.getvalue().splitlines()
                                 if line.startswith("wrote ")]])
        print(json.dumps({{"results": results}}))
    """)
    env = {**os.environ, "DOCKYARD_WAREHOUSE": str(tmp_path / "warehouse")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    n = len(files)
    planned, _validated, second = (out["results"][i * n:(i + 1) * n] for i in range(3))
    assert [c for c, _, _ in out["results"]] == [0] * 3 * n, r.stderr
    assert all(wrote for _, _, wrote in planned)
    # The second round writes the same rows, from the run cache where the pipeline allows it
    # (runs with staging tables or catalog sources are planned every time).
    assert [wrote for _, _, wrote in second] == [wrote for _, _, wrote in planned]
    assert sum(from_cache for _, from_cache, _ in second) >= 2
