"""Meta-tests: the pattern registry, its documentation and the generated reference page."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from builder.cli.docs import DOC_PATH, patterns_markdown
from builder.cli.main import main
from patterns import PATTERNS
from patterns.base import Pattern, PatternParams, Registry
from patterns.filter import PATTERN as FILTER

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
