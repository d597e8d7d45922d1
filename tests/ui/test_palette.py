"""The palette finds patterns by the words users type, not only by their names."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import open_example


def _found(app: AppTest, query: str) -> list[str]:
    app.text_input(key="dy_palette_search").input(query).run()
    assert not app.exception
    return [b.label.removeprefix("+ ") for b in app.button
            if b.key and b.key.startswith("dy_add_") and b.key != "dy_add_sql"]


@pytest.mark.parametrize(("query", "pattern"), [
    ("remove duplicates", "dedupe"),
    ("history", "scd2"),
    ("flatten", "unnest"),
    ("explode arrays", "unnest"),
    ("running total", "window"),
    ("anonymize", "mask"),
    ("calendar", "date_spine"),
    ("melt", "unpivot"),
    ("vlookup", "join"),
])
def test_search_finds_patterns_by_the_words_users_type(app: AppTest, query: str, pattern: str):
    open_example(app)
    found = _found(app, query)
    assert pattern in found, found
    assert len(found) <= 4, f"'{query}' should narrow the palette, got {found}"


def test_search_without_hits_says_so(app: AppTest):
    open_example(app)
    assert _found(app, "zebra crossing") == []
    assert any("No step matches 'zebra crossing'" in c.value for c in app.caption)
