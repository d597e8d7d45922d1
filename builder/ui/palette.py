"""The step palette: patterns grouped by category, a search box, and the SQL step."""

from __future__ import annotations

import streamlit as st

from builder.pipeline import edit
from builder.pipeline.model import Pipeline
from builder.ui import state
from builder.ui.messages import action
from patterns import PATTERNS
from patterns.base import Pattern

SQL_CATEGORY = "SQL"


def matches(pattern: Pattern, query: str) -> bool:
    """Search in name, keywords, category and help text: every word typed must appear, singular
    or plural ("remove duplicates" finds dedupe, "history" scd2, "flatten" unnest)."""
    text = " ".join([pattern.name, *pattern.keywords, pattern.category, pattern.help]).lower()
    return all(word in text or _stem(word) in text for word in query.lower().split())


def _stem(word: str) -> str:
    """'duplicates' -> 'duplicate', 'matches' -> 'match': the text may hold either form."""
    for suffix in ("ies", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _default_inputs(p: Pipeline, pattern: Pattern | None) -> list[str]:
    """The inspected node (or the last one) feeds a new step; see :func:`edit.default_inputs`."""
    return edit.default_inputs(p, state.selected(), pattern.arity if pattern else 1)


@action
def _add_pattern(name: str) -> None:
    p = state.pipeline()
    assert p is not None
    pattern = PATTERNS.get(name)
    inputs = _default_inputs(p, pattern)
    st_ = edit.add_pattern_step(p, name, inputs)
    state.select(st_.id)
    state.flash("info", f"Added step '{st_.id}' ({name}). Fill in its params below.")


@action
def _add_sql() -> None:
    p = state.pipeline()
    assert p is not None
    inputs = _default_inputs(p, None)
    st_ = edit.add_sql_step(p, edit.default_sql(inputs[0] if inputs else None))
    state.select(st_.id)
    state.flash("info", f"Added SQL step '{st_.id}'. Edit its query below.")


def draw() -> None:
    """The palette (in the sidebar)."""
    query = st.text_input("Search steps", key="dy_palette_search",
                          placeholder="e.g. join, dedupe, session")
    p = state.pipeline()
    after = _default_inputs(p, None) if p is not None else []
    if after:
        st.caption(f"New steps read '{after[0]}' (click another box on the canvas to add "
                   "after it).")
    shown = 0
    for category, pats in PATTERNS.by_category().items():
        hits = [pt for pt in pats if not query or matches(pt, query)]
        if not hits:
            continue
        with st.expander(category, expanded=bool(query)):
            for pt in hits:
                st.button(f"+ {pt.name}", key=f"dy_add_{pt.name}", help=pt.summary,
                          on_click=_add_pattern, args=(pt.name,), width="stretch")
                shown += 1
    if not query or matches_sql(query):
        with st.expander(SQL_CATEGORY, expanded=bool(query)):
            st.button("+ SQL step", key="dy_add_sql", on_click=_add_sql,
                      help="Your own SELECT over sources and steps, by their ids.",
                      width="stretch")
            shown += 1
    if not shown:
        st.caption(f"No step matches '{query}'.")


def matches_sql(query: str) -> bool:
    return all(w in "sql query select custom own" for w in query.lower().split())
