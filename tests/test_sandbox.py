"""User SQL cannot reach outside the pipeline: refused before running AND by the engine itself.

Every attack is checked twice. The pre-run statement check (``dockyard validate``/``run`` exit 2)
refuses it with one line naming the step. Then the check is bypassed: the raw SQL goes straight
to a sandboxed connection (:func:`builder.engines.duckdb.connect`), or replaces a step's query
in a plan that already validated, and DuckDB itself must refuse it (the last line of defence).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import sqlglot

from builder.cli.main import main
from builder.engines.connection import connect
from builder.engines.duckdb import DuckDBEngine
from builder.engines.preview import Previewer
from builder.errors import ExecutionError
from builder.pipeline.model import load
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec


@pytest.fixture
def proj(tmp_path: Path) -> dict[str, Path]:
    """tmp/proj/{data,pipes,out} with one Parquet source, and tmp/outside with secrets.

    ``data/link.parquet`` and ``data/linkdir`` are symlinks from inside the data folder to
    the outside folder.
    """
    root = tmp_path / "proj"
    data, outside = root / "data", tmp_path / "outside"
    for d in (data, root / "pipes", root / "out", outside):
        d.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("COPY (SELECT 1 AS a, 'x' AS b) TO ? (FORMAT parquet)", [str(data / "t.parquet")])
    con.execute("COPY (SELECT 'TOP SECRET' AS s) TO ? (FORMAT parquet)",
                [str(outside / "secret.parquet")])
    con.close()
    (outside / "secret.csv").write_text("s\nTOP SECRET\n")
    os.symlink(outside / "secret.parquet", data / "link.parquet")
    os.symlink(outside, data / "linkdir")
    return {"root": root, "data": data, "outside": outside, "pipes": root / "pipes",
            "out": root / "out", "spill": tmp_path / "spill"}


def _pipeline(proj: dict[str, Path], sql: str, name: str = "p") -> Path:
    f = proj["pipes"] / f"{name}.yaml"
    body = "\n".join("      " + line for line in sql.splitlines())
    f.write_text(
        "version: 1\nname: p\nsources:\n  t: {path: ../data/t.parquet}\nsteps:\n"
        "  - id: ok\n    sql: SELECT * FROM t\n"
        f"  - id: evil\n    sql: |\n{body}\n"
        "outputs:\n  ok: {path: ../out/ok.parquet}\n  evil: {path: ../out/evil.parquet}\n",
        encoding="utf-8")
    return f


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, [line for line in err.splitlines() if line.strip()]


# ---- the pre-run statement check ---------------------------------------------------------

# (id, SQL of step 'evil', what the one-line message must say). {data} and {outside} are
# absolute folders of the fixture.
PRECHECK = [
    ("read_csv_etc_passwd", "SELECT * FROM read_csv('/etc/passwd')", "function 'read_csv'"),
    ("read_parquet_dotdot", "SELECT * FROM read_parquet('../../outside/secret.parquet')",
     "function 'read_parquet'"),
    ("read_parquet_dotdot_abs", "SELECT * FROM read_parquet('{data}/../../outside/secret.parquet')",
     "function 'read_parquet'"),
    ("symlink_out", "SELECT * FROM read_parquet('{data}/link.parquet')", "function 'read_parquet'"),
    ("symlinked_dir", "SELECT * FROM read_csv('{data}/linkdir/secret.csv')",
     "function 'read_csv'"),
    ("file_as_table", "SELECT * FROM '/etc/passwd'", "table '/etc/passwd' is not a source"),
    ("quoted_file_as_table", 'SELECT * FROM "{outside}/secret.csv"', "is not a source or step"),
    ("nested_subquery", "SELECT a FROM t WHERE a IN (SELECT 1 FROM read_text('/etc/passwd'))",
     "function 'read_text'"),
    ("in_cte", "WITH x AS (SELECT * FROM read_blob('/etc/passwd')) SELECT * FROM x",
     "function 'read_blob'"),
    ("lateral", "SELECT * FROM t, LATERAL read_csv(t.b)", "function 'read_csv'"),
    ("read_text", "SELECT * FROM read_text('/etc/hostname')", "function 'read_text'"),
    ("glob", "SELECT * FROM glob('/etc/*')", "function 'glob'"),
    ("glob_in_folder", "SELECT * FROM glob('{data}/*')", "function 'glob'"),
    ("sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')", "function 'sniff_csv'"),
    ("parquet_metadata", "SELECT * FROM parquet_metadata('{outside}/secret.parquet')",
     "function 'parquet_metadata'"),
    ("query_fn", "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')",
     "function 'query'"),
    ("pragma_table_fn", "SELECT * FROM pragma_table_info('t')",
     "table function 'pragma_table_info'"),
    ("copy_to", "COPY (SELECT * FROM t) TO '{outside}/stolen.csv'", "COPY statements"),
    ("copy_from", "COPY t FROM '/etc/passwd'", "COPY statements"),
    ("attach", "ATTACH '{outside}/db.duckdb' AS x", "ATTACH statements"),
    ("attach_memory", "ATTACH ':memory:' AS m", "ATTACH statements"),
    ("detach", "DETACH m", "DETACH statements"),
    ("install", "INSTALL httpfs", "INSTALL statements"),
    ("load", "LOAD httpfs", "LOAD statements"),
    ("set_external", "SET enable_external_access = true", "SET statements"),
    ("set_lock", "SET lock_configuration = false", "SET statements"),
    ("set_global", "SET GLOBAL allowed_directories = ['/']", "SET statements"),
    ("reset", "RESET enable_external_access", "RESET statements"),
    ("pragma", "PRAGMA enable_external_access", "PRAGMA statements"),
    ("pragma_assign", "PRAGMA threads = 1", "PRAGMA statements"),
    ("call", "CALL pragma_version()", "CALL statements"),
    ("call_reader", "CALL read_csv('/etc/passwd')", "CALL statements"),
    ("export", "EXPORT DATABASE '{outside}/exp'", "EXPORT statements"),
    ("import", "IMPORT DATABASE '{outside}/exp'", "IMPORT statements"),
    ("use", "USE memory", "USE statements"),
    ("getenv", "SELECT getenv('HOME') AS h FROM t", "function 'getenv'"),
    ("current_setting", "SELECT current_setting('allowed_directories') AS d FROM t",
     "function 'current_setting'"),
    ("duckdb_settings", "SELECT * FROM duckdb_settings()", "function 'duckdb_settings'"),
    ("duckdb_secrets", "SELECT * FROM duckdb_secrets()", "function 'duckdb_secrets'"),
    ("two_statements", "SELECT * FROM t; COPY t TO '{outside}/x.csv'", "found 2 statements"),
    ("create", "CREATE TABLE x AS SELECT * FROM read_csv('/etc/passwd')", "CREATE statements"),
]


@pytest.mark.parametrize("case", PRECHECK, ids=[c[0] for c in PRECHECK])
def test_precheck_refuses_with_one_line_naming_the_step(case, proj, capsys):
    _id, sql, expected = case
    f = _pipeline(proj, sql.format(data=proj["data"], outside=proj["outside"]))
    for command in ("validate", "run"):
        rc, lines = _cli([command, str(f)], capsys)
        assert rc == 2, (command, lines)
        hits = [line for line in lines if "step 'evil'" in line and "warning" not in line]
        assert hits, lines
        assert hits[0].startswith(f"{f}:"), hits[0]  # file:line of the step
        assert expected in hits[0], hits[0]
        # Nothing ran: no output at all, and nothing appeared outside the project.
        assert not list(proj["out"].iterdir())
        assert sorted(p.name for p in proj["outside"].iterdir()) == ["secret.csv",
                                                                      "secret.parquet"]


def test_precheck_refuses_file_functions_in_pattern_expressions(proj, capsys):
    f = proj["pipes"] / "pat.yaml"
    f.write_text(
        "version: 1\nname: pat\nsources:\n  t: {path: ../data/t.parquet}\nsteps:\n"
        "  - id: f1\n    pattern: filter\n    inputs: [t]\n"
        "    params: {where: \"a IN (SELECT 1 FROM read_text('/etc/passwd'))\"}\n"
        "  - id: f2\n    pattern: filter\n    inputs: [t]\n"
        "    params: {where: \"a IN (SELECT 1 FROM pragma_table_info('t'))\"}\n"
        "  - id: d\n    pattern: derive\n    inputs: [t]\n"
        "    params: {columns: {h: \"getenv('HOME')\"}}\n"
        "  - id: f3\n    pattern: filter\n    inputs: [t]\n"
        "    params: {where: \"a > 0; COPY t TO '/tmp/x.csv'\"}\n"
        "outputs:\n  f1: {path: ../out/f1.parquet}\n  f2: {path: ../out/f2.parquet}\n"
        "  d: {path: ../out/d.parquet}\n  f3: {path: ../out/f3.parquet}\n", encoding="utf-8")
    rc, lines = _cli(["validate", str(f)], capsys)
    assert rc == 2
    joined = "\n".join(lines)
    assert "step 'f1': param 'where': function 'read_text' is not allowed" in joined
    assert "step 'f2': param 'where': table function 'pragma_table_info' is not allowed" in joined
    assert "step 'd': param 'columns': function 'getenv' is not allowed" in joined
    assert any("step 'f3'" in line for line in lines), joined


# ---- the engine: the pre-check bypassed ------------------------------------------------

# (id, raw SQL run on a sandboxed connection). Every one must raise duckdb.Error.
ENGINE = [
    ("read_csv_etc_passwd", "SELECT * FROM read_csv('/etc/passwd')"),
    ("read_json_etc_passwd", "SELECT * FROM read_json('/etc/passwd')"),
    ("dotdot_escape", "SELECT * FROM read_parquet('{data}/../../outside/secret.parquet')"),
    ("relative_dotdot", "SELECT * FROM read_parquet('../outside/secret.parquet')"),
    ("symlink_file_out", "SELECT * FROM read_parquet('{data}/link.parquet')"),
    ("symlink_dir_out", "SELECT * FROM read_csv('{data}/linkdir/secret.csv')"),
    ("outside_abs", "SELECT * FROM read_csv('{outside}/secret.csv')"),
    ("replacement_scan", "SELECT * FROM '{outside}/secret.csv'"),
    ("read_text", "SELECT * FROM read_text('/etc/hostname')"),
    ("read_blob", "SELECT * FROM read_blob('/etc/hostname')"),
    ("glob", "SELECT * FROM glob('/etc/*')"),
    ("sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')"),
    ("parquet_metadata", "SELECT * FROM parquet_metadata('{outside}/secret.parquet')"),
    ("http", "SELECT * FROM read_parquet('https://example.com/x.parquet')"),
    ("s3", "SELECT * FROM read_parquet('s3://bucket/x.parquet')"),
    ("copy_out", "COPY (SELECT 1 AS x) TO '{outside}/stolen.csv'"),
    ("copy_from", "CREATE TABLE z (s VARCHAR); COPY z FROM '/etc/passwd'"),
    ("attach_file", "ATTACH '{outside}/db.duckdb' AS x"),
    ("export", "EXPORT DATABASE '{outside}/exp'"),
    ("install", "INSTALL httpfs"),
    ("load", "LOAD httpfs"),
    ("load_path", "LOAD '{outside}/evil.duckdb_extension'"),
    ("set_external", "SET enable_external_access = true"),
    ("set_global_external", "SET GLOBAL enable_external_access = true"),
    ("set_lock", "SET lock_configuration = false"),
    ("set_dirs", "SET allowed_directories = ['/']"),
    ("set_autoload", "SET autoload_known_extensions = true"),
    ("set_memory", "SET memory_limit = '1TB'"),
    ("reset", "RESET enable_external_access"),
    ("pragma", "PRAGMA enable_external_access = true"),
    ("call_glob", "CALL glob('/etc/*')"),
    ("call_reader", "CALL read_csv('/etc/passwd')"),
    ("getenv", "SELECT getenv('HOME')"),
]


@pytest.mark.parametrize("case", ENGINE, ids=[c[0] for c in ENGINE])
def test_engine_refuses_when_the_precheck_is_bypassed(case, proj):
    _id, sql = case
    con = connect([str(proj["data"]) + os.sep, str(proj["out"]) + os.sep],
                  temp_directory=str(proj["spill"]))
    try:
        with pytest.raises(duckdb.Error) as info:
            for statement in sql.format(data=proj["data"], outside=proj["outside"]).split(";"):
                con.execute(statement)
        assert "TOP SECRET" not in str(info.value)
        # The sandbox is still on afterwards.
        assert con.execute("SELECT current_setting('enable_external_access'), "
                           "current_setting('lock_configuration')").fetchone() == (False, True)
    finally:
        con.close()
    assert sorted(p.name for p in proj["outside"].iterdir()) == ["secret.csv", "secret.parquet"]


def test_engine_still_reads_and_writes_inside_the_sandbox(proj):
    con = connect([str(proj["data"]) + os.sep, str(proj["out"]) + os.sep],
                  temp_directory=str(proj["spill"]))
    try:
        assert con.execute(f"SELECT * FROM read_parquet('{proj['data']}/t.parquet')"
                           ).fetchall() == [(1, "x")]
        con.execute(f"COPY (SELECT 2 AS a) TO '{proj['out']}/x.parquet'")
    finally:
        con.close()
    assert (proj["out"] / "x.parquet").exists()


def test_extension_autoload_and_autoinstall_are_off(proj, capsys):
    con = connect([str(proj["data"]) + os.sep], temp_directory=str(proj["spill"]))
    try:
        assert con.execute("SELECT current_setting('autoload_known_extensions'), "
                           "current_setting('autoinstall_known_extensions')").fetchone() == \
            (False, False)
        # 'spatial' is not built in: with autoload off the query fails at once, nothing is
        # downloaded or loaded.
        with pytest.raises(duckdb.CatalogException, match="spatial"):
            con.execute("SELECT ST_Point(1, 2)")
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_parquet('https://example.com/x.parquet')")
    finally:
        con.close()
    # Through the pipeline: a one-line validation error naming the step, exit 2.
    f = _pipeline(proj, "SELECT ST_Point(a, a) AS p FROM t")
    rc, lines = _cli(["validate", str(f)], capsys)
    assert rc == 2
    hit = [line for line in lines if "step 'evil'" in line and "spatial" in line]
    assert hit and hit[0].startswith(f"{f}:"), lines


def test_symlink_out_of_a_globbed_data_folder_is_refused(proj, capsys):
    f = proj["pipes"] / "glob.yaml"
    f.write_text("version: 1\nname: g\nsources:\n  t: {path: '../data/*.parquet'}\nsteps:\n"
                 "  - id: s\n    sql: SELECT * FROM t\noutputs:\n  s: {path: ../out/s.parquet}\n",
                 encoding="utf-8")
    for command in ("validate", "run"):
        rc, lines = _cli([command, str(f)], capsys)
        assert rc == 2
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"{f}:4 source 't': cannot read")
        assert "link.parquet" in lines[0] and "TOP SECRET" not in lines[0]
    assert not list(proj["out"].iterdir())


# ---- the last line of defence: a validated plan whose query is swapped --------------------

SWAPPED = [
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')"),
    ("dotdot", "SELECT * FROM read_parquet('{data}/../../outside/secret.parquet')"),
    ("symlink", "SELECT * FROM read_parquet('{data}/link.parquet')"),
    ("outside", "SELECT * FROM read_csv('{outside}/secret.csv')"),
    ("read_text", "SELECT * FROM read_text('/etc/hostname')"),
    ("glob", "SELECT * FROM glob('{outside}/*')"),
    ("subquery", "SELECT a FROM t WHERE a IN (SELECT 1 FROM read_blob('/etc/passwd'))"),
]


@pytest.mark.parametrize("case", SWAPPED, ids=[c[0] for c in SWAPPED])
def test_engine_is_the_last_line_of_defence(case, proj):
    f = _pipeline(proj, "SELECT * FROM t")
    p = plan(load(f))
    assert not p.errors
    # A good run first: its outputs must survive the refused run.
    DuckDBEngine().run(RunSpec.from_plan(p))
    before = (proj["out"] / "evil.parquet").read_bytes()
    p.steps["evil"].query = sqlglot.parse_one(
        case[1].format(data=proj["data"], outside=proj["outside"]), read="duckdb")
    with pytest.raises(ExecutionError) as info:
        DuckDBEngine().run(RunSpec.from_plan(p))
    msg = str(info.value)
    assert "\n" not in msg and "step 'evil'" in msg and "TOP SECRET" not in msg, msg
    assert "disabled by configuration" in msg or "Cannot access" in msg, msg
    assert (proj["out"] / "evil.parquet").read_bytes() == before
    # Previews go through the same sandbox.
    with Previewer() as pv:
        with pytest.raises(ExecutionError, match="step 'evil'"):
            pv.preview(p, "evil")


def test_engine_connection_of_a_plan_is_sandboxed(proj):
    p = plan(load(_pipeline(proj, "SELECT * FROM t")))
    con = DuckDBEngine().connect(p)
    try:
        external, locked, dirs = con.execute(
            "SELECT current_setting('enable_external_access'), "
            "current_setting('lock_configuration'), "
            "current_setting('allowed_directories')").fetchone()
        assert (external, locked) == (False, True)
        allowed = [str(d) for d in dirs]
        assert str(proj["data"]) + os.sep in allowed and str(proj["out"]) + os.sep in allowed
        assert not any(str(proj["outside"]) in d for d in allowed)
        assert "/" not in allowed and "/etc/" not in allowed
    finally:
        con.close()
