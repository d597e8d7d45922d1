"""The Catalog page: find a table, read its docs, see sample rows, freshness, lineage, runs.

Only calls the library (builder.warehouse.browse, builder.warehouse.store, builder.plan.dependencies); every
failure is shown as a one-line message.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from builder.errors import PipelineError
from builder.pipeline import edit
from builder.pipeline.project import Project, find_project
from builder.plan.dependencies import readers
from builder.ui import state
from builder.ui.messages import action
from builder.warehouse.browse import (
    describe,
    entries,
    freshness,
    lineage_dot,
    new_pipeline_from,
    sample_rows,
    table_pipeline,
)
from builder.warehouse.store import run_history


def project() -> Project:
    return find_project(state.pipelines_dir() / "x.yaml")


def page() -> None:
    st.title("Catalog")
    proj = project()
    rows = entries(proj)
    if not rows:
        st.info(f"Nothing here yet: describe data sets in '{proj.catalog_dir}/*.yaml', or "
                "publish a staging table with an output like {staging: NAME}.")
        return
    query = st.text_input("Search", key="dy_cat_search",
                          placeholder="name, description, owner or column").strip().lower()
    shown = [r for r in rows if not query or query in _haystack(r)]
    st.caption(f"{len(shown)} of {len(rows)} tables")
    table = pd.DataFrame([{"name": r["name"], "kind": r["kind"], "owner": r.get("owner"),
                           "description": r.get("description")} for r in shown])
    st.dataframe(table, hide_index=True, width="stretch")
    if not shown:
        return
    labels = [f"{r['kind']}:{r['name']}" for r in shown]
    choice = st.selectbox("Table", labels, key="dy_cat_pick")
    if choice:
        kind, name = choice.split(":", 1)
        try:
            details(proj, kind, name)
        except PipelineError as e:
            st.error(str(e.problems[0]) if e.problems else str(e))


def _haystack(row: dict[str, Any]) -> str:
    return " ".join(str(v) for v in row.values() if v).lower()


def details(proj: Project, kind: str, name: str) -> None:
    info = describe(proj, name)
    st.subheader(name)
    st.markdown(info.get("description") or "_No description._")
    meta = {"kind": kind, "owner": info.get("owner") or "—"}
    if kind == "staging":
        meta.update(producer=f"{info['pipeline']}.{info['step']}", rows=info["row_count"],
                    last_success=str(info["last_success"])[:19], mode=info.get("mode"))
    else:
        meta.update(location=info.get("location"),
                    primary_key=", ".join(info.get("primary_key", [])) or "—")
    st.table(pd.DataFrame([meta]))
    # A callback: it runs before the page radio is drawn, so it may switch the page.
    st.button("Start a new pipeline from this table", key="dy_cat_new", on_click=_new_pipeline,
              args=(proj, kind, name))

    tab_schema, tab_rows, tab_lineage, tab_runs = st.tabs(
        ["Schema & docs", "Sample rows", "Lineage", "Runs"])
    with tab_schema:
        _schema(proj, kind, name, info)
    with tab_rows:
        st.dataframe(sample_rows(proj, kind, name), hide_index=True, width="stretch")
        st.caption("As pipelines read it: the catalog's casts, dedupe and masking applied.")
        if kind == "catalog":
            fresh = freshness(proj, name)
            if fresh:
                verdict = "" if "fresh" not in fresh else (
                    " — fresh" if fresh["fresh"] else f" — STALE (limit {fresh['freshness']})")
                st.markdown(f"Newest `{fresh['event_time']}`: {fresh['newest']} "
                            f"({fresh.get('age_hours', '?')} hours ago){verdict}")
    with tab_lineage:
        _lineage(proj, kind, name, info)
    with tab_runs:
        producer = info.get("pipeline") if kind == "staging" else None
        runs = run_history(proj, producer) if producer else []
        if not producer:
            st.caption("Catalog entries are read, not produced by a pipeline.")
        elif not runs:
            st.caption("No runs recorded.")
        else:
            st.dataframe(pd.DataFrame([{
                "started": r["started"], "status": r["status"],
                "rows": ", ".join(f"{k}: {v['rows']}" for k, v in r["outputs"].items()),
                "error": r["error"]} for r in runs]), hide_index=True, width="stretch")


def _schema(proj: Project, kind: str, name: str, info: dict[str, Any]) -> None:
    from builder.plan.compiler import plan

    docs: dict[str, str] = info.get("columns") or {}
    p = plan(table_pipeline(proj, kind, name))
    sp = next(iter(p.sources.values()))
    cols = [(c.name, c.type) for c in sp.columns or ()]
    st.dataframe(pd.DataFrame([{"column": c, "type": t, "doc": docs.get(c, "")}
                               for c, t in cols]), hide_index=True, width="stretch")
    for line in sp.applied:
        st.markdown(f"- applied on read: {line}")


def _lineage(proj: Project, kind: str, name: str, info: dict[str, Any]) -> None:
    consumers = readers(proj, kind, name)
    st.graphviz_chart(lineage_dot(kind, name, info, consumers))
    if kind == "staging":
        st.caption("Column lineage: `dockyard lineage " + name + ".COLUMN`.")


@action
def _new_pipeline(proj: Project, kind: str, name: str) -> None:
    path = new_pipeline_from(proj, kind, name)
    p = edit.new_pipeline(path.stem, state.pipelines_dir())
    sid = edit.unique_id(p, name)
    edit.add_table_source(p, sid, kind, name)
    state.set_pipeline(p, None)
    state.select(sid)
    state.flash("info", f"New pipeline '{path.stem}' reading {kind} table '{name}'. Add steps "
                "from the sidebar.")
    st.session_state["dy_page"] = "Builder"

