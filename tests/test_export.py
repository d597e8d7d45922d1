"""`dockyard export`: the Airflow DAG, Dagster definitions and GitHub Actions workflow it writes
load in the real tools and run the real pipelines in dependency order (issue 23, item 2).

Airflow and Dagster configure logging and warnings on import, so they load in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml

from builder.cli.export import MARKER, check_cron, export, tasks, write
from builder.cli.main import main
from builder.errors import ConfigError, GraphError
from builder.pipeline.project import WAREHOUSE_ENV

ROOT = Path(__file__).resolve().parent.parent

PUBLISH = """\
sources:
  pay: {path: ../data/pay.csv}
steps:
  - id: totals
    sql: SELECT user_id, sum(amount) AS total FROM pay GROUP BY 1
outputs:
  totals: {staging: user_totals}
"""

COUNT = """\
sources:
  pay: {path: ../data/pay.csv}
steps:
  - id: n
    sql: SELECT user_id, count(*) AS payments FROM pay GROUP BY 1
outputs:
  n: {staging: user_counts}
"""

CONSUME = """\
sources:
  t: {staging: user_totals}
  c: {staging: user_counts}
steps:
  - id: big
    sql: SELECT t.user_id, total, payments FROM t JOIN c USING (user_id) WHERE total > 5
outputs:
  big: {path: ../out/big.csv}
"""


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(WAREHOUSE_ENV, raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pay.csv").write_text("user_id,amount\n1,5\n2,7\n1,3\n3,1\n")
    (tmp_path / "saved_pipelines").mkdir()
    for name, body in [("publish", PUBLISH), ("count", COUNT), ("consume", CONSUME)]:
        (tmp_path / "saved_pipelines" / f"{name}.yaml").write_text(
            f"version: 1\nname: {name}\n" + body)
    return tmp_path


def _bin(tmp_path: Path) -> Path:
    """A folder with a `dockyard` that runs this checkout's code."""
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "dockyard"
    exe.write_text(f"#!/bin/sh\nPYTHONPATH='{ROOT}' exec '{sys.executable}' -m builder.cli \"$@\"\n")
    exe.chmod(0o755)
    return folder


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != WAREHOUSE_ENV}
    env["PATH"] = f"{_bin(tmp_path)}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def _assert_ran(root: Path) -> None:
    rows = duckdb.sql(f"SELECT * FROM read_csv('{root}/out/big.csv') ORDER BY 1").fetchall()
    assert rows == [(1, 8, 2), (2, 7, 1)]


def test_tasks_follow_the_staging_tables_and_include_upstream_producers(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    ts = tasks([root / "saved_pipelines" / "consume.yaml"])
    assert [(t.name, t.pipeline, t.upstream) for t in ts] == [
        ("count", "saved_pipelines/count.yaml", ()),
        ("publish", "saved_pipelines/publish.yaml", ()),
        ("consume", "saved_pipelines/consume.yaml", ("count", "publish")),
    ]
    assert all(t.root == root.resolve() for t in ts)
    # A folder means every pipeline in it: the same graph.
    assert tasks([root / "saved_pipelines"]) == ts


def test_airflow_dag_imports_in_a_dagbag(tmp_path, monkeypatch):
    pytest.importorskip("airflow", reason="optional extra 'orchestrators'")
    root = _project(tmp_path, monkeypatch)
    dags = tmp_path / "dags"
    dags.mkdir()
    assert main(["export", str(root / "saved_pipelines"), "--to", "airflow", "--schedule",
                 "15 2 * * *", "--output", str(dags / "dockyard_dag.py")]) == 0
    script = textwrap.dedent(f"""
        import json
        from airflow.models import DagBag
        bag = DagBag(dag_folder={str(dags)!r})  # examples: off by AIRFLOW__CORE__LOAD_EXAMPLES
        dag = bag.dags.get("dockyard_{root.name}")  # get_dag() would need a metadata DB
        print(json.dumps({{
            "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
            "dags": sorted(bag.dag_ids),
            "tasks": {{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}} if dag else {{}},
            "commands": {{t.task_id: [t.bash_command, t.cwd] for t in dag.tasks}} if dag else {{}},
            "schedule": dag.schedule if dag else None,
            "catchup": dag.catchup if dag else None,
        }}))
    """)
    env = _env(tmp_path)
    home = tmp_path / "airflow"
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__UNIT_TEST_MODE="True",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["errors"] == {}
    assert got["dags"] == [f"dockyard_{root.name}"]
    assert got["tasks"] == {"consume": ["count", "publish"], "count": [], "publish": []}
    assert got["commands"]["consume"] == ["dockyard run saved_pipelines/consume.yaml",
                                          str(root.resolve())]
    assert got["schedule"] == "15 2 * * *"
    assert got["catchup"] is False


def test_dagster_definitions_load_and_the_job_runs_the_pipelines(tmp_path, monkeypatch):
    pytest.importorskip("dagster", reason="optional extra 'orchestrators'")
    root = _project(tmp_path, monkeypatch)
    module = tmp_path / "dockyard_defs.py"
    write(export([root / "saved_pipelines" / "consume.yaml"], "dagster", "15 2 * * *",
                 name="nightly"), module)
    script = textwrap.dedent(f"""
        import importlib.util, json
        spec = importlib.util.spec_from_file_location("dockyard_defs", {str(module)!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        job = mod.defs.get_job_def("nightly")
        deps = {{}}
        for node in job.graph.nodes:
            deps[node.name] = sorted(
                up.node.name for ups in job.graph.dependency_structure
                .input_to_upstream_outputs_for_node(node.name).values() for up in ups)
        schedules = [(s.job_name, s.cron_schedule) for s in mod.defs.schedules]
        result = job.execute_in_process()
        print(json.dumps({{"deps": deps, "schedules": schedules, "success": result.success}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["deps"] == {"consume": ["count", "publish"], "count": [], "publish": []}
    assert got["schedules"] == [["nightly", "15 2 * * *"]]
    assert got["success"] is True
    _assert_ran(root)


def test_github_workflow_has_jobs_needs_and_cron_and_its_commands_run(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    out = tmp_path / ".github" / "workflows" / "dockyard.yml"
    assert main(["export", str(root / "saved_pipelines" / "consume.yaml"), "--to",
                 "github-actions", "--schedule", "15 2 * * *", "-o", str(out)]) == 0
    text = out.read_text()
    assert MARKER in text.splitlines()[0]
    wf = yaml.safe_load(text)
    # PyYAML reads the key 'on' as True (YAML 1.1); GitHub reads it as 'on'.
    triggers = wf.get("on", wf.get(True))
    assert triggers["schedule"] == [{"cron": "15 2 * * *"}]
    assert "workflow_dispatch" in triggers
    assert list(wf["jobs"]) == ["count", "publish", "consume"]
    assert wf["jobs"]["consume"]["needs"] == ["count", "publish"]
    assert "needs" not in wf["jobs"]["publish"]
    uses = [s.get("uses") for s in wf["jobs"]["consume"]["steps"]]
    assert uses[:2] == ["actions/checkout@v4", "actions/setup-python@v5"]
    # Run each job's dockyard steps as the runner would (sh -c in its working directory), in
    # the order the needs allow; the jobs share one checkout here, as artifacts make them do.
    env = _env(tmp_path)
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if str(step.get("run", "")).startswith("dockyard "):
                done = subprocess.run(["sh", "-c", step["run"]], cwd=root / step["working-directory"],
                                      env=env, capture_output=True, text=True,
                                      timeout=120)
                assert done.returncode == 0, done.stderr
    _assert_ran(root)


def test_the_airflow_file_names_every_task_and_dependency(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    text = export([root / "saved_pipelines"], "airflow", "*/30 1-5 * jan-mar mon,fri")
    assert 'schedule="*/30 1-5 * jan-mar mon,fri"' in text
    assert "catchup=False" in text
    assert "    count >> consume\n    publish >> consume\n" in text
    compile(text, "dag.py", "exec")


@pytest.mark.parametrize(("expr", "message"), [
    ("15 2 * *", "expected 5 cron fields, got 4"),
    ("15 25 * * *", "hour field '25' has '25'; valid values are 0-23"),
    ("*/0 * * * *", "minute field '*/0' has step '0'"),
    ("0 6 * foo *", "month field 'foo' has 'foo'"),
])
def test_a_bad_schedule_is_a_one_line_error(expr, message, capsys, tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        check_cron(expr)
    assert main(["export", str(root / "saved_pipelines"), "--to", "dagster",
                 "--schedule", expr]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_output_refuses_to_overwrite_a_file_dockyard_did_not_write(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path, monkeypatch)
    mine = tmp_path / "dag.py"
    mine.write_text("# my own DAG\n")
    assert main(["export", str(root / "saved_pipelines"), "--to", "airflow", "-o", str(mine)]) == 2
    assert "exists and was not generated by 'dockyard export'" in capsys.readouterr().err
    assert mine.read_text() == "# my own DAG\n"
    generated = tmp_path / "gen.py"
    assert main(["export", str(root / "saved_pipelines"), "--to", "airflow", "-o",
                 str(generated)]) == 0
    assert main(["export", str(root / "saved_pipelines"), "--to", "airflow", "--schedule",
                 "0 1 * * *", "-o", str(generated)]) == 0  # its own file: re-exported
    assert 'schedule="0 1 * * *"' in generated.read_text()


def test_a_cycle_through_staging_tables_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path, monkeypatch)
    (root / "saved_pipelines" / "publish.yaml").write_text(
        "version: 1\nname: publish\n" + PUBLISH.replace("pay: {path: ../data/pay.csv}",
                                                         "pay: {staging: big_users}"))
    (root / "saved_pipelines" / "consume.yaml").write_text(
        "version: 1\nname: consume\n" + CONSUME.replace("{path: ../out/big.csv}",
                                                         "{staging: big_users}"))
    with pytest.raises(GraphError, match="cycle through staging tables: "):
        tasks([root / "saved_pipelines"])
    assert main(["export", str(root / "saved_pipelines"), "--to", "airflow"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "publish -> consume -> publish" in err or "consume -> publish -> consume" in err


def test_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.yaml"), "--to", "airflow"]) == 2
    assert "no such pipeline file or folder" in capsys.readouterr().err


def test_task_names_that_would_shadow_the_generated_code_are_renamed(tmp_path, monkeypatch):
    root = _project(tmp_path, monkeypatch)
    (root / "saved_pipelines" / "publish.yaml").rename(root / "saved_pipelines" / "dag.yaml")
    (root / "saved_pipelines" / "count.yaml").rename(root / "saved_pipelines" / "2-count.yaml")
    ts = tasks([root / "saved_pipelines"])
    assert [(t.name, t.upstream) for t in ts] == [
        ("p_2_count", ()), ("dag_2", ()), ("consume", ("dag_2", "p_2_count"))]
    text = export([root / "saved_pipelines"], "airflow")
    assert "    dag_2 >> consume\n" in text
    compile(text, "dag.py", "exec")
