"""Paths as an attacker would write them: no output deletes or overwrites what the pipeline does
not own, no staging or pipeline name leaves its folder or breaks the DOT it is drawn in.

Each test runs the real command (``dockyard validate``/``run`` through ``builder.cli.main.main``) or
the library call the app's Run button makes (``api.run``), then checks the files on disk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pytest

from builder import api
from builder.cli.main import main
from builder.errors import PipelineError
from builder.locks import warehouse_lock_file
from builder.pipeline.model import load
from builder.pipeline.project import WAREHOUSE_ENV, find_project
from builder.plan.runspec import RunSpec
from builder.runner.lock import lock_path, run_lock

STEP = "  - id: s\n    sql: SELECT * FROM t\n"
MARKER = "_DOCKYARD_OUTPUT"  # what builder.plan.targets.MARKER must stay: folders on disk have it


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A project (root/saved_pipelines/p.yaml reading root/data/t.csv) and a folder outside it
    holding a file someone else owns."""
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "saved_pipelines").mkdir()
    (root / "data" / "t.csv").write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    (root / "data" / "u.csv").write_text("a,b\n3,z\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim.txt").write_text("someone else's file\n", encoding="utf-8")
    return {"root": root, "data": root / "data", "pipes": root / "saved_pipelines",
            "out": root / "out", "elsewhere": elsewhere}


def _pipeline(proj: dict[str, Path], outputs: str, *, sources: str = "  t: {path: ../data/t.csv}",
              steps: str = STEP, name: str = "p") -> Path:
    f = proj["pipes"] / "p.yaml"
    f.write_text(f"version: 1\nname: {name}\nsources:\n{sources}\nsteps:\n{steps}"
                 f"outputs:\n{outputs}\n", encoding="utf-8")
    return f


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, [line for line in err.splitlines() if line.strip()]


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every file (its bytes) and link (its target) under ``folder``, by relative path."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = p.read_bytes()
    return out


def _refused(path: Path, capsys: pytest.CaptureFixture[str], *words: str) -> None:
    """``validate`` and ``run`` both refuse with exit 2 and one line holding ``words``; the
    app's run (``api.run``) refuses too."""
    for command in ("validate", "run"):
        rc, lines = _cli([command, str(path)], capsys)
        assert rc == 2, (command, lines)
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"{path}:"), lines
        for w in words:
            assert w in lines[0], (w, lines[0])
    with pytest.raises(PipelineError):
        api.run(load(path))


# ---- 1. an output path that is a folder ------------------------------------------------------

FOLDERS = {
    "data_folder": ("../data", "data"),
    "project_root": ("..", "root"),
    "pipelines_folder": (".", "pipes"),
    "data_folder_trailing_slash": ("../data/", "data"),
    "absolute_data_folder": ("{data}", "data"),
    "absolute_root": ("{root}", "root"),
}


@pytest.mark.parametrize("spelling,folder", FOLDERS.values(), ids=list(FOLDERS))
def test_output_on_a_folder_is_refused_and_the_project_survives(proj, capsys, spelling, folder):
    path = spelling.format(data=proj["data"], root=proj["root"])
    f = _pipeline(proj, f"  s: {{path: '{path}', format: csv}}")
    before = _tree(proj["root"])
    _refused(f, capsys, "output 's'", "is a folder", str(proj[folder].resolve()))
    assert _tree(proj["root"]) == before, "the refused run changed the project"


def test_the_apps_run_button_refuses_a_folder_output(tmp_path, monkeypatch):
    """The app shows the problem next to a disabled Run button; the data folder survives."""
    import shutil

    from streamlit.testing.v1 import AppTest

    repo = Path(__file__).resolve().parents[2]
    folder = tmp_path / "pipelines"
    shutil.copytree(repo / "saved_pipelines" / "data", folder / "data")
    text = (repo / "saved_pipelines" / "daily_revenue.yaml").read_text(encoding="utf-8")
    evil = text.replace("{path: ../out/revenue_by_country.parquet}", "{path: data, format: csv}")
    assert evil != text
    (folder / "daily_revenue.yaml").write_text(evil, encoding="utf-8")
    monkeypatch.setenv("DOCKYARD_PIPELINES_DIR", str(folder))
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    before = _tree(folder / "data")
    at = AppTest.from_file(str(repo / "app.py"), default_timeout=60)
    at.run()
    at.button(key="dy_open_daily_revenue").click().run()
    assert not at.exception
    run = at.button(key="dy_run_btn")
    if not run.disabled:  # what a user could do before: the click replaced the folder
        run.click().run()
    assert _tree(folder / "data") == before
    assert run.disabled
    assert any("output 'revenue_by_country': 'data' is a folder" in e.value for e in at.error)


def test_unmarked_folder_of_part_files_is_not_replaced(proj, capsys):
    """A folder named like a file (another Spark job's output, a folder of exports) is not
    Dockyard's: only its marker makes a folder replaceable."""
    target = proj["out"] / "s.parquet"
    target.mkdir(parents=True)
    (target / "_SUCCESS").write_bytes(b"")
    (target / "part-00000.parquet").write_bytes(b"not ours")
    f = _pipeline(proj, "  s: {path: ../out/s.parquet}")
    _refused(f, capsys, "output 's'", "is a folder", MARKER)
    assert (target / "part-00000.parquet").read_bytes() == b"not ours"


def test_folder_a_dockyard_spark_run_wrote_is_replaced(proj, capsys):
    target = proj["out"] / "s.parquet"
    target.mkdir(parents=True)
    (target / "part-00000.parquet").write_bytes(b"old parts")
    (target / MARKER).write_text('{"written_by": "dockyard", "engine": "spark"}\n')
    f = _pipeline(proj, "  s: {path: ../out/s.parquet}")
    rc, lines = _cli(["run", str(f)], capsys)
    assert rc == 0, lines
    assert target.is_file()
    assert duckdb.sql(f"SELECT a, b FROM '{target}' ORDER BY a").fetchall() == [(1, "x"), (2, "y")]


def test_a_cached_run_refuses_a_folder_that_appeared_since_the_plan(proj, capsys):
    """The run cache skips planning: the engine checks again just before it replaces."""
    f = _pipeline(proj, "  s: {path: ../out/s.csv}")
    assert _cli(["run", str(f)], capsys)[0] == 0
    target = proj["out"] / "s.csv"
    target.unlink()
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    rc = main(["run", str(f)])
    out = capsys.readouterr()
    assert "run cache" in out.out, "the second run must come from the cache"
    assert rc == 1
    lines = [x for x in out.err.splitlines() if x.strip()]
    assert len(lines) == 1 and "output 's'" in lines[0] and "not replaced" in lines[0], lines
    assert (target / "keep.txt").read_text() == "precious"


def test_a_cached_run_refuses_a_link_made_since_the_plan(proj, capsys):
    f = _pipeline(proj, "  s: {path: ../out/s.csv}")
    assert _cli(["run", str(f)], capsys)[0] == 0
    target = proj["out"] / "s.csv"
    target.unlink()
    victim = proj["elsewhere"] / "victim.txt"
    os.symlink(victim, target)
    rc = main(["run", str(f)])
    out = capsys.readouterr()
    assert "run cache" in out.out
    assert rc == 1 and "symbolic link" in out.err, out.err
    assert victim.read_text() == "someone else's file\n"


def test_spark_writer_marks_its_output_folder_and_refuses_others(tmp_path):
    """The local half of the Spark engine's write (no Spark needed): the folder it renames into
    place carries the marker, and a folder without it is never replaced."""
    pytest.importorskip("pyspark")
    from builder.engines.spark.writes import atomic_dir
    from builder.plan.targets import UnsafeTargetError

    target = tmp_path / "out" / "s.parquet"
    with atomic_dir(None, str(target), "parquet") as tmp:  # type: ignore[arg-type]
        Path(tmp).mkdir()
        (Path(tmp) / "part-00000.parquet").write_bytes(b"parts")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "part-00000.parquet"]
    with atomic_dir(None, str(target), "parquet") as tmp:  # type: ignore[arg-type]
        Path(tmp).mkdir()
        (Path(tmp) / "part-00001.parquet").write_bytes(b"new parts")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "part-00001.parquet"]
    # A glob over the part files, as docs/spark.md tells DuckDB users, never reads the marker.
    json_out = tmp_path / "out" / "s.json"
    with atomic_dir(None, str(json_out), "json") as tmp:  # type: ignore[arg-type]
        Path(tmp).mkdir()
        (Path(tmp) / "part-00000.json").write_text('{"a": 1}\n{"a": 2}\n')
    assert (json_out / MARKER).is_file()
    assert duckdb.sql(f"SELECT a FROM read_json('{json_out}/*.json') ORDER BY a").fetchall() \
        == [(1,), (2,)]
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "t.csv").write_text("a\n1\n")
    with pytest.raises(UnsafeTargetError, match="not replaced"):
        with atomic_dir(None, str(foreign), "csv"):  # type: ignore[arg-type]
            pass
    assert (foreign / "t.csv").read_text() == "a\n1\n"


@pytest.mark.slow
@pytest.mark.spark
def test_spark_output_folder_is_marked_and_replaced_by_later_runs(proj, capsys):
    pytest.importorskip("pyspark")
    from builder.engines.spark import SparkEngine

    f = _pipeline(proj, "  s: {path: ../out/s.parquet}")
    engine = SparkEngine(master="local[1]", conf={
        "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"})
    target = proj["out"] / "s.parquet"
    try:
        for _ in range(2):  # the second run replaces the first run's folder
            result = engine.run(RunSpec.from_plan(api.compile_plan(load(f))))
            assert result.outputs[0].rows == 2
            assert (target / MARKER).is_file()
        # Spark refuses a folder it did not write, like the DuckDB engine.
        (target / MARKER).unlink()
        with pytest.raises(PipelineError, match="is a folder"):
            engine.run(RunSpec.from_plan(api.compile_plan(load(f))))
    finally:
        engine.close()


# ---- the same file twice ---------------------------------------------------------------------

SAME_FILE = {
    "same_text": ("../out/a.csv", "../out/a.csv"),
    "dot_slash": ("./../out/a.csv", "../out/../out/a.csv"),
    "absolute_and_relative": ("{out}/a.csv", "../out/a.csv"),
    "link_inside_the_project": ("../out/a.csv", "../out/b.csv"),
}


@pytest.mark.parametrize("first,second", SAME_FILE.values(), ids=list(SAME_FILE))
def test_two_outputs_on_the_same_file_are_refused(proj, capsys, first, second):
    proj["out"].mkdir()
    os.symlink("a.csv", proj["out"] / "b.csv")  # a link inside the project, used by one case
    steps = STEP + "  - id: s2\n    sql: SELECT * FROM t\n"
    f = _pipeline(proj, f"  s: {{path: '{first.format(out=proj['out'])}'}}\n"
                        f"  s2: {{path: '{second}'}}", steps=steps)
    _refused(f, capsys, "output 's2' writes the same file as output 's'")
    assert not (proj["out"] / "a.csv").exists()


def test_two_outputs_on_the_same_staging_table_are_refused(proj, capsys):
    steps = STEP + "  - id: s2\n    sql: SELECT * FROM t\n"
    f = _pipeline(proj, "  s: {staging: daily}\n  s2: {staging: DAILY}", steps=steps)
    _refused(f, capsys, "output 's2' publishes the staging table 'DAILY', as output 's'")


# ---- 5. links leading out of the project -------------------------------------------------------

def test_output_file_linked_outside_is_refused(proj, capsys):
    proj["out"].mkdir()
    victim = proj["elsewhere"] / "victim.txt"
    os.symlink(victim, proj["out"] / "s.csv")
    f = _pipeline(proj, "  s: {path: ../out/s.csv}")
    _refused(f, capsys, "output 's'", "symbolic link", str(victim.resolve()))
    assert victim.read_text() == "someone else's file\n"


def test_output_folder_linked_outside_is_refused(proj, capsys):
    os.symlink(proj["elsewhere"], proj["out"])
    before = _tree(proj["elsewhere"])
    f = _pipeline(proj, "  s: {path: ../out/victim.txt, format: csv}")
    _refused(f, capsys, "output 's'", "symbolic link", "outside the project")
    assert _tree(proj["elsewhere"]) == before


def test_a_refused_link_does_not_widen_the_sandbox(proj):
    """The engine's allowed folders come from the outputs' real paths, which validation has
    accepted: a refused link never makes the outside folder readable."""
    proj["out"].mkdir()
    os.symlink(proj["elsewhere"] / "victim.txt", proj["out"] / "s.csv")
    f = _pipeline(proj, "  s: {path: ../out/s.csv}")
    p = api.validate(load(f))
    assert any("symbolic link" in x.message for x in p)
    with pytest.raises(PipelineError):
        api.compile_plan(load(f))


# ---- outputs over what the pipeline reads, its own file, the warehouse --------------------------

OWN = {
    "the_source": ("../data/t.csv", "source 't' reads"),
    "the_source_spelled_otherwise": ("../saved_pipelines/../data/./t.csv", "source 't' reads"),
    "a_file_a_glob_source_reads": ("../data/u.csv", "source 'g' reads"),
    "a_new_file_a_glob_source_would_read": ("../data/new.csv", "source 'g' reads"),
    "the_pipeline_file": ("p.yaml", "this pipeline's own file"),
    "the_warehouse_database": ("../warehouse/dockyard.duckdb", "inside the warehouse"),
    "a_staging_table_file": ("../warehouse/staging/x.parquet", "inside the warehouse"),
    "the_run_cache": ("../warehouse/cache/run.csv", "inside the warehouse"),
    "another_pipeline": ("other.yaml", "code or configuration file"),
    "the_project_file": ("../dockyard.yaml", "code or configuration file"),
    "the_apps_settings": ("../.streamlit/config.toml", "code or configuration file"),
    "python_code": ("../app.py", "code or configuration file"),
    "a_catalog_entry": ("../catalog/orders.yml", "code or configuration file"),
    "the_catalog_folder": ("../catalog/notes.csv", "inside the catalog folder"),
}


@pytest.mark.parametrize("path,words", OWN.values(), ids=list(OWN))
def test_output_over_what_the_pipeline_owns_is_refused(proj, capsys, path, words):
    wh = proj["root"] / "warehouse"
    (wh / "staging").mkdir(parents=True)
    (wh / "staging" / "x.parquet").write_bytes(b"a staging table")
    (proj["pipes"] / "other.yaml").write_text("version: 1\nname: other\n")
    (proj["root"] / ".streamlit").mkdir()
    (proj["root"] / ".streamlit" / "config.toml").write_text('[server]\naddress = "127.0.0.1"\n')
    (proj["root"] / "app.py").write_text("print('app')\n")
    (proj["root"] / "catalog").mkdir()  # the project's catalog: every case keeps the same root
    (proj["root"] / "catalog" / "orders.yml").write_text("orders:\n  pii: {email: hash}\n")
    fmt = "" if path.endswith((".csv", ".parquet")) else ", format: csv"
    f = _pipeline(proj, f"  s: {{path: '{path}'{fmt}}}",
                  sources="  t: {path: ../data/t.csv}\n  g: {path: '../data/*.csv'}",
                  steps="  - id: s\n    sql: SELECT * FROM t UNION ALL SELECT * FROM g\n")
    before = _tree(proj["root"])
    _refused(f, capsys, "output 's'", words)
    after = _tree(proj["root"])
    assert {k: v for k, v in after.items() if not k.startswith("warehouse")} == \
        {k: v for k, v in before.items() if not k.startswith("warehouse")}
    assert after.get("warehouse/staging/x.parquet") == b"a staging table"


# ---- 10. names -----------------------------------------------------------------------------

BAD_STAGING = ["../../x", "a/b", "..", ".", "runs", "RUNS", "staging_tables", "cache", "locks",
               "", "a.b", "a b", "x;drop"]


@pytest.mark.parametrize("name", BAD_STAGING, ids=[repr(n) for n in BAD_STAGING])
def test_bad_staging_names_are_refused(proj, capsys, tmp_path, name):
    f = _pipeline(proj, f"  s: {{staging: '{name}'}}")
    before = _tree(tmp_path)
    _refused(f, capsys, "output 's'", f"staging table name '{name}'")
    assert _tree(tmp_path) == before, "a refused staging name created files"
    f = _pipeline(proj, "  s: {path: ../out/s.csv}", sources=f"  t: {{staging: '{name}'}}")
    rc, lines = _cli(["validate", str(f)], capsys)
    assert rc == 2 and any(f"source 't': staging table name '{name}'" in x for x in lines), lines


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "runs"])
def test_bad_staging_names_in_a_pipeline_built_in_code_are_refused(proj, tmp_path, name):
    """The app and library users build pipelines without a file: planning checks names too."""
    from builder.pipeline.model import Output, Pipeline, Source, Step

    pipeline = Pipeline(name="p", path=proj["pipes"] / "p.yaml",
                        sources={"t": Source(id="t", path="../data/t.csv")},
                        steps=[Step(id="s", sql="SELECT * FROM t")],
                        outputs={"s": Output(step="s", staging=name)})
    before = _tree(tmp_path)
    assert [p.message for p in api.validate(pipeline) if p.severity == "error"] == \
        [f"output 's': {_staging_message(name)}"]
    with pytest.raises(PipelineError):
        api.run(pipeline)
    assert _tree(tmp_path) == before
    pipeline.sources["t"] = Source(id="t", staging=name)
    pipeline.outputs = {"s": Output(step="s", path="../out/s.csv")}
    assert [p.message for p in api.validate(pipeline) if p.severity == "error"] == \
        [f"source 't': {_staging_message(name)}"]


def _staging_message(name: str) -> str:
    from builder.pipeline.model import staging_name_problem

    message = staging_name_problem(name)
    assert message is not None and f"'{name}'" in message
    return message


@pytest.mark.parametrize("name", ["daily", "Daily_2024", "2024", "_x"])
def test_good_staging_names_are_published_in_the_staging_folder(proj, capsys, name):
    f = _pipeline(proj, f"  s: {{staging: '{name}'}}")
    rc, lines = _cli(["run", str(f)], capsys)
    assert rc == 0, lines
    staging = proj["root"] / "warehouse" / "staging"
    assert sorted(p.name for p in staging.iterdir()) == [f"{name}.parquet"]


EVIL_NAMES = ["../../x", "a/b", "..", "/etc/passwd", 'x"y', "a\nb", '"]; evil [', "x" * 300]


@pytest.mark.parametrize("name", EVIL_NAMES, ids=[repr(n[:20]) for n in EVIL_NAMES])
def test_pipeline_name_stays_inside_the_lock_folder(proj, capsys, tmp_path, name):
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    f = _pipeline(proj, "  s: {path: ../out/s.csv}", name=f'"{quoted}"')
    pipeline = load(f)
    assert pipeline.name == name
    locks = find_project(f).warehouse / "locks"
    assert lock_path(pipeline).parent == locks
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,60}-[0-9a-f]{12}\.lock", lock_path(pipeline).name)
    with run_lock(pipeline):
        pass
    rc, lines = _cli(["run", str(f)], capsys)
    assert rc == 0, lines
    made = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert all(str(p).startswith("proj") or str(p).startswith("elsewhere") for p in made), made
    # the run's lock, beside the warehouse's own (builder.locks) and nothing else
    shared = {warehouse_lock_file(locks.parent).name}
    assert {p.name for p in locks.glob("*.lock")} - shared == {lock_path(pipeline).name}


def _dot_tokens(text: str) -> tuple[list[str], list[str]]:
    """(strings, the other tokens) of DOT text; a string's escapes are undone."""
    strings: list[str] = []
    other: list[str] = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(->|[{}\[\];,=])|([A-Za-z0-9_.]+)|(\S)', text,
                         re.S):
        if m.group(1) is not None:
            strings.append(re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                  m.group(1), flags=re.S))
        else:
            other.append(m.group(0))
    return strings, other


@pytest.mark.parametrize("name", EVIL_NAMES, ids=[repr(n[:20]) for n in EVIL_NAMES])
def test_pipeline_names_are_quoted_in_the_lineage_graph(name):
    from builder.warehouse.browse import lineage_dot

    info = {"pipeline": name, "upstream": [{"kind": "file", "name": f"/data/{name}.csv"},
                                           {"kind": "staging", "name": "raw"}]}
    dot = lineage_dot("staging", "daily", info, consumers=[name, "report"])
    strings, other = _dot_tokens(dot)
    # Names only ever appear inside strings: outside them, only the graph's own syntax.
    assert set(other) <= {"digraph", "{", "}", "rankdir", "=", "LR", ";", "node", "[", "]",
                          "shape", "box", ",", "fontsize", "10", "ellipse", "->"}, other
    assert other.count("->") == 5  # producer -> table, 2 upstream -> producer, 2 readers
    assert f"pipeline {name}" in strings
    assert "file:" + f"/data/{name}.csv".rsplit("/", 1)[-1] in strings


# ---- a folder as a source ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["../data", "..", "{data}", "../data/"])
def test_folder_given_as_source_path_is_a_clear_error(proj, capsys, path):
    f = _pipeline(proj, "  s: {path: ../out/s.csv}",
                  sources=f"  t: {{path: '{path.format(data=proj['data'])}', format: csv}}")
    rc, lines = _cli(["validate", str(f)], capsys)
    assert rc == 2
    assert len(lines) == 1 and "source 't'" in lines[0] and "is a folder, not a file" in lines[0] \
        and "*.csv" in lines[0], lines
