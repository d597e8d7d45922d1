"""Hostile input gets a located one-line error and exit 2, never an internal error or a hang.

Each case is what an attacker (or an unlucky user) could put in a pipeline file, a ``--set``
value or the folder the app lists: impossible dates, numbers too long to convert, SQL and YAML
nested thousands of levels deep, aliases that expand to millions of values, paths no file
system can open, names no database takes, and "files" that are pipes or devices. The CLI must
answer each with exit 2 and one stderr line naming the file (and line, step, param) involved;
the app must show the same one-line error. Cases that could hang (a FIFO) run in a subprocess
with a timeout, so a regression fails instead of stopping the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.cli.main import main
from builder.errors import ConfigError
from builder.locks import warehouse_lock_file
from builder.pipeline.catalog import load_catalog
from builder.pipeline.model import load
from builder.pipeline.project import find_project
from builder.pipeline.yamlio import MAX_ALIAS_NODES, MAX_DEPTH, loads
from builder.plan.sqlcheck import MAX_SQL_DEPTH

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def _pipe(steps: str = "  - id: a\n    sql: SELECT * FROM s\n",
          sources: str = "  s: {path: data/users.csv}\n",
          outputs: str = "  a: {path: out/a.parquet}\n", params: str = "  d: 2024-01-01\n") -> str:
    return (f"version: 1\nname: p\nparams:\n{params}sources:\n{sources}steps:\n{steps}"
            f"outputs:\n{outputs}")


def _nested_subqueries(n: int) -> str:
    q = "SELECT * FROM s"
    for _ in range(n):
        q = f"SELECT * FROM ({q})"
    return q


PARENS = "(" * 3000 + "1" + ")" * 3000
# A 'billion laughs': 7 levels of 9 aliases each, 4.8 million values from 400 bytes (each level
# more multiplies by 9; unbounded, this one took 9 s and the 564-byte one 1.25 GB).
ALIAS_BOMB = "version: 1\nname: p\nsteps:\n  - id: s\n    pattern: filter\n    params:\n" + \
    '      where: "true"\n      a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + \
    "".join(f"      {n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n"
            for p, n in zip("abcdef", "bcdefg"))

# name -> (pipeline text, extra CLI arguments, expected line, text the message must contain)
CASES: dict[str, tuple[str, list[str], int | None, str]] = {
    "param_feb_30": (_pipe(params="  d: 2024-02-30\n"), [], 4,
                     "'2024-02-30' is not a valid date or time (day is out of range for month)"),
    "param_hour_24": (_pipe(params="  d: 2024-01-01T24:00:00\n"), [], 4,
                      "'2024-01-01T24:00:00' is not a valid date or time (hour must be in"),
    "param_offset_25h": (_pipe(params="  d: 2024-01-01T10:00:00+25:00\n"), [], 4,
                         "time zone offset must be less than 24 hours"),
    "param_5000_digits": (_pipe(params=f"  d: {'9' * 5000}\n"), [], 4,
                          "(5,000 characters) is not a valid number (more than 4,300 digits)"),
    "set_month_13": (_pipe(), ["--set", "d=2024-13-45"], None,
                     "--set 'd': '2024-13-45' is not a valid date or time (month must be in"),
    "set_5000_digits": (_pipe(), ["--set", "d=" + "9" * 5000], None,
                        "--set 'd': '99999999999999999999...' (5,000 characters) is not a valid "
                        "number"),
    "date_spine_feb_30": (_pipe("  - id: a\n    pattern: date_spine\n"
                                "    params: {start: 2024-02-30, end: 2024-03-10}\n"), [], 10,
                          "'2024-02-30' is not a valid date or time"),
    "date_spine_feb_30_quoted": (_pipe("  - id: a\n    pattern: date_spine\n"
                                       "    params: {start: '2024-02-30', end: 2024-03-10}\n"),
                                 [], 10, "step 'a': param 'start' got '2024-02-30'"),
    "sql_3000_parentheses": (_pipe(f"  - id: a\n    sql: SELECT {PARENS} AS x FROM s\n"), [], 8,
                             f"step 'a': the SQL is nested more than {MAX_SQL_DEPTH} levels deep "
                             "(parentheses or subqueries). Move inner parts into CTEs (WITH) or "
                             "earlier steps. (SQL line 1, column 40)"),
    "where_3000_parentheses": (_pipe("  - id: a\n    pattern: filter\n    inputs: [s]\n"
                                     f"    params: {{where: '{PARENS} = 1'}}\n"), [], 11,
                               "step 'a': param 'where' is not a valid SQL expression: nested "
                               f"more than {MAX_SQL_DEPTH} levels deep"),
    "sql_400_subqueries": (_pipe(f"  - id: a\n    sql: {_nested_subqueries(400)}\n"), [], 8,
                           f"nested more than {MAX_SQL_DEPTH} levels deep"),
    "sql_200_nots": (_pipe("  - id: a\n    sql: SELECT * FROM s WHERE " + "NOT " * 200 +
                           "true\n"), [], 8, "step 'a': the SQL is nested too deeply to parse"),
    "where_200_nots": (_pipe("  - id: a\n    pattern: filter\n    inputs: [s]\n"
                             "    params: {where: '" + "NOT " * 200 + "true'}\n"), [], 11,
                       "param 'where' is not a valid SQL expression: nested too deeply"),
    "yaml_5000_deep_flow_list": ("version: 1\nname: p\ndescription: " + "[" * 5000 +
                                 "]" * 5000 + "\n", [], 3,
                                 f"values are nested more than {MAX_DEPTH} levels deep"),
    "yaml_5000_deep_block_list": ("version: 1\nname: p\ndescription:\n" + "".join(
        "  " * i + "- \n" for i in range(1, 5000)), [], MAX_DEPTH + 3,
        f"values are nested more than {MAX_DEPTH} levels deep"),
    "yaml_self_alias": ("version: 1\nname: p\ndescription: &a [*a]\n", [], 3,
                        "nested more than"),
    "alias_bomb": (ALIAS_BOMB, [], 8,
                   f"aliases ('*name') expand to more than {MAX_ALIAS_NODES:,} values"),
    "source_path_empty": (_pipe(sources="  s: {path: ''}\n"), [], 6,
                          "'path' in source 's' is empty"),
    "output_path_empty": (_pipe(outputs="  a: {path: ''}\n"), [], 11,
                          "'path' in output 'a' is empty"),
    "source_path_nul": (_pipe(sources='  s: {path: "data/us\\0ers.csv"}\n'), [], 6,
                        "'path' in source 's' contains a NUL character"),
    "output_path_nul": (_pipe(outputs='  a: {path: "out/a\\0.parquet"}\n'), [], 11,
                        "'path' in output 'a' contains a NUL character"),
    "raw_nul_in_file": (_pipe().replace("name: p", "name: p\x00q"), [], 2,
                        "invalid YAML: the character U+0000 is not allowed in YAML text. Remove "
                        'it, or write it as an escape in double quotes ("\\x00").'),
    "output_staging_300": (_pipe(outputs=f"  a: {{staging: {'t' * 300}}}\n"), [], 11,
                           "staging table name 'tttttttttttttttttttt...' in output 'a' has 300 "
                           "characters; the limit is 63"),
    "source_staging_300": (_pipe(sources=f"  s: {{staging: {'t' * 300}}}\n"), [], 6,
                           "in source 's' has 300 characters; the limit is 63"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    shutil.copytree(ROOT / "saved_pipelines" / "data", folder / "data")
    return folder


def _validate(file: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
              ) -> tuple[int, list[str]]:
    code = main(["validate", str(file), *extra])
    err = capsys.readouterr().err
    return code, err.splitlines()


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_pipeline_is_one_located_line(name: str, project: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_DEBUG", raising=False)
    text, extra, line, expected = CASES[name]
    file = project / f"{name}.yaml"
    file.write_text(text, encoding="utf-8")
    code, lines = _validate(file, extra, capsys)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert expected in lines[0], lines[0]
    assert lines[0].startswith(f"{file}:{line} " if line else f"{file} " if not extra
                               else "--set "), lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in lines[0]


def test_alias_bomb_is_refused_while_loading() -> None:
    assert len(ALIAS_BOMB.encode()) < 500
    with pytest.raises(ConfigError) as e:
        loads(ALIAS_BOMB, file="bomb.yaml")
    assert str(e.value) == ("bomb.yaml:8 aliases ('*name') expand to more than 10,000 values (an "
                            "'alias bomb'). Write the repeated values out, or use fewer aliases.")


def test_a_few_aliases_still_load(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = project / "anchors.yaml"
    file.write_text(_pipe(
        "  - id: a\n    pattern: filter\n    inputs: [s]\n    params: &keep {where: 'user_id > 1'}\n"
        "  - id: b\n    pattern: filter\n    inputs: [a]\n    params: *keep\n",
        outputs="  b: {path: out/b.parquet}\n"), encoding="utf-8")
    p = load(file)
    assert p.step("a").params == p.step("b").params == {"where": "user_id > 1"}
    assert main(["validate", str(file)]) == 0, capsys.readouterr().err


def test_aliases_up_to_the_bound_load() -> None:
    # 99 aliases of a 100-value list expand to 9,900 repeated values: under the bound.
    text = "a: &a [" + ", ".join(["1"] * 100) + "]\nb: [" + ", ".join(["*a"] * 99) + "]\n"
    assert len(loads(text)["b"]) == 99


def test_nesting_up_to_the_bounds_is_accepted(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    depth = MAX_SQL_DEPTH
    file = project / "deep.yaml"
    file.write_text(_pipe(
        f"  - id: a\n    sql: {_nested_subqueries(depth - 1)}\n"
        "  - id: b\n    pattern: filter\n    inputs: [a]\n"
        f"    params: {{where: '{'(' * depth}user_id > 1{')' * depth}'}}\n",
        outputs="  b: {path: out/b.parquet}\n"), encoding="utf-8")
    assert main(["validate", str(file)]) == 0, capsys.readouterr().err
    assert loads("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)) is not None


@pytest.mark.parametrize("kind", ["folder", "device"])
def test_pipeline_path_that_is_not_a_file(kind: str, project: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "data" if kind == "folder" else Path("/dev/null")
    code, lines = _validate(path, [], capsys)
    assert code == 2
    assert lines == [f"{path} pipeline file '{path}' is a {kind}, not a regular file: give the "
                     "path of a .yaml file."]


def _run(code: str, cwd: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Python code in a subprocess with a timeout: a regression hangs it, not the suite."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("DOCKYARD_DEBUG", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def test_pipeline_file_that_is_a_fifo(project: Path) -> None:
    fifo = project / "fifo.yaml"
    os.mkfifo(fifo)
    r = _run("import sys; from builder.cli.main import main; sys.exit(main(['validate', 'fifo.yaml']))",
             project)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["fifo.yaml pipeline file 'fifo.yaml' is a named pipe (FIFO), "
                                     "not a regular file: give the path of a .yaml file."]


def test_catalog_and_project_files_use_the_same_loader(tmp_path: Path) -> None:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "bomb.yaml").write_text(ALIAS_BOMB)
    os.mkfifo(tmp_path / "catalog" / "fifo.yaml")
    r = _run("""
        from pathlib import Path
        from builder.pipeline.catalog import load_catalog
        from builder.pipeline.project import find_project
        for p in load_catalog(find_project(Path('.'))).problems:
            print(p)
        """, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("bomb.yaml:8 catalog file cannot be read: aliases ('*name') expand "
                             "to more than 10,000 values (an 'alias bomb'). Write the repeated "
                             "values out, or use fewer aliases.")
    assert "fifo.yaml:1 catalog file cannot be read: catalog file " in lines[1]
    assert lines[1].endswith("is a named pipe (FIFO), not a regular file: give the path of a "
                             ".yaml file.")
    (tmp_path / "catalog" / "fifo.yaml").unlink()
    (tmp_path / "catalog" / "bomb.yaml").unlink()
    assert load_catalog(find_project(tmp_path)).problems == []

    (tmp_path / "dockyard.yaml").write_text("warehouse: &w [" + ", ".join(["x"] * 200) + "]\n"
                                            "other: [" + ", ".join(["*w"] * 200) + "]\n")
    with pytest.raises(ConfigError, match=r"dockyard.yaml:1 aliases \('\*name'\) expand"):
        find_project(tmp_path)


# ---- found by the sweep: other inputs that reached "internal error" ----------------------

ARG_CASES: dict[str, tuple[list[str], str]] = {
    "preview_limit_20_digits": (["preview", "{file}", "a", "--limit", "9" * 20],
                                "dockyard: argument --limit: '99999999999999999999' is not a "
                                "row count: give a whole number from 0 to 1,000,000."),
    "preview_limit_negative": (["preview", "{file}", "a", "--limit", "-5"],
                               "dockyard: argument --limit: '-5' is not a row count"),
    "memory_limit_garbage": (["run", "{file}", "--no-cache", "--memory-limit", "lots"],
                             "memory limit 'lots': Memory must have a number (e.g. 1GB). Write "
                             "it like 2GB or 500MB."),
    "spark_conf_without_value": (["run", "{file}", "--engine", "spark", "--conf", "novalue"],
                                 "--conf 'novalue': write it as key=value, e.g. "
                                 "--conf spark.sql.shuffle.partitions=8."),
}


@pytest.mark.parametrize("name", sorted(ARG_CASES))
def test_bad_arguments_are_one_line(name: str, project: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    file = project / "ok.yaml"
    file.write_text(_pipe(), encoding="utf-8")
    argv, expected = ARG_CASES[name]
    try:
        code = main([a.replace("{file}", str(file)) for a in argv])
    except SystemExit as e:  # argparse's own errors
        code = int(e.code or 0)
    lines = [ln for ln in capsys.readouterr().err.splitlines()
             if not ln.startswith(("usage:", " "))]  # argparse's usage, then one message
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith(expected), lines


@pytest.mark.parametrize("name", [r"p\0q", "../../../escaped", "n" * 300])
def test_any_pipeline_name_runs(name: str, project: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """The name goes into the run lock's file name: NUL, '/' and length must not break it."""
    file = project / "named.yaml"
    file.write_text(_pipe().replace("name: p\n", f'name: "{name}"\n'), encoding="utf-8")
    assert main(["run", str(file), "--no-cache"]) == 0, capsys.readouterr().err
    # the run's lock, beside the warehouse's own lock (builder.locks)
    shared = warehouse_lock_file(project / "warehouse").name
    locks = [p for p in (project / "warehouse" / "locks").glob("*.lock") if p.name != shared]
    assert len(locks) == 1 and len(locks[0].name) <= 64 + 18, locks
    assert not list(project.parent.glob("escaped*")), "the lock file left the warehouse"


@pytest.mark.parametrize(("location", "expected"), [
    ('""', "'location': the location is empty: give a file or glob"),
    ('"data/us\\0ers.csv"', "'location': the location contains a NUL character"),
])
def test_catalog_location_no_file_system_opens(location: str, expected: str,
                                               tmp_path: Path) -> None:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "users.yaml").write_text(f"name: users\nlocation: {location}\n")
    problems = [str(p) for p in load_catalog(find_project(tmp_path)).problems]
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith(f"{tmp_path / 'catalog' / 'users.yaml'}:2 "), problems


# ---- the app ------------------------------------------------------------------------------

APP_CASES = ["alias_bomb", "param_feb_30", "param_5000_digits", "sql_3000_parentheses",
             "where_3000_parentheses", "yaml_5000_deep_flow_list", "source_path_nul",
             "output_staging_300"]

_APP_SCRIPT = """
    import sys
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(sys.argv[1], default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for name in sys.argv[2:]:
        at.selectbox(key="dy_open_choice").select(name).run()
        at.button(key="dy_open_btn").click().run()
        assert not at.exception, [e.value for e in at.exception]
        shown = [e.value for e in at.error]
        if not shown and at.session_state["dy_pipeline"] is not None:
            # Loaded: its problems are shown next to the step they belong to.
            inspect = at.selectbox(key="dy_selected")
            broken = [o.split(" ", 1)[1].split("  —")[0] for o in inspect.options
                      if o.startswith("✗")]
            inspect.select(broken[0]).run()
            shown = [e.value for e in at.error]
        for message in shown:
            print(name, "|", message.replace("\\n", "\\\\n"))
"""


def test_hostile_files_in_the_app_are_one_line_errors(project: Path) -> None:
    """Opened from the app's list (and listed at all, which reads every file): one line each.

    In a subprocess: the FIFO in the folder would hang the welcome page of an unfixed app.
    """
    for name in APP_CASES:
        (project / f"{name}.yaml").write_text(CASES[name][0], encoding="utf-8")
    os.mkfifo(project / "fifo.yaml")
    r = _run(_APP_SCRIPT, project, str(ROOT / "app.py"), "fifo", *APP_CASES,
             env={"DOCKYARD_PIPELINES_DIR": str(project)}, timeout=TIMEOUT * 3)
    assert r.returncode == 0, r.stderr[-2000:]
    shown: dict[str, list[str]] = {}
    for line in r.stdout.splitlines():
        name, _, message = line.partition(" | ")
        shown.setdefault(name, []).append(message)
    assert sorted(shown) == sorted(["fifo", *APP_CASES]), r.stdout
    assert any("is a named pipe (FIFO), not a regular file" in m for m in shown["fifo"])
    for name in APP_CASES:
        expected = CASES[name][3].split("step 'a': ")[-1]  # the app shows it at the step
        assert any(expected in m for m in shown[name]), (name, shown[name])
    for messages in shown.values():
        for m in messages:
            assert "\\n" not in m and "Something went wrong" not in m and "Traceback" not in m


# ---- a sweep over --set values and params ------------------------------------------------

_SWEEP = _pipe("  - id: a\n    sql: SELECT *, {{ d }} AS v FROM s\n"
               "  - id: b\n    pattern: filter\n    inputs: [a]\n"
               "    params: {where: 'v IS NOT NULL OR {{ d }} IS NULL'}\n"
               "  - id: c\n    pattern: date_spine\n"
               "    params: {start: '{{ d }}', end: 2024-03-01}\n",
               outputs="  b: {path: out/b.parquet}\n")

_VALUES = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2})?"
                  r"(\.[0-9]{1,9})?([+-][0-9]{1,2}:[0-9]{2}|Z)?)?\Z"),
    st.from_regex(r"\A[-+]?([0-9_]{1,6000}|0x[0-9a-f]{1,50}|0o[0-7]{1,20}|0b[01]{1,80}|"
                  r"[0-9]*\.[0-9]*(e[-+]?[0-9]{1,4})?|\.inf|\.nan|[0-9]{1,3}(:[0-9]{2}){1,3})\Z"),
    st.sampled_from(["a\x00b", "\x00", "null", "~", "", "[1, 2]", "{a: 1}", "!!binary aGk=",
                     "!!python/object/apply:os.system ['true']", "&a x", "*a", "{{ d }}", "{{",
                     "é✓😀", "'quoted'", "\u2028", "9" * 4301, "9" * 4300]),
)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=_VALUES)
def test_any_set_value_is_accepted_or_one_line(value: str, project: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    file = project / "sweep.yaml"
    if not file.exists():
        file.write_text(_SWEEP, encoding="utf-8")
    code = main(["compile", str(file), "--step", "b", "--set", f"d={value}"])
    err = capsys.readouterr().err.splitlines()
    assert code in (0, 2), err
    assert len(err) == (0 if code == 0 else 1), err
    assert not any("internal error" in line for line in err), err


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=_VALUES.filter(lambda v: "\n" not in v and "\r" not in v))
def test_any_param_in_the_file_is_accepted_or_one_line(value: str, project: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    file = project / "sweep_param.yaml"
    file.write_text(_SWEEP.replace("  d: 2024-01-01\n", f"  d: {value}\n"), encoding="utf-8")
    code = main(["compile", str(file), "--step", "b"])
    err = capsys.readouterr().err.splitlines()
    assert code in (0, 2), err
    assert 0 < len(err) <= 20 if code else not err, err
    assert not any("internal error" in line for line in err), err
