"""The panel of the node being inspected: its settings, its problems and its preview."""

from __future__ import annotations

import streamlit as st

from builder.pipeline import edit
from builder.pipeline.model import Pipeline, Source, Step
from builder.plan.compiler import Plan
from builder.ui import forms, outputs, source_options, sql_editor, state
from builder.ui import preview as preview_ui
from builder.ui.messages import action, show_problems
from patterns import PATTERNS


@action
def _rename(old: str, key: str) -> None:
    p = state.pipeline()
    assert p is not None
    new = str(st.session_state.get(key) or "").strip()
    users = edit.dependents(p, old)
    edit.rename_node(p, old, new)
    state.bump()  # widget keys carry the id: start them again from the model
    state.select(new)
    state.flash("success", f"Renamed '{old}' to '{new}'" + (
        f" and updated {', '.join(repr(u) for u in users)}." if users else "."))


@action
def _delete(node: str) -> None:
    p = state.pipeline()
    assert p is not None
    edit.delete_node(p, node)
    nodes = p.node_ids()
    state.select(nodes[-1] if nodes else None)
    state.flash("success", f"Deleted '{node}'.")


@action
def _move(node: str, delta: int) -> None:
    p = state.pipeline()
    assert p is not None
    edit.move_step(p, node, delta)


def _header(p: Pipeline, node: str, is_step: bool) -> None:
    c1, c2, c3, c4, c5 = st.columns([3, 1, 1, 1, 1], vertical_alignment="bottom")
    k = state.key("rename", node)
    if k not in st.session_state:
        st.session_state[k] = node
    c1.text_input("Id", key=k, help="Renaming updates every step that reads it and the outputs.")
    c2.button("Rename", key=state.key("rename_btn", node), on_click=_rename, args=(node, k))
    if is_step:
        ids = p.step_ids()
        c3.button("↑", key=state.key("up", node), on_click=_move, args=(node, -1),
                  disabled=ids.index(node) == 0, help="Move up in the file")
        c4.button("↓", key=state.key("down", node), on_click=_move, args=(node, 1),
                  disabled=ids.index(node) == len(ids) - 1, help="Move down in the file")
    users = edit.dependents(p, node)
    c5.button("Delete", key=state.key("del", node), on_click=_delete, args=(node,),
              help=("Used by " + ", ".join(users) + ": change those first.") if users else
              "Delete this " + ("step" if is_step else "source"))


def _description(obj: Step | Source, node: str) -> None:
    k = state.key("desc", node)
    if k not in st.session_state:
        st.session_state[k] = obj.description or ""
    text = st.text_input("Description", key=k, placeholder="what this is for (optional)")
    new = text.strip() or None
    if new != obj.description:
        obj.description = new


def draw_source(p: Pipeline, src: Source, plan: Plan) -> None:
    _header(p, src.id, is_step=False)
    _description(src, src.id)
    k = state.key("src_path", src.id)
    if k not in st.session_state:
        st.session_state[k] = src.path or ""
    if src.path is not None:
        path = st.text_input("Path (relative to the pipeline file)", key=k)
        if path.strip() and path.strip() != src.path:
            src.path = path.strip()
    source_options.draw(p, src, plan)
    cols = [c.name for c in plan.schema(src.id) or ()]
    k = state.key("src_key", src.id)
    if k not in st.session_state:
        st.session_state[k] = list(src.sample_key)
    options = cols + [c for c in src.sample_key if c not in cols]
    key_cols = st.multiselect("Sample key (sample mode keeps whole keys)", options, key=k,
                              help="E.g. user_id on clicks, orders and users: sampled previews "
                              "then keep every row of the sampled users in each source.")
    if list(key_cols) != src.sample_key:
        src.sample_key = list(key_cols)


def draw_step(p: Pipeline, step: Step, plan: Plan) -> None:
    _header(p, step.id, is_step=True)
    _description(step, step.id)
    if step.sql is not None:
        sql_editor.draw(step, plan)
    else:
        pattern = PATTERNS.get(step.pattern) if step.pattern and step.pattern in PATTERNS else None
        if pattern is None:
            show_problems([x for x in plan.problems if x.step == step.id])
            return
        with st.expander(f"About '{pattern.name}' ({pattern.category}, "
                         f"{pattern.arity_text()})"):
            st.markdown(pattern.help)
        if pattern.arity == 2 and len(step.inputs or []) <= 2:
            _two_inputs(p, step)
        else:
            _inputs(p, step, pattern.arity_text())
        graph_problems = [x for x in plan.problems if x.step == step.id and x.param is None
                          and x.kind == "graph"]
        show_problems(graph_problems)
        forms.param_form(pattern, step, plan, list(step.inputs or []))
    st.subheader("Output")
    outputs.draw(p, step.id, plan)


def _inputs(p: Pipeline, step: Step, arity_text: str) -> None:
    candidates = edit.input_candidates(p, step.id)
    current = list(step.inputs or [])
    k = state.key("inputs", step.id)
    if k not in st.session_state:
        st.session_state[k] = current
    options = candidates + [c for c in current if c not in candidates]
    chosen = st.multiselect(f"Inputs ({arity_text})", options, key=k,
                            help="Sources and steps this step reads, in order.")
    if list(chosen) != current:
        step.inputs = list(chosen)


def _two_inputs(p: Pipeline, step: Step) -> None:
    """A two-input step: one picker per side, the other side's choices sources first."""
    current = list(step.inputs or [])
    left, right = (current + [None, None])[:2]
    c1, c2 = st.columns(2)
    k1, k2 = state.key("input_left", step.id), state.key("input_right", step.id)
    if k1 not in st.session_state:
        st.session_state[k1] = left
        st.session_state[k2] = right
    options = edit.input_candidates(p, step.id)
    new_left = c1.selectbox("Left input *", options + [x for x in [left] if x and
                                                       x not in options],
                            key=k1, index=None, placeholder="choose a source or step",
                            help="The step's first input (its rows drive a left join).")
    others = edit.other_input_choices(p, new_left, step.id)
    new_right = c2.selectbox("Right input *", others + [x for x in [right] if x and
                                                        x not in others],
                             key=k2, index=None, placeholder="choose a source or step",
                             help="The input combined with the left one (sources first).")
    chosen = [x for x in (new_left, new_right) if x]
    if chosen != current:
        step.inputs = chosen


def draw(p: Pipeline, node: str, plan: Plan) -> None:
    """Settings and preview of one node."""
    if node in p.sources:
        draw_source(p, p.sources[node], plan)
        show_problems([x for x in plan.problems if x.step == node or (
            x.step is None and f"'{node}'" in x.message)])
    elif node in p.step_ids():
        draw_step(p, p.step(node), plan)
    elif node not in plan.side_nodes:
        st.info("Choose a source or step to inspect.")
        return
    ok = node in plan.graph and not any(
        x.severity == "error" and (x.step in plan.needed_for([node]) or x.step is None)
        for x in plan.problems)
    st.subheader("Preview")
    preview_ui.draw(plan, node, ok)
