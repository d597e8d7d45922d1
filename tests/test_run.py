"""Running and previewing on DuckDB: results equal hand-written SQL, outputs are atomic, the
CLI's exit codes hold, previews reuse cached upstream results."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import duckdb
import pytest

from builder import api
from builder.cli.main import main
from builder.engines.preview import Previewer
from builder.pipeline.model import load
from builder.pipeline.project import find_project
from builder.plan.compiler import plan
from builder.warehouse.store import run_history
from tests.processes import kill_run_while_writing

DATA = (Path(__file__).parent / "fixtures" / "data").resolve()


def _write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    f = tmp_path / name
    f.write_text(textwrap.dedent(body).replace("{DATA}", str(DATA)), encoding="utf-8")
    return f


PIPELINE = """\
    version: 1
    name: t
    params:
      min_day: 2024-01-01
    sources:
      clicks: {path: '{DATA}/clicks.csv'}
      users: {path: '{DATA}/users.csv'}
    steps:
      - id: paid
        pattern: filter
        inputs: [clicks]
        params: {where: "amount IS NOT NULL OR page = 'home'"}
      - id: picked
        pattern: select
        inputs: [paid]
        params: {columns: [user_id, ts, amount]}
      - id: daily
        sql: |
          SELECT p.user_id, u.name, CAST(p.ts AS DATE) AS day, count(*) AS events,
                 sum(p.amount) AS amount
          FROM picked p LEFT JOIN users u USING (user_id)
          WHERE p.ts >= {{ min_day }}
          GROUP BY ALL
    outputs:
      daily: {path: out/daily.parquet}
      picked: {path: out/picked.csv}
"""

HAND_WRITTEN = f"""
    SELECT c.user_id, u.name, CAST(c.ts AS DATE) AS day, count(*) AS events,
           sum(c.amount) AS amount
    FROM read_csv('{DATA}/clicks.csv') c LEFT JOIN read_csv('{DATA}/users.csv') u USING (user_id)
    WHERE (c.amount IS NOT NULL OR c.page = 'home') AND c.ts >= DATE '2024-01-01'
    GROUP BY ALL ORDER BY ALL
"""


def test_run_matches_hand_written_sql(tmp_path):
    f = _write(tmp_path, PIPELINE)
    result = api.run(load(f))
    assert [s.node for s in result.steps] == ["paid", "picked", "daily"]
    # 'paid' is read by one step only: streamed into it, no count; outputs are tables.
    assert result.steps[0].rows is None and result.steps[1].rows == 6
    detailed = api.run(load(f), pipeline_steps=False)  # dockyard run --step-stats
    assert detailed.steps[0].rows == 6  # every row has an amount or is on home
    got = duckdb.sql(f"SELECT * FROM '{tmp_path}/out/daily.parquet' ORDER BY ALL").fetchall()
    want = duckdb.sql(HAND_WRITTEN).fetchall()
    assert got == want and len(got) == 2
    assert ("O'Brien" in {r[1] for r in got})
    csv_rows = duckdb.sql(f"SELECT count(*) FROM read_csv('{tmp_path}/out/picked.csv')").fetchall()
    assert csv_rows == [(6,)]
    assert not list((tmp_path / "out").glob(".*tmp*")), "temp files left behind"


def test_set_overrides_param(tmp_path, capsys):
    f = _write(tmp_path, PIPELINE)
    assert main(["run", str(f), "--set", "min_day=2024-01-02"]) == 0
    days = duckdb.sql(f"SELECT DISTINCT day FROM '{tmp_path}/out/daily.parquet'").fetchall()
    assert [str(d[0]) for d in days] == ["2024-01-02"]
    out = capsys.readouterr().out
    assert "[3/3] step daily: streamed into its output" in out and "wrote daily: 1 rows" in out


SELF_JOIN = """\
    version: 1
    name: t
    sources:
      clicks: {path: '{DATA}/clicks.csv'}
    steps:
      - id: paid
        pattern: filter
        inputs: [clicks]
        params: {where: "amount IS NOT NULL OR page = 'home'"}
      - id: pairs
        sql: |
          SELECT a.user_id, count(*) AS pairs
          FROM paid a JOIN paid b USING (user_id) GROUP BY ALL
    outputs:
      pairs: {path: out/pairs.parquet}
"""


def test_a_step_read_twice_by_one_step_is_computed_once(tmp_path, capsys):
    # 'pairs' reads 'paid' twice: stored as a table (and counted) rather than computed twice.
    f = _write(tmp_path, SELF_JOIN)
    assert main(["run", str(f)]) == 0
    assert "step paid: 6 rows" in capsys.readouterr().out
    got = duckdb.sql(f"SELECT * FROM '{tmp_path}/out/pairs.parquet' ORDER BY ALL").fetchall()
    want = duckdb.sql(f"""
        WITH paid AS (SELECT * FROM read_csv('{DATA}/clicks.csv')
                      WHERE amount IS NOT NULL OR page = 'home')
        SELECT a.user_id, count(*) FROM paid a JOIN paid b USING (user_id)
        GROUP BY ALL ORDER BY ALL""").fetchall()
    assert got == want and got


def test_parquet_outputs_are_zstd_compressed(tmp_path, capsys):
    # As the README's outputs table says (at level 1, which the file does not record).
    f = _write(tmp_path, SELF_JOIN)
    assert main(["run", str(f)]) == 0
    codecs = duckdb.sql(f"SELECT DISTINCT compression FROM "
                        f"parquet_metadata('{tmp_path}/out/pairs.parquet')").fetchall()
    assert codecs == [("ZSTD",)]


def test_hugeint_is_written_to_parquet_exactly(tmp_path, capsys):
    # DuckDB writes HUGEINT to Parquet as DOUBLE: 18446744073709551615 read back as 1.8e19.
    f = _write(tmp_path, """\
        version: 1
        name: wide
        steps:
          - id: wide
            sql: |
              SELECT 18446744073709551615::HUGEINT AS big, -9007199254740993::HUGEINT AS neg,
                     ordered.sorted AS "order" FROM (SELECT 1 AS sorted) ordered
          - id: sorted
            pattern: sort
            inputs: [wide]
            params: {order_by: [big]}
        outputs:
          wide: {path: out/wide.parquet}
          sorted: {path: out/sorted.parquet}
        """)
    assert main(["run", str(f)]) == 0, capsys.readouterr().err
    for name in ("wide", "sorted"):
        rows = duckdb.sql(f"SELECT big::VARCHAR, neg::VARCHAR, typeof(big), \"order\" "
                          f"FROM '{tmp_path}/out/{name}.parquet'").fetchall()
        assert rows == [("18446744073709551615", "-9007199254740993", "DECIMAL(38,0)", 1)]


def test_hugeint_beyond_38_digits_is_refused_for_parquet_naming_the_column(tmp_path, capsys):
    f = _write(tmp_path, """\
        version: 1
        name: wide
        steps:
          - id: wide
            sql: SELECT 1 AS id, 170141183460469231731687303715884105727::HUGEINT AS "big one"
        outputs:
          wide: {path: out/wide.parquet}
        """)
    assert main(["run", str(f)]) == 1
    err = capsys.readouterr().err
    assert "column 'big one' holds 170141183460469231731687303715884105727, which has more " \
           "than 38 digits: Parquet has no exact type for it" in err
    assert "Traceback" not in err and not (tmp_path / "out" / "wide.parquet").exists()


EXPECTED = """\
    version: 1
    name: t
    sources:
      clicks: {path: '{DATA}/clicks.csv'}
    steps:
      - id: picked
        pattern: select
        inputs: [clicks]
        params: {columns: [user_id, amount]}
      - id: checked
        pattern: expect
        inputs: [picked]
        params: {checks: [{not_null: [user_id]}, {expression: "amount IS NULL OR amount > LIMIT_"}]}
    outputs:
      checked: {path: out/checked.parquet}
"""


@pytest.mark.parametrize("limit", [-1, 1000])
def test_only_what_checks_query_is_stored_as_a_table(tmp_path, capsys, limit):
    # expect's checks query its input: 'picked' becomes a table, counted once; 'checked' (a
    # plain copy of it) is streamed into its file instead of being stored a second time.
    f = _write(tmp_path, EXPECTED.replace("LIMIT_", str(limit)))
    code = main(["run", str(f)])
    out, err = capsys.readouterr()
    assert "step picked: 6 rows" in out
    if limit < 0:
        assert code == 0, err
        assert "step checked: streamed into its output" in out and "wrote checked: 6 rows" in out
    else:  # a failing check still stops the run before anything is written
        assert code == 1
        assert "check 'expression(amount IS NULL OR amount > 1000)' failed on" in err
        assert not (tmp_path / "out/checked.parquet").exists()


def test_cli_exit_codes(tmp_path, capsys):
    good = _write(tmp_path, PIPELINE)
    assert main(["validate", str(good)]) == 0
    assert main(["run", str(good), "--set", "nope=1"]) == 2
    assert "the pipeline has no param 'nope'" in capsys.readouterr().err
    # Invalid pipeline: 2. Failure while running (a cast that fails on the data): 1.
    bad = _write(tmp_path, PIPELINE.replace("min_day: 2024-01-01", "min_day: oops"), "bad.yaml")
    assert main(["run", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "step 'daily' failed" in err and "Traceback" not in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "pipeline file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ei:
        main(["run"])
    assert ei.value.code == 2
    assert main(["compile", str(good), "--dialect", "duckdbb"]) == 2
    assert "unknown dialect 'duckdbb'. Did you mean 'duckdb'?" in capsys.readouterr().err


def test_compile_golden_sql(tmp_path, capsys):
    f = _write(tmp_path, PIPELINE)
    assert main(["compile", str(f), "--step", "picked"]) == 0
    sql = capsys.readouterr().out
    assert sql == textwrap.dedent(f"""\
        WITH "clicks" AS (
          SELECT
            *
          FROM READ_CSV('{DATA}/clicks.csv')
        ), "paid" AS (
          SELECT
            *
          FROM "clicks"
          WHERE
            NOT amount IS NULL OR page = 'home'
        ), "picked" AS (
          SELECT
            "user_id",
            "ts",
            "amount"
          FROM "paid"
        )
        SELECT
          *
        FROM "picked"
        """)
    # The compiled query runs by itself and gives the step's rows.
    assert len(duckdb.sql(sql).fetchall()) == 6
    assert main(["compile", str(f), "--step", "picked", "--dialect", "spark"]) == 0
    assert "FROM `paid`" in capsys.readouterr().out


def test_preview_and_cli_preview_formats(tmp_path, capsys):
    f = _write(tmp_path, PIPELINE)
    res = api.preview(load(f), "daily", limit=2)
    assert res.row_count == 2 and len(res.rows) == 2
    assert [c for c, _ in res.columns] == ["user_id", "name", "day", "events", "amount"]
    assert not (tmp_path / "out").exists(), "preview must not write outputs"
    assert main(["preview", str(f), "picked", "--format", "json", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert '"row_count": 6' in out and '"user_id": 1' in out
    assert main(["preview", str(f), "picked", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "user_id,ts,amount"


def test_schema_known_without_running(tmp_path):
    p = plan(load(_write(tmp_path, PIPELINE)))
    assert [(c.name, c.type) for c in p.steps["daily"].columns] == [
        ("user_id", "BIGINT"), ("name", "VARCHAR"), ("day", "DATE"), ("events", "BIGINT"),
        ("amount", "DOUBLE")]


def test_preview_recomputes_only_the_edited_step(tmp_path):
    f = _write(tmp_path, PIPELINE)
    pipeline = load(f)
    with Previewer() as pv:
        pv.preview(plan(pipeline), "daily")
        assert pv.computed == ["clicks", "users", "paid", "picked", "daily"]
        pv.computed.clear()
        pv.preview(plan(pipeline), "daily")
        assert pv.computed == []  # everything cached
        pipeline.step("daily").sql = pipeline.step("daily").sql.replace("count(*)", "count(1)")
        res = pv.preview(plan(pipeline), "daily")
        assert pv.computed == ["daily"] and res.row_count == 2
        pv.computed.clear()
        pipeline.step("paid").params["where"] = "amount > 5"
        pv.preview(plan(pipeline), "daily")
        assert pv.computed == ["paid", "picked", "daily"]


def test_sample_preview_keeps_whole_keys(tmp_path):
    body = PIPELINE.replace("clicks: {path: '{DATA}/clicks.csv'}",
                            "clicks: {path: '{DATA}/clicks.csv', sample_key: [user_id]}")
    pipeline = load(_write(tmp_path, body))
    from builder.engines.preview import SampleSpec

    with Previewer() as pv:
        cols, rows = pv.fetch(plan(pipeline), "clicks", sample=SampleSpec(rows=3, seed=1))
        full = duckdb.sql(f"SELECT user_id, count(*) FROM read_csv('{DATA}/clicks.csv') "
                          "GROUP BY ALL").fetchall()
        per_user: dict[int, int] = {}
        for r in rows:
            per_user[r[0]] = per_user.get(r[0], 0) + 1
        assert len(rows) < 6
        for user, n in per_user.items():  # every sampled user has all of its rows
            assert (user, n) in full
        res = pv.preview(plan(pipeline), "daily", sample=SampleSpec(rows=3, seed=1))
        assert res.approximate


def test_sample_is_made_once_per_source_version_and_kept(tmp_path):
    """A new session's sampled preview reads the kept samples; a changed file is sampled again."""
    from builder.engines.preview import SampleSpec

    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    body = PIPELINE.replace("clicks: {path: '{DATA}/clicks.csv'}",
                            "clicks: {path: '{DATA}/clicks.csv', sample_key: [user_id]}")
    pipeline = load(_write(tmp_path, body.replace("{DATA}", str(data))))
    spec = SampleSpec(rows=3, seed=1)
    with Previewer() as pv:
        first = pv.fetch(plan(pipeline), "daily", sample=spec)
        assert sorted(pv.samples_made) == ["clicks", "users"]
    kept = sorted((tmp_path / "warehouse" / "cache" / "samples").glob("*.parquet"))
    assert [k.name.split("-")[0] for k in kept] == ["clicks", "users"]
    with Previewer() as pv:  # a new session: nothing cached in memory
        again = pv.fetch(plan(load(pipeline.path)), "daily", sample=spec)
        assert pv.samples_made == [] and pv.computed == ["clicks", "users", "paid", "picked",
                                                         "daily"]
        assert again == first
        # Full mode is exact: it never reads a sample.
        full = pv.fetch(plan(pipeline), "clicks")[1]
        assert len(full) == duckdb.sql(f"SELECT count(*) FROM '{data}/clicks.csv'").fetchall()[0][0]
    with open(data / "users.csv", "a", encoding="utf-8") as f:
        f.write("99,Zed,ZZ\n")
    os.utime(data / "users.csv", ns=(1, 1))
    with Previewer() as pv:
        pv.fetch(plan(load(pipeline.path)), "daily", sample=spec)
        assert pv.samples_made == ["users"]  # only the changed source is sampled again


KILL_PIPELINE = """\
    version: 1
    name: slow
    sources:
      clicks: {path: '{DATA}/clicks.csv'}
    steps:
      - id: big
        sql: SELECT c.*, r.range AS n FROM clicks c, range({N}) r
    outputs:
      big: {path: out/big.parquet}
"""


def test_killed_run_leaves_previous_output_intact(tmp_path):
    small = _write(tmp_path, KILL_PIPELINE.replace("{N}", "10"))
    assert main(["run", str(small)]) == 0
    target = tmp_path / "out" / "big.parquet"
    before = duckdb.sql(f"SELECT count(*) FROM '{target}'").fetchall()
    assert before == [(60,)]
    big = _write(tmp_path, KILL_PIPELINE.replace("{N}", "3000000"))
    # Kill it while it writes: once its temp output appears (or the step is running).
    kill_run_while_writing(big, target.parent, ".big.parquet.dockyard-tmp-*")
    assert duckdb.sql(f"SELECT count(*) FROM '{target}'").fetchall() == before
    # The next successful run replaces the output and clears the dead run's temp file.
    assert main(["run", str(small)]) == 0
    assert not list(target.parent.glob(".big.parquet.dockyard-tmp-*"))


def test_sorted_step_is_written_in_order(tmp_path):
    path = _write(tmp_path, """\
        version: 1
        name: sorted
        sources:
          clicks: {path: '{DATA}/clicks.csv'}
        steps:
          - id: many
            sql: SELECT hash(r.range) % 1000003 AS k, r.range AS i FROM clicks, range(50000) r
          - id: ordered
            pattern: sort
            inputs: [many]
            params: {order_by: [k, i desc]}
        outputs:
          ordered: {path: out/ordered.parquet}
        """)
    assert main(["run", str(path)]) == 0
    rows = duckdb.sql(f"SELECT k, i FROM '{tmp_path / 'out' / 'ordered.parquet'}'").fetchall()
    assert len(rows) == 300000
    assert rows == sorted(rows, key=lambda r: (r[0], -r[1]))


def test_secrets_come_from_the_environment_not_the_file(tmp_path, capsys, monkeypatch):
    from builder.pipeline.model import dump, load

    path = _write(tmp_path, """\
        version: 1
        name: secret
        params:
          salt: {env: DY_TEST_SALT}
        sources:
          users: {path: '{DATA}/users.csv'}
        steps:
          - id: hashed
            sql: SELECT user_id, sha256({{ salt }} || name) AS h FROM users
        outputs:
          hashed: {path: out/hashed.csv}
        """)
    monkeypatch.delenv("DY_TEST_SALT", raising=False)
    assert main(["validate", str(path)]) == 2
    assert "param 'salt' reads the environment variable 'DY_TEST_SALT', which is not set" in \
        capsys.readouterr().err
    monkeypatch.setenv("DY_TEST_SALT", "s3cr'et")
    assert main(["run", str(path)]) == 0
    got = duckdb.sql(f"SELECT h FROM '{tmp_path / 'out' / 'hashed.csv'}' ORDER BY user_id"
                     ).fetchall()[0][0]
    import hashlib

    assert got == hashlib.sha256(b"s3cr'etAnn").hexdigest()
    # The file keeps only the variable's name.
    assert "s3cr" not in dump(load(path)) and "{env: DY_TEST_SALT}" in dump(load(path))


def test_second_run_of_the_same_pipeline_refuses_while_the_first_runs(tmp_path, capsys):
    from builder.pipeline.model import load
    from builder.runner.lock import run_lock

    path = _write(tmp_path, PIPELINE)
    with run_lock(load(path)):
        assert main(["run", str(path)]) == 1
        err = capsys.readouterr().err
        assert "pipeline 't' is already running (pid " in err and "wait for it to finish" in err
    assert main(["run", str(path)]) == 0


def test_app_serves_localhost_only_by_default():
    from builder.cli.main import build_parser

    args = build_parser().parse_args(["ui"])
    assert args.address == "127.0.0.1"
    config = (Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text()
    assert 'address = "127.0.0.1"' in config


def test_duckdb_output_replaces_a_folder_left_by_spark(tmp_path):
    path = _write(tmp_path, KILL_PIPELINE.replace("{N}", "2"))
    target = tmp_path / "out" / "big.parquet"
    target.mkdir(parents=True)  # what a Spark run leaves: a folder of part files, marked
    (target / "part-00000.parquet").write_bytes(b"old")
    (target / "_DOCKYARD_OUTPUT").write_text('{"written_by": "dockyard"}')
    assert main(["run", str(path)]) == 0
    assert target.is_file() and duckdb.sql(f"SELECT count(*) FROM '{target}'").fetchall() == [(12,)]
    assert not list(target.parent.glob(".big.parquet.dockyard-tmp-*"))


def test_replacing_an_output_leaves_only_the_new_file(tmp_path):
    target = tmp_path / "out" / "big.parquet"
    for n in (10, 20, 30):
        assert main(["run", str(_write(tmp_path, KILL_PIPELINE.replace("{N}", str(n))))]) == 0
        assert duckdb.sql(f"SELECT count(*) FROM '{target}'").fetchall() == [(6 * n,)]
        assert sorted(p.name for p in target.parent.iterdir()) == ["big.parquet"]


def test_second_name_of_a_replaced_output_left_by_a_dead_run_is_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = _write(tmp_path, KILL_PIPELINE.replace("{N}", "2"))
    assert main(["run", str(path)]) == 0
    target = tmp_path / "out" / "big.parquet"
    stale = target.parent / f".big.parquet.dockyard-tmp-old-{dead.pid}"
    stale.write_bytes(b"the previous output, killed before it was deleted")
    assert main(["run", str(path)]) == 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.parquet"]


def test_a_run_database_reads_only_its_folders(tmp_path):
    import builder.engines.connection as engine

    con = engine.connect([str(tmp_path)])
    (tmp_path / "ok.csv").write_text("a\n1\n")
    assert con.execute(f"SELECT a FROM '{tmp_path / 'ok.csv'}'").fetchall() == [(1,)]
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"SELECT * FROM '{DATA / 'users.csv'}'")
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access=true")
    con.close()


def test_warehouse_opens_after_every_output_is_written(tmp_path, monkeypatch):
    """Not before: holding it during the queries would keep other runs out of the warehouse."""
    import builder.engines.duckdb as engine
    import builder.warehouse.store as warehouse

    events: list[str] = []
    real_write, real_database = engine.write_file, warehouse.database

    def write_file(*args: object, **kwargs: object) -> int:
        rows = real_write(*args, **kwargs)  # type: ignore[arg-type]
        events.append("written")
        return rows

    def database(*args: object, **kwargs: object) -> object:
        events.append("open")
        return real_database(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "write_file", write_file)
    monkeypatch.setattr(warehouse, "database", database)
    path = _write(tmp_path, PIPELINE)  # two outputs
    assert main(["run", str(path)]) == 0
    assert events == ["written", "written", "open"]
    assert [r["status"] for r in run_history(find_project(path))] == ["success"]


def test_run_that_fails_after_its_rows_are_written_is_recorded_as_failed(tmp_path, monkeypatch,
                                                                          capsys):
    """An output whose rows are written but cannot be synced to disk fails the run: the
    previous file stays, the failure is recorded, and the warehouse is closed afterwards."""
    from builder import fsio
    from builder.warehouse.store import database

    path = _write(tmp_path, KILL_PIPELINE.replace("{N}", "2"))
    assert main(["run", str(path)]) == 0
    target = tmp_path / "out" / "big.parquet"

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsio.os, "fsync", full_disk)
    assert main(["run", str(_write(tmp_path, KILL_PIPELINE.replace("{N}", "5")))]) == 1
    assert "output 'big': cannot write 'out/big.parquet': No space left on device." in \
        capsys.readouterr().err
    assert duckdb.sql(f"SELECT count(*) FROM '{target}'").fetchall() == [(12,)]
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.parquet"]
    runs = run_history(find_project(path))
    assert [r["status"] for r in runs] == ["failed", "success"]
    assert "No space left on device" in runs[0]["error"]
    with database(find_project(path)) as db:  # not left open by the failed run
        assert db.execute("SELECT count(*) FROM runs").fetchall() == [(2,)]


def test_warehouse_held_by_another_process_is_waited_for_then_a_clear_error(tmp_path,
                                                                             monkeypatch):
    """A row written in the warehouse lands in the file; while a process outside Dockyard holds
    the file, opening it waits, then gives up with an error naming that process."""
    import subprocess
    import sys

    import builder.warehouse.store as warehouse
    from builder.errors import ExecutionError
    from builder.pipeline.project import Project

    project = Project(root=tmp_path, warehouse=tmp_path / "warehouse")
    with warehouse.database(project) as con:
        con.execute("INSERT INTO runs (run_id, status) VALUES ('r1', 'success')")
    with warehouse.database(project) as db:
        assert db.execute("SELECT run_id, status FROM runs").fetchall() == [("r1", "success")]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); sys.stdin.read()", str(project.database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        monkeypatch.setenv("DOCKYARD_WAREHOUSE_WAIT", "0.3")
        with pytest.raises(ExecutionError, match=rf"is in use by another process \(pid "
                                                 rf"{holder.pid}\) for more than 0.3 s"):
            with warehouse.database(project):
                pass
    finally:
        holder.communicate("")
    assert holder.returncode == 0


def test_run_history_problem_is_a_warning(tmp_path, monkeypatch, capsys):
    import builder.warehouse.store as warehouse
    from builder.errors import ExecutionError

    def read_only(*args: object, **kwargs: object) -> None:
        raise ExecutionError("the warehouse 'w' cannot be written: read-only file system.")

    monkeypatch.setattr(warehouse, "database", read_only)
    path = _write(tmp_path, KILL_PIPELINE.replace("{N}", "2"))
    assert main(["run", str(path)]) == 0
    assert "dockyard: warning: run history not recorded: the warehouse 'w' cannot be written" \
        in capsys.readouterr().err
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'out' / 'big.parquet'}'"
                      ).fetchall() == [(12,)]
