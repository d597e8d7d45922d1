"""Forms generated from param models: every field type gets a working widget."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from streamlit.testing.v1 import AppTest

from builder.ui.forms import field_specs
from patterns.fields import (
    OrderItem,
    PatternParams,
    column_field,
    column_map_field,
    columns_field,
    order_by_field,
    sql_field,
    sql_map_field,
)


class Agg(BaseModel):
    column: str = column_field("Column to aggregate.")
    fn: Literal["sum", "count", "avg"] = "sum"
    alias: str | None = None


class Everything(PatternParams):
    key: str = column_field("Key column.")
    extra: str | None = column_field("Optional column.", default=None)
    keep: list[str] = columns_field("Columns to keep.")
    how: Literal["inner", "left"] = "inner"
    strict: bool = False
    limit: int = 10
    ratio: float | None = None
    label: str = "x"
    tags: list[str] = []
    where: str = sql_field("Condition.", default="TRUE")
    compute: dict[str, str] = sql_map_field("New columns.", default={})
    renames: dict[str, str] = column_map_field("Renames.", default={})
    order_by: list[OrderItem] = order_by_field("Order.", default=[])
    aggregations: list[Agg] = []
    nested: dict[str, list[int]] = {}


def test_field_specs_pick_a_widget_per_type():
    kinds = {s.name: s.kind for s in field_specs(Everything)}
    assert kinds == {
        "key": "column", "extra": "column", "keep": "columns", "how": "choice",
        "strict": "bool", "limit": "int", "ratio": "float", "label": "text",
        "tags": "text_list", "where": "sql", "compute": "sql_map", "renames": "column_map",
        "order_by": "order_by", "aggregations": "rows", "nested": "yaml"}
    specs = {s.name: s for s in field_specs(Everything)}
    assert specs["key"].required and not specs["extra"].required
    assert specs["how"].choices == ["inner", "left"] and specs["limit"].default == 10


def _form_app() -> None:
    import streamlit as st

    from builder.pipeline.model import Step
    from builder.plan.types import ColumnInfo
    from builder.ui import forms
    from patterns.base import Pattern
    from tests.ui.test_forms import Everything

    class FakePlan:
        problems: list = []

        def schema(self, node):
            return (ColumnInfo("user_id", "BIGINT"), ColumnInfo("amount", "DOUBLE"))

    pattern = Pattern(name="everything", category="Columns & rows", arity=1, params=Everything,
                      build=lambda p, c: None, doc="All field kinds.",
                      example={"key": "a", "keep": ["a"]})
    if "step" not in st.session_state:
        st.session_state["step"] = Step(id="s", pattern="everything", inputs=["src"], params={
            "key": "user_id", "keep": ["amount"], "order_by": ["amount desc"],
            "aggregations": [{"column": "amount", "fn": "avg"}], "nested": {"a": [1]}})
    forms.param_form(pattern, st.session_state["step"], FakePlan(), ["src"])


def test_every_widget_renders_and_writes_back_only_changes():
    at = AppTest.from_function(_form_app, default_timeout=30).run()
    assert not at.exception, at.exception
    step = at.session_state["step"]
    before = dict(step.params)
    at.run()
    assert step.params == before  # drawing the form changes nothing
    key = next(w for w in at.selectbox if w.key.endswith(":how"))
    key.select("left").run()
    assert step.params["how"] == "left"
    next(w for w in at.checkbox if w.key.endswith(":strict")).check().run()
    next(w for w in at.number_input if w.key.endswith(":limit")).set_value(5).run()
    next(w for w in at.text_input if w.key.endswith(":tags")).input("a, b").run()
    assert not at.exception
    assert (step.params["strict"], step.params["limit"], step.params["tags"]) == (True, 5, ["a", "b"])
    # Back to the default: the param disappears again, as if never written.
    next(w for w in at.selectbox if w.key.endswith(":how")).select("inner").run()
    assert "how" not in step.params
    assert step.params["order_by"] == ["amount desc"]
    assert step.params["aggregations"] == [{"column": "amount", "fn": "avg"}]
