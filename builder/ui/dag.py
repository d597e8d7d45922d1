"""The pipeline as a canvas you can click: one box per source and step, colored by its state.

Drawn with React Flow (the ``streamlit-flow-component`` package ships it built, so nothing is
compiled at runtime). The model is the truth and the canvas follows it both ways:

* model -> canvas: boxes and edges come from the plan on every rerun, placed by a layered layout
  (topological generations, left to right, file order within a layer), so the picture is the
  same on every rerun and only changes when the pipeline does. A new picture is sent only when
  its content changes (the component keeps its own state otherwise, e.g. a box the user moved).
* canvas -> model: clicking a box inspects it; drawing an edge from a box's right handle to
  another box's left handle adds an input to that step (:func:`builder.edit.add_input`, refused
  in one line when the pattern already has all its inputs). Removing inputs and deleting nodes
  stay in the inspector (the component's own delete menus are off). New steps from the palette
  read the box selected here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import streamlit as st
from streamlit_flow import streamlit_flow
from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
from streamlit_flow.state import StreamlitFlowState

from builder import edit
from builder.compiler import Plan
from builder.errors import PipelineError
from builder.model import Pipeline
from builder.ui import state
from builder.ui.messages import one_line, problem_text

# state -> (fill color, legend text)
STATES = {
    "invalid": ("#f8d7da", "invalid"),
    "cached": ("#d1e7dd", "previewed (cached)"),
    "valid": ("#ffffff", "valid, not previewed"),
    "source": ("#e7f1ff", "source"),
}
X_STEP, Y_STEP = 230, 100  # layout grid (pixels between layers / between boxes of a layer)

WIDGET = "dy_canvas_widget"
SENT = "dy_canvas_sent"        # (signature, StreamlitFlowState) last sent to the browser
SEEN = "dy_canvas_seen"        # timestamp of the last canvas event handled
NONCE = "dy_canvas_nonce"      # bumped to send the model's picture again (undo a refused edit)
NOTES = "dy_canvas_notes"      # what the last canvas edit did or why it was refused


def node_states(plan: Plan, cached: Iterable[str]) -> dict[str, str]:
    """invalid / cached / valid for every node of the plan (sources are 'source' when fine)."""
    cached = set(cached)
    broken = {p.step for p in plan.errors if p.step}
    out: dict[str, str] = {}
    for node in plan.pipeline.node_ids() + list(plan.side_nodes):
        if node in broken or (node in plan.steps and not plan.steps[node].ok) or (
                node in plan.sources and plan.sources[node].columns is None):
            out[node] = "invalid"
        elif node in cached:
            out[node] = "cached"
        else:
            out[node] = "source" if node in plan.sources else "valid"
    return out


def layout(plan: Plan, nodes: list[str]) -> dict[str, tuple[int, int]]:
    """(x, y) of every node: layer = topological generation, file order within a layer.

    Deterministic, so the picture does not jump between reruns; a graph with a cycle (an
    invalid pipeline) falls back to one layer per node in file order.
    """
    g = plan.graph.subgraph(nodes)
    order = {n: i for i, n in enumerate(nodes)}
    try:
        layers = [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(g)]
    except (nx.NetworkXUnfeasible, nx.NetworkXError):
        layers = [[n] for n in nodes]
    placed = {n for layer in layers for n in layer}
    layers += [[n] for n in nodes if n not in placed]
    return {n: (x * X_STEP, y * Y_STEP) for x, layer in enumerate(layers)
            for y, n in enumerate(layer)}


def _label(plan: Plan, node: str) -> str:
    p = plan.pipeline
    if node in p.sources:
        kind = "source"
    elif node in plan.side_nodes:
        kind = "rejected rows"
    else:
        kind = p.step(node).pattern or "sql"
    return f"**{node}**  \n{kind}" + ("  \n→ output" if node in p.outputs else "")


def edges_of(plan: Plan, nodes: Iterable[str]) -> list[tuple[str, str]]:
    shown = set(nodes)
    return [(a, b) for a, b in plan.graph.edges if a in shown and b in shown]


def picture(plan: Plan, states: dict[str, str], selected: str | None
            ) -> tuple[list[StreamlitFlowNode], list[StreamlitFlowEdge]]:
    """Boxes and edges for the canvas."""
    p = plan.pipeline
    pos = layout(plan, list(states))
    nodes = []
    for node, st_ in states.items():
        style = {"background": STATES[st_][0], "width": 170, "fontSize": 12,
                 "border": ("2px solid #dc3545" if st_ == "invalid" else "1px solid #888"),
                 "borderRadius": 6}
        if node == selected:
            style["boxShadow"] = "0 0 0 3px #0d6efd"
        nodes.append(StreamlitFlowNode(
            node, pos[node], {"content": _label(plan, node)},
            node_type="input" if node in p.sources else "default",
            source_position="right", target_position="left", selectable=True,
            connectable=True, deletable=False, selected=node == selected, style=style))
    edges = []
    for a, b in edges_of(plan, states):
        edges.append(StreamlitFlowEdge(f"{a}->{b}", a, b, marker_end={"type": "arrowclosed"},
                                       deletable=False, style={}))
    return nodes, edges


@dataclass
class Changes:
    """What the user did on the canvas, compared with the picture of the model."""

    selected: str | None = None
    added: list[tuple[str, str]] = field(default_factory=list)          # (input, step)
    removed_edges: list[tuple[str, str]] = field(default_factory=list)  # (input, step)
    removed_nodes: list[str] = field(default_factory=list)

    @property
    def removals(self) -> bool:
        return bool(self.removed_edges or self.removed_nodes)


def changes(sent: StreamlitFlowState, got: StreamlitFlowState) -> Changes:
    """The edits the canvas reports: a click, new edges, deleted edges and boxes.

    Edges that disappear with a deleted box are part of deleting that box, not edits of their
    own (deleting the node refuses while other steps read it, with their names).
    """
    old_nodes = [n.id for n in sent.nodes]
    new_nodes = {n.id for n in got.nodes}
    old_edges = [(e.source, e.target) for e in sent.edges]
    new_edges = [(e.source, e.target) for e in got.edges]
    gone = [n for n in old_nodes if n not in new_nodes]
    return Changes(
        selected=got.selected_id if got.selected_id in new_nodes else None,
        added=[e for e in dict.fromkeys(new_edges) if e not in old_edges],
        removed_edges=[e for e in old_edges if e not in new_edges and
                       e[0] not in gone and e[1] not in gone],
        removed_nodes=gone)


def _refusal(e: Exception) -> str:
    if isinstance(e, PipelineError) and e.problems:
        return problem_text(e.problems[0])
    return one_line(e)


def add_edges(p: Pipeline, added: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Apply drawn edges as inputs: (what was added, why others were refused), as text."""
    done, refused = [], []
    for a, b in added:
        try:
            edit.add_input(p, b, a)
        except Exception as e:  # noqa: BLE001 - one line under the canvas, the edge is undone
            refused.append(_refusal(e))
        else:
            done.append(f"'{b}' now reads '{a}'")
    return done, refused


def _note(done: list[str], refused: list[str]) -> None:
    """Keep the outcome under the canvas until the next canvas edit (a flash would vanish in
    the rerun the canvas itself causes when it is redrawn)."""
    notes = [("error", r) for r in refused]
    if done:
        notes.insert(0, ("success", "Canvas: " + "; ".join(done) + "."))
    st.session_state[NOTES] = notes


def _redraw() -> None:
    st.session_state[NONCE] = st.session_state.get(NONCE, 0) + 1


def _handle(p: Pipeline, sent: StreamlitFlowState, got: StreamlitFlowState) -> None:
    """Turn one canvas event into model edits (called before the inspector is drawn)."""
    ch = changes(sent, got)
    if ch.selected and ch.selected != sent.selected_id and ch.selected != state.selected():
        state.select(ch.selected)
    if ch.added:
        done, refused = add_edges(p, ch.added)
        _note(done, refused)
        if done:
            state.bump()  # the inputs pickers hold the old inputs: start them from the model
        _redraw()
    if ch.removals:
        # Boxes and edges are not deletable on the canvas (the inspector deletes nodes and
        # edits inputs); a removal can only come from a stale picture: draw the model again.
        _redraw()


def draw(plan: Plan, states: dict[str, str], selected: str | None) -> None:
    """The canvas, its legend and the confirmation of a removal drawn on it."""
    if not states:
        st.info("No sources yet: add one from the sidebar (a sample data file, a path or an "
                "upload).")
        return
    nodes, edges = picture(plan, states, selected)
    signature: Any = (repr([n.asdict() for n in nodes]), repr([e.asdict() for e in edges]),
                      st.session_state.get(NONCE, 0))
    sent_sig, sent = st.session_state.get(SENT, (None, None))
    if sent is None or sent_sig != signature:
        # A fresh timestamp: the browser takes it. It carries the inspected node, so the
        # canvas never reports a stale selection back (which would undo a choice made in the
        # Inspect box and rerun the page again and again).
        sent = StreamlitFlowState(nodes, edges, selected_id=selected)
        st.session_state[SENT] = (signature, sent)
    rows = max(len(layer) for layer in _layers(layout(plan, list(states))))
    got = streamlit_flow(WIDGET, sent, height=min(560, 140 + rows * Y_STEP), fit_view=True,
                         allow_new_edges=True, get_node_on_click=True, get_edge_on_click=False,
                         enable_node_menu=False, enable_edge_menu=False, show_controls=True,
                         hide_watermark=True, min_zoom=0.3)
    if got is not sent and got.timestamp > st.session_state.get(SEEN, 0):
        st.session_state[SEEN] = got.timestamp
        p = plan.pipeline
        _handle(p, sent, got)
        if st.session_state.get(NONCE, 0) != signature[2] or state.selected() != selected:
            st.rerun()  # draw the page again from the edited model
    for level, text in st.session_state.get(NOTES, []):
        getattr(st, level)(text)
    st.caption("Click a box to inspect it; drag from a box's right handle to another box to "
               "add an input (the inspector removes inputs and deletes nodes). New steps from "
               "the palette read the selected box.  " + "  ".join(
                   f"<span style='background:{c};border:1px solid #bbb;padding:0 6px'>{t}</span>"
                   for c, t in STATES.values()), unsafe_allow_html=True)


def _layers(pos: dict[str, tuple[int, int]]) -> list[list[str]]:
    by_x: dict[int, list[str]] = {}
    for n, (x, _) in pos.items():
        by_x.setdefault(x, []).append(n)
    return list(by_x.values()) or [[]]
