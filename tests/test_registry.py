"""Meta-tests: the pattern registry, its documentation and the generated reference page."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, ValidationError
from sqlglot import exp

from builder.cli.docs import DOC_PATH, patterns_markdown
from builder.cli.main import main
from builder.pipeline.model import load
from builder.plan.compiler import plan
from patterns import PATTERNS
from patterns.base import CAPABILITIES, BuildContext, Built, Pattern, RejectedRows
from patterns.fields import PatternParams
from patterns.filter import PATTERN as FILTER
from patterns.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "fixtures" / "patterns"


@pytest.mark.parametrize("pattern", list(PATTERNS), ids=PATTERNS.names())
def test_every_pattern_is_complete(pattern: Pattern):
    module = importlib.import_module(f"patterns.{pattern.name}")
    assert module.PATTERN is pattern, "module must be named after its pattern"
    assert pattern.doc and len(pattern.help.splitlines()) >= 2, "docstring needs a body"
    for name, field in pattern.params.model_fields.items():
        assert field.description, f"param '{name}' has no description"
    assert (CASES / f"{pattern.name}.yaml").exists()
    assert len(pattern.keywords) >= 3, "keywords: the words users search the palette with"


def test_registry_refuses_duplicates_and_undocumented_patterns():
    with pytest.raises(ValueError, match="registered twice"):
        Registry([FILTER, FILTER])

    class P(PatternParams):
        pass

    with pytest.raises(ValueError, match="has no docstring"):
        Pattern(name="x", category="Quality", arity=1, params=P, build=FILTER.build, doc="",
                example={})
    with pytest.raises(ValueError, match="its example does not validate"):
        Pattern(name="x", category="Quality", arity=1, params=FILTER.params,
                build=FILTER.build, doc="Doc.", example={"nope": 1})


def test_reference_page_is_up_to_date():
    current = (ROOT / DOC_PATH).read_text(encoding="utf-8")
    assert current == patterns_markdown(), (
        "docs/patterns.md is out of date: run 'python -m builder.cli.docs'")


def test_cli_lists_every_pattern(capsys):
    assert main(["patterns", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed] == PATTERNS.names()
    filt = next(p for p in listed if p["name"] == "filter")
    assert filt["params"][0]["name"] == "where" and filt["params"][0]["kind"] == "sql"
    assert main(["patterns"]) == 0
    table = capsys.readouterr().out
    for name in PATTERNS.names():
        assert f"  {name} " in table


@pytest.mark.parametrize("name", ["case_map", "regex_extract", "time_bucket", "unnest",
                                  "aggregate", "window"])
def test_every_as_param_refuses_a_blank_name_and_keeps_a_given_one(name: str):
    pattern = PATTERNS.get(name)
    example = json.loads(json.dumps(pattern.example))
    # 'as' of the pattern itself, or of its first function (aggregations, functions)
    holder = next((v[0] for v in example.values() if isinstance(v, list) and v
                   and isinstance(v[0], dict) and "as" in v[0]), example)
    given = holder["as"]
    params = pattern.params.model_validate(example)
    assert given in json.dumps(params.model_dump(by_alias=True))
    holder["as"] = "  "
    with pytest.raises(ValidationError, match="the column name is empty; leave 'as' out"):
        pattern.params.model_validate(example)


# ---- what the planner asks the registry instead of naming patterns ------------------------

class _AuditParams(PatternParams):
    on_fail: Literal["error", "quarantine"] = Field(
        "error", description="quarantine sets the rows without an amount aside.")


def _audit_build(params: _AuditParams, ctx: BuildContext) -> Built:
    rows = exp.select(exp.Star()).from_(ctx.inputs[0].table())
    kept = rows.where(exp.column("amount", quoted=True).is_(exp.null()).not_())
    rejected = rows.where(exp.column("amount", quoted=True).is_(exp.null()))
    return Built(query=kept, rejected=rejected)


AUDIT = Pattern(name="audit", category="Quality", arity="n", params=_AuditParams,
                build=_audit_build, doc="Audit rows.\n\nSets rows without an amount aside.",
                example={}, rejected_rows=RejectedRows(param="on_fail", value="quarantine"),
                repeated_inputs=True)


def _audit_pipeline(tmp_path: Path, on_fail: str, reader: str) -> Path:
    clicks = (ROOT / "tests" / "fixtures" / "data" / "clicks.csv").resolve()
    f = tmp_path / "audit.yaml"
    f.write_text(
        f"version: 1\nname: audit\nsources:\n  clicks: {{path: '{clicks}'}}\nsteps:\n"
        f"  - id: a\n    pattern: audit\n    inputs: [clicks, clicks]\n"
        f"    params: {{on_fail: {on_fail}}}\n"
        f"  - id: r\n{reader}", encoding="utf-8")
    return f


def test_a_pattern_declares_its_side_output_and_repeated_inputs(tmp_path):
    registry = Registry([AUDIT, FILTER])
    sql_reader = "    sql: SELECT * FROM \"a.rejected\"\n"
    p = plan(load(_audit_pipeline(tmp_path, "quarantine", sql_reader)), registry)
    assert p.errors == []  # the input listed twice is allowed: the pattern says so
    assert p.side_nodes == {"a.rejected": "a"} and p.steps["r"].inputs == ["a.rejected"]
    assert [c.name for c in p.schema("a.rejected") or ()] == ["user_id", "ts", "page", "amount"]
    # Without the param value it declares, there is no side output, and the hint says which.
    filter_reader = ("    pattern: filter\n    inputs: [a.rejected]\n"
                     "    params: {where: 'amount > 0'}\n")
    p = plan(load(_audit_pipeline(tmp_path, "error", filter_reader)), registry)
    assert [x.message for x in p.errors] == [
        "input 'a.rejected' is not a source or step. Only 'audit' steps with on_fail: "
        "quarantine have rejected rows."]
    # A pattern that does not declare repeated inputs refuses them.
    plain = Pattern(name="audit", category="Quality", arity="n", params=_AuditParams,
                    build=_audit_build, doc=AUDIT.doc, example={})
    p = plan(load(_audit_pipeline(tmp_path, "error", "    sql: SELECT 1 AS x\n")),
             Registry([plain]))
    assert [x.message for x in p.errors] == ["input 'clicks' is listed twice."]


def test_every_capability_the_catalog_uses_is_declared_by_its_pattern():
    for capability, name in PATTERNS.capabilities().items():
        assert capability in CAPABILITIES
        assert PATTERNS.provider(capability).name == name
    declared = {c: p.name for p in PATTERNS for c in p.provides}
    assert declared == PATTERNS.capabilities()
    assert set(declared) == set(CAPABILITIES)


def test_capabilities_and_side_outputs_are_checked_when_declared():
    with pytest.raises(ValueError, match="unknown capability 'chekcs'. Did you mean 'checks'"):
        Pattern(name="x", category="Quality", arity=1, params=_AuditParams,
                build=_audit_build, doc="Doc.", example={}, provides=("chekcs",))
    with pytest.raises(ValueError, match="rejected_rows names param 'mode'"):
        Pattern(name="x", category="Quality", arity=1, params=_AuditParams,
                build=_audit_build, doc="Doc.", example={},
                rejected_rows=RejectedRows(param="mode", value="quarantine"))
    with pytest.raises(ValueError, match="pattern 'filter' is registered for the capability "
                                         "'checks' but does not declare it"):
        Registry([FILTER], providers={"checks": "filter"}).provider("checks")
    with pytest.raises(ValueError, match="capability 'checks': pattern 'expect' is not "
                                         "registered"):
        Registry([FILTER], providers={"checks": "expect"})
