"""Every broken pipeline under fixtures/pipelines/invalid/ reports its exact message.

Each fixture's first line is ``# expect: MESSAGE`` with ``{file}`` standing for the fixture's path
and ``{dir}`` for the resolved data folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import PipelineError
from builder.pipeline.model import load
from builder.plan.compiler import plan

INVALID = Path(__file__).parent / "fixtures" / "pipelines" / "invalid"
FILES = sorted(INVALID.glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks '# expect:'"
    data_dir = (path.parent.parent.parent / "data").resolve()
    return first[len("# expect: "):].replace("{file}", str(path)).replace("{dir}", str(data_dir))


def _problems(path: Path) -> list[str]:
    try:
        p = plan(load(path))
    except PipelineError as e:
        return [str(x) for x in e.problems]
    return [str(x) for x in p.errors]


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_invalid_pipeline_reports_exact_message(path: Path):
    problems = _problems(path)
    assert _expected(path) in problems, "\n".join(problems)


@pytest.mark.parametrize("path", FILES[:6], ids=[f.stem for f in FILES[:6]])
def test_cli_validate_exit_code_2_and_one_line_errors(path: Path, capsys):
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert _expected(path) in err.splitlines()
    assert "Traceback" not in err


def test_all_problems_reported_together(tmp_path):
    f = tmp_path / "many.yaml"
    f.write_text(
        "version: 1\nname: many\nsources:\n  clicks: {path: x.csv}\nsteps:\n"
        "  - id: a\n    pattern: nope\n    inputs: [clicks]\n"
        "  - id: b\n    sql: SELECT * FROM zzz\n"
        "  - id: c\n    sql: DROP TABLE clicks\n", encoding="utf-8")
    problems = _problems(f)
    assert any("unknown pattern 'nope'" in p for p in problems)
    assert any("table 'zzz' is not a source or step" in p for p in problems)
    assert any("DROP statements are not allowed" in p for p in problems)
    assert any("file 'x.csv' not found" in p for p in problems)


def test_unused_step_is_a_warning_not_an_error(tmp_path):
    data = (Path(__file__).parent / "fixtures" / "data" / "clicks.csv").resolve()
    f = tmp_path / "p.yaml"
    f.write_text(
        f"version: 1\nname: w\nsources:\n  clicks: {{path: '{data}'}}\nsteps:\n"
        "  - id: used\n    sql: SELECT * FROM clicks\n"
        "  - id: unused\n    sql: SELECT user_id FROM clicks\n"
        f"outputs:\n  used: {{path: '{tmp_path}/o.parquet'}}\n", encoding="utf-8")
    p = plan(load(f))
    assert not p.errors
    assert [str(w) for w in p.warnings] == [
        f"{f}:8 step 'unused': warning: feeds no output: it is previewable but "
        "'dockyard run' skips it."]
