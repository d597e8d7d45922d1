"""The page: sidebar (pipeline file, sources, step palette) and the main area (DAG, the node
being inspected with its preview, run and schedule, YAML).

Every rerun derives everything from the pipeline model in the session: the plan (validation
and schemas) comes from :func:`builder.plan.compiler.plan`, previews from the session's Previewer.
"""

from __future__ import annotations

import streamlit as st

from builder.errors import PipelineError
from builder.pipeline.model import Pipeline, dump
from builder.plan.compiler import Plan
from builder.runner.pipelines import plan_with
from builder.sample_data import ensure_examples
from builder.ui import (
    catalog,
    dag,
    inspector,
    palette,
    runner,
    saving,
    settings,
    sources,
    state,
)
from builder.ui.messages import one_line, show_problems
from builder.warehouse.store import WarehouseStore

ICONS = {"invalid": "✗", "cached": "✓", "valid": "○", "source": "◆"}


def main() -> None:
    """Draw the app (called by app.py on every rerun)."""
    st.set_page_config(page_title="Dockyard", page_icon="⚓", layout="wide")
    folder = state.pipelines_dir()
    if not st.session_state.get("_examples_ready"):
        try:
            ensure_examples(folder)
        except PipelineError as e:  # an example that cannot publish: say so, keep going
            st.warning(str(e.problems[0]) if e.problems else str(e))
        st.session_state["_examples_ready"] = True
    p = state.pipeline()
    with st.sidebar:
        st.title("⚓ Dockyard")
        view = st.radio("Page", ["Builder", "Catalog"], key="dy_page", horizontal=True,
                        label_visibility="collapsed")
    if view == "Catalog":
        state.show_flashes()
        try:
            catalog.page()
        except Exception as e:  # noqa: BLE001 - never a traceback on the page
            st.error(one_line(e))
        return
    with st.sidebar:
        with st.expander("Pipelines", expanded=p is None):
            saving.open_panel()
        if p is not None:
            st.subheader("Save")
            saving.save_panel(p)
            st.subheader("Add a source")
            sources.draw(p)
            st.subheader("Add a step")
            palette.draw()
    state.show_flashes()
    if p is None:
        welcome()
        return
    try:
        page(p)
    except Exception as e:  # noqa: BLE001 - never a traceback on the page
        st.error(one_line(e))


def welcome() -> None:
    st.title("Build a pipeline")
    st.markdown("Open an example (it runs on the built-in sample data), or start a new "
                "pipeline from the sidebar.")
    files = saving.saved_files(state.pipelines_dir())
    if not files:
        st.info(f"No pipelines in '{saving.display_path(state.pipelines_dir())}' yet. Start a "
                "new one from the sidebar: the sample data is in its 'data/' folder.")
    for f in files:
        try:
            from builder.pipeline.model import load

            desc = load(f).description or ""
        except Exception:  # noqa: BLE001 - a broken file is still listed; opening says why
            desc = "(cannot be read; open it to see why)"
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.markdown(f"**{f.stem}** — {desc}")
        c2.button("Open", key=f"dy_open_{f.stem}", on_click=saving.open_file, args=(f,))


def _status(p: Pipeline) -> str:
    if state.never_saved():
        return "● not saved yet"
    return "● unsaved changes" if state.is_dirty(p) else "✓ saved"


def page(p: Pipeline) -> None:
    the_plan = plan_with(p, WarehouseStore())  # incremental sources: the stored watermarks
    pv = state.previewer()
    cached = pv.cached_nodes(the_plan)
    states = dag.node_states(the_plan, cached)
    where = saving.display_path(p.path) if p.path else "not saved"
    st.title(p.name)
    st.caption(f"{where}  ·  {_status(p)}")
    general = [x for x in the_plan.problems if x.step is None and not any(
        f"'{n}'" in x.message for n in p.sources)]
    show_problems(general)
    tab_build, tab_run, tab_yaml = st.tabs(["Build", "Run & schedule", "YAML"])
    with tab_build:
        settings.draw(p)
        dag.draw(the_plan, states, state.selected())
        nodes = list(states)
        if not nodes:
            return
        sel = state.selected()
        state.select(sel if sel in nodes else nodes[-1])  # also restores a dropped widget state
        counts = _problem_counts(the_plan)
        # The options are the bare ids: a label that changes with the node's state (previewed,
        # invalid) makes the browser send back a label that no longer exists on the next rerun,
        # and Streamlit then resets the selection (the inspected step jumped away, edits lost).
        st.selectbox("Inspect", nodes, key=state.SELECTED)
        state.keep_selection()
        node = state.selected()
        assert node is not None
        st.caption(f"{ICONS[states[node]]} {dag.STATES[states[node]][1]}" + (
            f"  ·  {counts[node]} problem(s)" if counts.get(node) else ""))
        before = dump(p)
        inspector.draw(p, node, the_plan)
        if dump(p) != before and st.session_state.get("dy_redraws", 0) < 3:
            # A widget changed the model while the page was drawn from the previous plan:
            # draw again so problems, DAG and YAML match the model (the model is the truth).
            # The counter only guards against a widget that never settles.
            st.session_state["dy_redraws"] = st.session_state.get("dy_redraws", 0) + 1
            st.rerun()
        st.session_state["dy_redraws"] = 0
    with tab_run:
        runner.draw(p, the_plan)
    with tab_yaml:
        st.caption("The file the CLI reads (saved as shown by 'Save').")
        st.code(dump(p), language="yaml")


def _problem_counts(p: Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    for x in p.errors:
        if x.step:
            counts[x.step] = counts.get(x.step, 0) + 1
    return counts
