"""Concurrent runs against one warehouse (issue 19, items 6 and 7).

Many `dockyard run` processes at once must record every run and register every staging table
(waiting for the warehouse, never dropping a record or corrupting the file), and pipelines
appending to one staging table must not lose each other's rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from builder.cli.main import main
from builder.locks import WAIT_ENV, table_lock_file, warehouse_lock_file
from builder.pipeline.project import WAREHOUSE_ENV

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "saved_pipelines").mkdir()
    (tmp_path / "dockyard.yaml").write_text("warehouse: warehouse\n")
    return tmp_path


def _publisher(root: Path, name: str, rows: int, staging: str, mode: str = "replace") -> Path:
    """A pipeline publishing ``rows`` rows of its own CSV to staging table ``staging``."""
    (root / "data" / f"{name}.csv").write_text(
        "k,v\n" + "".join(f"{j},{name}\n" for j in range(rows)))
    path = root / "saved_pipelines" / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        name: {name}
        sources:
          d: {{path: ../data/{name}.csv}}
        steps:
          - id: s
            sql: SELECT k, v FROM d
        outputs:
          s: {{staging: {staging}, mode: {mode}}}
        """))
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != WAREHOUSE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def _run_all(files: list[Path], **env: str) -> list[subprocess.CompletedProcess[str]]:
    """``dockyard run`` of every file, all started at once, each in its own process."""
    procs = [subprocess.Popen([sys.executable, "-m", "builder.cli", "run", str(f)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(**env)) for f in files]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def _warehouse(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(root / "warehouse" / "dockyard.duckdb"), read_only=True)


@pytest.mark.slow
def test_forty_concurrent_runs_are_all_recorded_and_registered(tmp_path):
    root = _project(tmp_path)
    files = [_publisher(root, f"p{i}", i + 1, f"t{i}") for i in range(40)]
    runs = _run_all(files)
    assert [(r.returncode, r.stderr) for r in runs] == [(0, "")] * 40
    con = _warehouse(root)  # opens: not corrupt
    try:
        recorded = con.execute("SELECT pipeline, status FROM runs ORDER BY pipeline").fetchall()
        assert sorted(recorded) == sorted((f"p{i}", "success") for i in range(40))
        tables = con.execute("SELECT name, pipeline, row_count FROM staging_tables").fetchall()
        assert sorted(tables) == sorted((f"t{i}", f"p{i}", i + 1) for i in range(40))
        # Every view reads its table's file.
        assert [con.execute(f"SELECT count(*) FROM t{i}").fetchall()[0][0]
                for i in range(40)] == [i + 1 for i in range(40)]
    finally:
        con.close()


def test_concurrent_appends_to_one_staging_table_lose_no_rows(tmp_path):
    """Two pipelines (five copies of each, so that ten runs overlap) append to one table."""
    root = _project(tmp_path)
    files = [_publisher(root, f"{kind}{i}", rows, "shared", "append")
             for i in range(5) for kind, rows in (("orders", 100), ("refunds", 37))]
    runs = _run_all(files)
    assert [(r.returncode, r.stderr) for r in runs] == [(0, "")] * 10
    table = root / "warehouse" / "staging" / "shared.parquet"
    counts = duckdb.sql(f"SELECT v, count(*) FROM '{table}' GROUP BY v").fetchall()
    assert sorted(counts) == sorted([(f"orders{i}", 100) for i in range(5)]
                                    + [(f"refunds{i}", 37) for i in range(5)])
    con = _warehouse(root)
    try:  # the registry agrees with the file: 5 * 100 + 5 * 37 rows
        assert con.execute("SELECT row_count FROM staging_tables WHERE name = 'shared'"
                           ).fetchall() == [(685,)]
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'success'"
                           ).fetchall() == [(10,)]
    finally:
        con.close()


def _hold(lock: Path) -> subprocess.Popen[str]:
    """Another process holding ``lock`` until its stdin closes."""
    code = ("import sys; from pathlib import Path; from builder.locks import hold\n"
            "with hold(Path(sys.argv[1]), 'x'):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def _run_while_held(path, lock_file) -> tuple[str, int]:
    """Run ``path`` while another process holds ``lock_file``, waiting at most 0.5 s: the run
    must exit 1 with one line that ends with the bound and its setting. Returns (that line, the
    holder's pid)."""
    holder = _hold(lock_file)
    try:
        run, = _run_all([path], **{WAIT_ENV: "0.5"})
    finally:
        holder.communicate("")
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"for more than 0.5 s; try again when it has finished, or set "
                             f"{WAIT_ENV} to wait longer (seconds).")
    return lines[0], holder.pid


def test_a_busy_warehouse_is_waited_for_then_a_clear_error(tmp_path):
    root = _project(tmp_path)
    path = _publisher(root, "pub", 3, "pub_table")
    database = root / "warehouse" / "dockyard.duckdb"
    # Exit 1 and one line naming the file and who holds it; the output is kept.
    line, pid = _run_while_held(path, warehouse_lock_file(root / "warehouse"))
    assert line.startswith(
        f"{path} the run's outputs are written, but the run is not recorded: the warehouse "
        f"'{database}' is in use by another process (pid {pid} since ")
    table = root / "warehouse" / "staging" / "pub_table.parquet"
    assert duckdb.sql(f"SELECT count(*) FROM '{table}'").fetchall() == [(3,)]
    # Released, the next run waits for nobody and is recorded.
    assert main(["run", str(path)]) == 0
    con = _warehouse(root)
    try:
        assert con.execute("SELECT pipeline, status FROM runs").fetchall() == [
            ("pub", "success")]
    finally:
        con.close()


def test_a_busy_staging_table_is_waited_for_then_a_clear_error(tmp_path):
    root = _project(tmp_path)
    path = _publisher(root, "pub", 3, "shared", "append")
    line, pid = _run_while_held(path, table_lock_file(root / "warehouse", "shared"))
    assert line.startswith(
        f"{path} staging table 'shared' ('{root / 'warehouse' / 'staging' / 'shared.parquet'}')"
        f" is in use by another process (pid {pid} since ")
    assert not (root / "warehouse" / "staging" / "shared.parquet").exists()


def test_wait_setting_must_be_a_number(tmp_path):
    root = _project(tmp_path)
    path = _publisher(root, "pub", 3, "pub_table")
    run, = _run_all([path], **{WAIT_ENV: "soon"})
    assert (run.returncode, run.stderr) == (2, f"{WAIT_ENV} is 'soon': expected a number of "
                                               f"seconds (0 or more), e.g. {WAIT_ENV}=300.\n")
    assert not (root / "warehouse" / "staging").exists()  # stopped before it started


def test_validate_warns_when_another_pipeline_publishes_the_same_table(tmp_path, monkeypatch,
                                                                       capsys):
    root = _project(tmp_path)
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    a = _publisher(root, "a", 3, "shared", "append")
    b = _publisher(root, "b", 3, "shared", "append")
    alone = _publisher(root, "c", 3, "own")
    assert main(["validate", str(a)]) == 0
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        f"{a} warning: staging table 'shared' is also published by '{b}'; their writes wait "
        "for each other, but a replace by one drops the other's rows. Give each pipeline its "
        "own staging table unless both are meant to write it."]
    assert "1 warning" in out.out
    assert main(["validate", str(alone)]) == 0
    assert capsys.readouterr().err == ""
    # Several: all named (up to three).
    for n in range(3):
        _publisher(root, f"x{n}", 1, "shared")
    assert main(["validate", str(b)]) == 0
    assert f"also published by '{a}', '{root / 'saved_pipelines' / 'x0.yaml'}', " \
        f"'{root / 'saved_pipelines' / 'x1.yaml'}' and 1 more;" in capsys.readouterr().err


def test_threads_of_one_process_take_turns_in_the_warehouse(tmp_path, monkeypatch):
    """The app runs pipelines and lists history in threads of one process. A thread reading the
    history (read-only) made a run recording in another fail ('different configuration'):
    now the run waits for its turn."""
    import threading

    from builder.locks import WaitTimeout
    from builder.pipeline.project import Project
    from builder.warehouse.store import database

    project = Project(root=tmp_path, warehouse=tmp_path / "warehouse")
    opened, release = threading.Event(), threading.Event()

    with database(project) as db:
        db.execute("INSERT INTO runs (run_id, status) VALUES ('first', 'success')")

    def first() -> None:
        with database(project, read_only=True) as db:
            assert db.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]
            opened.set()
            release.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert opened.wait(30)
        monkeypatch.setenv(WAIT_ENV, "0.3")
        with pytest.raises(WaitTimeout, match=r"is in use by another run in this process "
                                              rf"\(pid {os.getpid()} since "):
            with database(project):
                pass
    finally:
        release.set()
        thread.join()
    with database(project) as db:  # its turn now
        db.execute("INSERT INTO runs (run_id, status) VALUES ('second', 'success')")
    with database(project, read_only=True) as db:
        assert db.execute("SELECT run_id FROM runs ORDER BY 1").fetchall() == [
            ("first",), ("second",)]
