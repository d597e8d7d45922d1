"""What keeps `dockyard` quick to start and plan, checked as behaviour (timings are in bench/).

Patterns are imported when first used, YAML is read by libyaml when available (same values and
lines as the pure-Python reader), typing connections share one database but not their tables,
the databases planning needs are opened in the background while the compiler is imported, the
command line exits with the right code and complete output, validating, planning and running
load DuckDB's compiled extension but never the duckdb package's Python half, and planning keeps
the garbage collector off the objects that existed before it (without losing any garbage).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from builder.pipeline import yamlio
from builder.plan import sandbox
from builder.plan.schema import Typer
from builder.plan.types import ColumnInfo
from patterns import PATTERNS
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


def test_validate_imports_only_the_patterns_the_pipeline_uses():
    probe = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from builder.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", {str(EXAMPLE)!r}])
        loaded = sorted(m.split(".")[1] for m in sys.modules
                        if m.startswith("patterns.") and m != "patterns.base")
        print(json.dumps({{"code": code, "loaded": loaded}}))
    """)
    r = _run(probe)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    used = {s["pattern"] for s in yamlio.loads(EXAMPLE.read_text())["steps"] if "pattern" in s}
    assert out["code"] == 0 and used
    assert used <= set(out["loaded"])
    # Only the used patterns and the helpers they import, far from the whole palette.
    assert len(out["loaded"]) < len(PATTERNS) // 2, out["loaded"]


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


@pytest.mark.parametrize("bind_only", [True, False], ids=["bind", "describe"])
def test_typing_gives_the_names_and_types_of_a_relation(bind_only, monkeypatch):
    """describe_query binds with DuckDB's extension alone (its bind-only call, or DESCRIBE
    without it); a relation (the duckdb package's con.sql) has the same names and types."""
    import duckdb

    from builder.plan import schema

    assert schema.BIND_ONLY  # the installed duckdb has the bind-only call
    monkeypatch.setattr(schema, "BIND_ONLY", bind_only)

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
    rel = duckdb.connect().sql(query)
    assert got == tuple(ColumnInfo(str(n), str(t)) for n, t in zip(rel.columns, rel.types))
    assert len(got) == 22


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
    from builder.duckdb_native import q
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
        _in_a_transaction(typer)  # the one recovery started (no CREATE commits on its own)
    finally:
        typer.close()


def _in_a_transaction(typer: Typer) -> None:
    # In autocommit mode every statement is a transaction of its own, with a new id.
    ids = [typer.con.execute("SELECT txid_current()").fetchall() for _ in range(2)]
    assert ids[0] == ids[1]


def test_stand_ins_are_made_in_one_transaction_never_committed():
    """Each CREATE in autocommit mode commits on its own (0.2 ms a step more)."""
    typer = Typer()
    try:
        _in_a_transaction(typer)
        typer.define("a", (ColumnInfo("x", "INTEGER"),))
        _in_a_transaction(typer)
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


def test_a_prewarmed_database_is_the_one_planning_gets_and_it_is_sandboxed(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    dirs = sandbox.sandbox_dirs_for_paths([str(tmp_path / "*.csv")])
    assert dirs[0] == str(tmp_path.resolve()) + "/"
    sandbox.prewarm([dirs]).result()
    slot = sandbox._DATABASES[tuple(sorted(dirs))]
    assert slot.con is not None  # opened by the background thread
    first = slot.con
    cur = sandbox.sandboxed_cursor(dirs)
    try:
        assert slot.con is first  # not opened again
        assert cur.execute(f"SELECT x FROM read_csv('{tmp_path}/a.csv')").fetchall() == [(1,)]
        _refuses_files(cur.execute)
        with pytest.raises(Exception, match="(?i)lock|cannot"):
            cur.execute("SET enable_external_access=true")
    finally:
        cur.close()


def test_a_database_asked_for_while_it_opens_is_opened_once(monkeypatch):
    opened = []
    real_open = sandbox._open

    def slow_open(key):
        opened.append(key)
        time.sleep(0.3)  # a cursor is asked for while this runs
        return real_open(key)

    monkeypatch.setattr(sandbox, "_open", slow_open)
    dirs = ["/nonexistent-dockyard-test-dir/"]
    opening = sandbox.prewarm([dirs])
    time.sleep(0.05)
    cur = sandbox.sandboxed_cursor(dirs)  # waits for the background open, does not repeat it
    opening.result()
    try:
        assert cur.execute("SELECT 42").fetchall() == [(42,)]
        assert opened == [tuple(dirs)]
    finally:
        cur.close()


def test_a_failed_background_open_prints_nothing_and_the_real_call_reports_it(
        monkeypatch, capsys):
    def broken(key):
        raise RuntimeError("no database today")

    monkeypatch.setattr(sandbox, "_open", broken)
    dirs = ["/nonexistent-dockyard-broken-dir/"]
    sandbox.prewarm([dirs]).result()
    assert capsys.readouterr().err == ""  # no traceback from the thread
    with pytest.raises(RuntimeError, match="no database today"):
        sandbox.sandboxed_cursor(dirs)


def test_cli_needs_only_duckdbs_extension(tmp_path):
    """Validating, planning and running never import the duckdb package's Python layer (the
    relational API, 50-150 ms): every example validates and runs, planned and then from the
    run cache, with that package blocked."""
    import os
    import shutil

    project = tmp_path / "project"
    shutil.copytree(ROOT / "saved_pipelines", project / "saved_pipelines")
    shutil.copytree(ROOT / "catalog", project / "catalog")
    files = sorted(str(f) for f in (project / "saved_pipelines").glob("*.yaml"))
    # Found as usual (the run cache fingerprints the installed duckdb), but never loaded.
    code = textwrap.dedent(f"""
        import contextlib, importlib.abc, importlib.machinery, io, json, sys
        class Blocked(importlib.abc.Loader):
            def create_module(self, spec):
                return None
            def exec_module(self, module):
                raise ImportError("the duckdb package is blocked")
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name != "duckdb":
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                spec.loader = Blocked()
                return spec
        sys.meta_path.insert(0, Block())
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
        print(json.dumps({{"results": results, "duckdb": "duckdb" in sys.modules}}))
    """)
    env = {**os.environ, "DOCKYARD_WAREHOUSE": str(tmp_path / "warehouse")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert not out["duckdb"]
    n = len(files)
    planned, _validated, second = (out["results"][i * n:(i + 1) * n] for i in range(3))
    assert [c for c, _, _ in out["results"]] == [0] * 3 * n, r.stderr
    assert all(wrote for _, _, wrote in planned)
    # The second round writes the same rows, from the run cache where the pipeline allows it
    # (runs with staging tables or catalog sources are planned every time).
    assert [wrote for _, _, wrote in second] == [wrote for _, _, wrote in planned]
    assert sum(from_cache for _, from_cache, _ in second) >= 2


def test_planning_freezes_the_heap_it_finds_and_thaws_it_after(monkeypatch):
    """Collections during a plan walk only what the plan creates (builder.heap): the objects
    that existed before are frozen while the steps are typed, and thawed when the plan ends."""
    import gc

    from builder.pipeline.model import load
    from builder.plan.compiler import plan

    before = [object()]  # a tracked object that exists before the plan
    frozen_while_typing: list[int] = []
    define = Typer.define

    def spy(self, name, schema):
        if not frozen_while_typing:
            frozen_while_typing.append(gc.get_freeze_count())
        define(self, name, schema)

    monkeypatch.setattr(Typer, "define", spy)
    assert gc.get_freeze_count() == 0
    p = plan(load(EXAMPLE))
    assert not p.errors and p.steps
    assert frozen_while_typing and frozen_while_typing[0] > 0
    assert gc.get_freeze_count() == 0
    assert gc.is_tracked(before)


def test_a_frozen_heap_still_collects_garbage_and_is_shared_by_nested_uses():
    import gc
    import weakref

    from builder.heap import frozen_heap

    class Node:
        pass

    def cycle() -> weakref.ref:
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    old = cycle()  # garbage made before: frozen meanwhile, collected after the thaw
    with frozen_heap():
        new = cycle()  # garbage made inside: collected as usual
        with frozen_heap():
            gc.collect()
            assert new() is None and old() is not None
        assert gc.get_freeze_count() > 0  # the inner exit does not thaw the outer use
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert old() is None


def test_a_heap_frozen_by_the_process_itself_stays_frozen():
    """A server that froze its heap after its imports (to fork workers) keeps its freeze."""
    import gc

    from builder.heap import frozen_heap

    gc.freeze()
    try:
        count = gc.get_freeze_count()
        with frozen_heap():
            pass
        # Still frozen (thawing empties the permanent generation); the count itself can drop a
        # little, as frozen objects freed by reference counting (other threads) leave it.
        assert gc.get_freeze_count() > 0.9 * count
    finally:
        gc.unfreeze()


def test_the_command_sets_the_collector_up_for_itself_only():
    """`dockyard` (builder.cli.main.entry) collects young objects every 100k allocations while its
    imports load (builder.heap); main() called in another process leaves its collector alone."""
    import gc

    from builder.cli.main import main
    from builder.heap import COMMAND_THRESHOLD

    code = textwrap.dedent(f"""
        import gc, sys
        import builder.cli.main as cli
        run = cli.main
        def main():
            print(gc.get_threshold()[0], "builder.plan.compiler" in sys.modules)
            return run()
        cli.main = main
        sys.argv = ["dockyard", "validate", {str(EXAMPLE)!r}]
        cli.entry()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    first, valid = r.stdout.splitlines()[0], r.stdout.splitlines()[-1]
    assert first == f"{COMMAND_THRESHOLD} False"  # set before the compiler is imported
    assert "valid (" in valid
    before = gc.get_threshold()
    assert main(["validate", str(EXAMPLE)]) == 0
    assert gc.get_threshold() == before != (COMMAND_THRESHOLD,) + before[1:]
