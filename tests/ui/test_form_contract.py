"""Forms write exactly the documented YAML keys (issue 20): every pattern's form, drawn over
its documented example, changes nothing, and its tables use the keys `dockyard patterns
--format json` documents (``as``, never Python's ``as_``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.ui.forms import field_specs, items_to_rows, rows_to_items, table_keys
from patterns import PATTERNS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def documented() -> dict[str, dict[str, dict]]:
    """pattern -> param -> its row in ``dockyard patterns --format json`` (the contract)."""
    out = subprocess.run([sys.executable, "-m", "builder.cli", "patterns", "--format", "json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return {p["name"]: {r["name"]: r for r in p["params"]} for p in json.loads(out.stdout)}


def _form_app(name: str, params: dict) -> None:
    import copy

    import streamlit as st

    from builder.pipeline.model import Step
    from builder.plan.types import ColumnInfo
    from builder.ui import forms
    from patterns import PATTERNS

    class FakePlan:
        problems: list = []

        def schema(self, node):
            return (ColumnInfo("user_id", "BIGINT"), ColumnInfo("amount", "DOUBLE"),
                    ColumnInfo("ts", "TIMESTAMP"))

    if "step" not in st.session_state:
        st.session_state["step"] = Step(id="s", pattern=name, inputs=["a", "b"],
                                        params=copy.deepcopy(params))
    forms.param_form(PATTERNS.get(name), st.session_state["step"], FakePlan(), ["a", "b"])


def _example(name: str) -> dict:
    return json.loads(json.dumps(PATTERNS.get(name).example or {}, default=str))


@pytest.mark.parametrize("name", [p.name for p in PATTERNS])
def test_form_over_the_example_keeps_it_and_shows_documented_keys(name, documented):
    example = _example(name)
    at = AppTest.from_function(_form_app, args=(name, example), default_timeout=30).run()
    assert not at.exception, at.exception
    at.run()
    assert at.session_state["step"].params == example  # drawing the form writes nothing
    assert set(example) <= set(documented[name])
    maps = [s.name for s in field_specs(PATTERNS.get(name).params)
            if s.kind in ("sql_map", "column_map")]
    for table in at.get("data_editor"):
        columns = list(table.value.columns)
        if columns == ["name", "value"] and maps:
            continue  # a {name: value} mapping's editor: its rows are the mapping's keys
        owners = [r for r in documented[name].values()
                  if r.get("keys") and set(columns) <= set(r["keys"])]
        assert owners, f"{name}: table columns {columns} are not documented keys"
    for m in at.markdown:
        assert "***" not in m.value and " **" not in m.value.split("\n")[0], m.value


@pytest.mark.parametrize("name", [p.name for p in PATTERNS
                                  if any(s.kind == "rows" for s in field_specs(p.params))])
def test_item_tables_round_trip_to_the_documented_keys(name, documented):
    example = _example(name)
    for spec in field_specs(PATTERNS.get(name).params):
        if spec.kind != "rows":
            continue
        assert spec.row_model is not None
        assert table_keys(spec.row_model, [], more=True) == documented[name][spec.name]["keys"]
        items = example.get(spec.name, [])
        keys = table_keys(spec.row_model, items, more=True)
        assert rows_to_items(spec.row_model, items_to_rows(items, keys)) == items
        for item in items:
            spec.row_model.model_validate(item)


def test_aggregate_table_writes_as_and_hides_separator_until_used():
    from patterns.aggregate import Aggregation

    assert table_keys(Aggregation, []) == ["function", "column", "as"]
    assert "separator" in table_keys(Aggregation, [{"function": "string_agg", "column": "x",
                                                    "separator": "; "}])
    rows = [{"function": "string_agg", "column": "page", "as": "pages", "separator": ","},
            {"function": "count", "column": None, "as": None, "separator": "|"}]
    assert rows_to_items(Aggregation, rows) == [
        {"function": "string_agg", "column": "page", "as": "pages"},
        {"function": "count", "separator": "|"}]
    at = AppTest.from_function(_form_app, args=("aggregate", _example("aggregate")),
                               default_timeout=30).run()
    table = at.get("data_editor")[0]
    assert list(table.value.columns) == ["function", "column", "as"]
    assert list(table.value["as"]) == ["events", "revenue"]
    next(c for c in at.checkbox if c.label == "More columns: separator").check().run()
    assert list(at.get("data_editor")[0].value.columns) == ["function", "column", "as",
                                                            "separator"]
    assert any(m.value.startswith("**aggregations** \\*") for m in at.markdown)
