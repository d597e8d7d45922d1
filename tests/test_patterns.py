"""Every pattern case file, run through the real pipeline path on DuckDB (see pattern_cases)."""

from __future__ import annotations

import re

import pytest

from builder.engines.duckdb import DuckDBEngine
from builder.engines.preview import Previewer
from builder.errors import ExecutionError
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec
from patterns import PATTERNS
from patterns._regex import unportable
from tests.pattern_cases import STEP_ID, Case, assert_rows, case_pipeline, load_cases

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pattern_case(case: Case, tmp_path):
    pipeline = case_pipeline(case, tmp_path)
    p = plan(pipeline)
    errors = [str(e) for e in p.errors]
    if case.error:
        assert any(case.error in e for e in errors), f"expected error '{case.error}', got {errors}"
        return
    assert not errors, errors
    if case.sql:
        got = p.steps[STEP_ID].query.sql(dialect="duckdb", pretty=True)
        assert got.strip() == case.sql.strip(), f"golden SQL differs:\n{got}"
    if case.error_run:
        with pytest.raises(ExecutionError) as ei:
            DuckDBEngine().run(RunSpec.from_plan(p))
        assert case.error_run in str(ei.value)
        return
    with Previewer() as pv:
        if case.expected is not None:
            cols, rows = pv.fetch(p, STEP_ID)
            assert_rows([c for c, _ in cols], [list(r) for r in rows], case.expected, case.id)
            # The propagated schema (known without running) is what the engine produced.
            assert [(c.name, c.type) for c in p.steps[STEP_ID].columns] == cols
            if "types" in case.expected:  # where a type is the point (e.g. no DOUBLE rounding)
                assert [t for _, t in cols] == case.expected["types"], cols
        if case.expected_rejected is not None:
            cols, rows = pv.fetch(p, f"{STEP_ID}.rejected")
            assert_rows([c for c, _ in cols], [list(r) for r in rows], case.expected_rejected,
                        case.id + " (rejected)")


def test_every_pattern_has_cases_and_golden_sql():
    by_pattern: dict[str, list[Case]] = {}
    for c in CASES:
        by_pattern.setdefault(c.pattern, []).append(c)
    for pat in PATTERNS:
        cases = by_pattern.get(pat.name)
        assert cases, f"pattern '{pat.name}' has no case file tests/fixtures/patterns/{pat.name}.yaml"
        assert any(c.sql for c in cases), f"pattern '{pat.name}' has no golden SQL case"
        assert any(c.error for c in cases), f"pattern '{pat.name}' has no invalid-param case"


def test_pivot_reads_its_values_from_an_upstream_step_and_follows_the_data(tmp_path):
    """Values left out are read while planning from the computed input (here a filter step
    over a CSV source), and a changed file gives the new columns on the next plan."""
    import os

    from builder.pipeline.model import Output, Pipeline, Source, Step

    data = tmp_path / "sales.csv"
    data.write_text("region,quarter,amount\nEU,Q2,7\nEU,Q1,10\nUS,Q9,1\n", encoding="utf-8")
    steps = [Step(id="recent", pattern="filter", params={"where": "quarter <> 'Q9'"},
                  inputs=["sales"]),
             Step(id="wide", pattern="pivot", inputs=["recent"],
                  params={"index": ["region"], "column": "quarter", "value": "amount"})]
    pipeline = Pipeline(name="p", sources={"sales": Source(id="sales", path=str(data))},
                        steps=steps, outputs={"wide": Output(step="wide", path=str(
                            tmp_path / "out.parquet"))}, path=tmp_path / "p.yaml")
    first = plan(pipeline)
    assert not first.errors, first.errors
    assert [c.name for c in first.steps["wide"].columns] == ["region", "Q1", "Q2"]

    data.write_text("region,quarter,amount\nEU,Q3,7\nUS,Q4,10\n", encoding="utf-8")
    os.utime(data, ns=(1, 1))  # a new identity even within the file system's time resolution
    second = plan(pipeline)
    assert [c.name for c in second.steps["wide"].columns] == ["region", "Q3", "Q4"]
    with Previewer() as pv:
        cols, rows = pv.fetch(second, "wide")
    assert sorted(tuple(r) for r in rows) == [("EU", 7, None), ("US", None, 10)]


# The syntax regex_extract refuses, read from the pattern's text (no private 're' parser): each
# construct, and text that only looks like one (escaped, in a class, a comment, a literal brace).
LOOKAHEAD = "lookahead/lookbehind '(?=...)', '(?<=...)'"
NEGATIVE = "negative lookahead/lookbehind '(?!...)', '(?<!...)'"
BACKREF = "backreferences like '\\1'"
POSSESSIVE = "possessive quantifiers like '*+'"


@pytest.mark.parametrize(("pattern", "what"), [
    (r"a(?=b)", LOOKAHEAD), (r"a(?<=b)", LOOKAHEAD), (r"a(?!b)", NEGATIVE),
    (r"(?<!a)b", NEGATIVE), (r"(a)\1", BACKREF), (r"(?>ab)", "atomic groups '(?>...)'"),
    (r"(a)?(?(1)b|c)", "conditional groups '(?(1)...)'"), (r"a*+", POSSESSIVE),
    (r"a{2}+", POSSESSIVE), (r"(a)++", POSSESSIVE), (r"ab\Z", "'\\Z' (use '$')"),
    # The construct that starts first is named: here the possessive repeat of the group.
    (r"(?=a)++", POSSESSIVE),
    (r"\(?=x\)", None), (r"[(?=]", None), (r"[]\1]", None), (r"\141", None), (r"\0", None),
    (r"(?#(?=x)a", None), (r"(?#\)(?=)a", None), ("(?x)a # (?=b)\nc", None),
    ("(?x:a # \\1\n)b", None), (r"x}+", None), (r"a{}+", None), (r"a{,2}", None),
    (r"(?:a)+", None), (r"(?i)ab", None),
])
def test_regex_extract_names_the_unportable_syntax(pattern: str, what: str | None):
    compiled = re.compile(pattern)
    assert unportable(pattern, bool(compiled.flags & re.VERBOSE)) == what
