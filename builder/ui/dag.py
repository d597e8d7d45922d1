"""The pipeline as a canvas you can click: one box per source and step, colored by its state.

Drawn with React Flow (the ``streamlit-flow-component`` package ships it built, so nothing is
compiled at runtime). The model is the truth and the canvas follows it both ways:

* model -> canvas: boxes and edges come from the plan on every rerun, placed by a layered layout
  (topological generations, left to right, file order within a layer), so the picture is the
  same on every rerun and only changes when the pipeline does. A new picture is sent only when
  its content changes (the component keeps its own state otherwise, e.g. a box the user moved).
* canvas -> model: clicking a box inspects it; drawing an edge from a box's right handle to
  another box's left handle adds an input to that step (:func:`builder.plan.wiring.add_input`, refused
  in one line when the pattern already has all its inputs); right-click a box or an edge and
  "Delete" deletes the node (:func:`builder.pipeline.edit.delete_node`, refused in one line while other
  steps read it) or removes that input (:func:`builder.plan.wiring.remove_input`). New steps from the
  palette read the box selected here.

The canvas runs in a fragment: the component reports its state back after every picture it is
sent (once when it takes the picture, once more after laying it out), and each report is a
widget change. Outside a fragment every report reran the whole page and interrupted the run in
progress (stale duplicate widgets, dropdowns closed under the pointer, a widget's state dropped
on a slow machine); in a fragment a report reruns only the canvas, and only a real edit reruns
the page.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import streamlit as st
from streamlit.errors import StreamlitAPIException
from streamlit_flow import streamlit_flow
from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
from streamlit_flow.state import StreamlitFlowState

from builder.errors import PipelineError
from builder.pipeline import edit
from builder.pipeline.model import Pipeline
from builder.plan import wiring
from builder.plan.compiler import Plan
from builder.ui import state
from builder.ui.messages import messages, one_line, problem_text

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
RECENT = "dy_canvas_recent"    # the last pictures sent (a report may be about an older one)
KEEP_RECENT = 6
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
    """Boxes and edges for the canvas.

    Sources and steps may be deleted on the canvas, and so may an edge into a pattern step (it
    is one of the step's inputs); the rejected-rows box of a step and its edge are the step's
    own, and an edge into a SQL step is its SQL's FROM, so those are not deletable.
    """
    p = plan.pipeline
    pattern_steps = {s.id for s in p.steps if s.sql is None}
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
            connectable=True, deletable=node not in plan.side_nodes,
            selected=node == selected, style=style))
    edges = []
    for a, b in edges_of(plan, states):
        edges.append(StreamlitFlowEdge(f"{a}->{b}", a, b, marker_end={"type": "arrowclosed"},
                                       deletable=b in pattern_steps, style={}))
    return nodes, edges


@dataclass
class Changes:
    """What the user did on the canvas, compared with the picture of the model."""

    selected: str | None = None
    added: list[tuple[str, str]] = field(default_factory=list)          # (input, step)
    removed_edges: list[tuple[str, str]] = field(default_factory=list)  # (input, step)
    removed_nodes: list[str] = field(default_factory=list)
    relabelled: list[str] = field(default_factory=list)  # boxes edited in the canvas's own form

    @property
    def edits(self) -> bool:
        return bool(self.added or self.removed_edges or self.removed_nodes or self.relabelled)


def changes(sent: StreamlitFlowState, got: StreamlitFlowState) -> Changes:
    """The edits the canvas reports: a click, new edges, deleted edges and boxes.

    Edges that disappear with a deleted box are part of deleting that box, not edits of their
    own (deleting the node refuses while other steps read it, with their names). A moved box is
    no edit (the layout is the canvas's own business).
    """
    old_nodes = [n.id for n in sent.nodes]
    new_nodes = {n.id for n in got.nodes}
    old_edges = [(e.source, e.target) for e in sent.edges]
    new_edges = [(e.source, e.target) for e in got.edges]
    gone = [n for n in old_nodes if n not in new_nodes]
    old_data = {n.id: n.data.get("content") for n in sent.nodes}
    return Changes(
        selected=got.selected_id if got.selected_id in new_nodes else None,
        added=[e for e in dict.fromkeys(new_edges) if e not in old_edges],
        removed_edges=[e for e in old_edges if e not in new_edges and
                       e[0] not in gone and e[1] not in gone],
        removed_nodes=gone,
        relabelled=[n.id for n in got.nodes if n.id in old_data and
                    n.data.get("content") != old_data[n.id]])


def _refusal(e: Exception) -> str:
    if isinstance(e, PipelineError) and e.problems:
        return problem_text(e.problems[0])
    return one_line(e)


def add_edges(p: Pipeline, added: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Apply drawn edges as inputs: (what was added, why others were refused), as text."""
    done, refused = [], []
    for a, b in added:
        try:
            wiring.add_input(p, b, a)
        except Exception as e:  # noqa: BLE001 - one line under the canvas, the edge is undone
            refused.append(_refusal(e))
        else:
            done.append(f"'{b}' now reads '{a}'")
    return done, refused


def remove_edges(p: Pipeline, removed: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Apply deleted edges as removed inputs: (what was removed, why others were refused)."""
    done, refused = [], []
    for a, b in removed:
        try:
            wiring.remove_input(p, b, a)
        except Exception as e:  # noqa: BLE001 - one line under the canvas, the edge is redrawn
            refused.append(_refusal(e))
        else:
            done.append(f"'{b}' no longer reads '{a}'")
    return done, refused


def delete_nodes(p: Pipeline, gone: list[str]) -> tuple[list[str], list[str]]:
    """Delete the boxes deleted on the canvas: (what was deleted, why others were refused).

    Several boxes deleted at once (a selection) go readers first, so a chain can be deleted in
    one go; a box that other steps still read is refused in one line naming them (see
    :func:`builder.pipeline.edit.delete_node`) and drawn again.
    """
    done: list[str] = []
    refused: list[str] = []
    todo = list(gone)
    while todo:
        ready = [n for n in todo if not set(edit.dependents(p, n)) & set(todo)] or todo[:1]
        for node in ready:
            todo.remove(node)
            try:
                edit.delete_node(p, node)
            except Exception as e:  # noqa: BLE001 - one line under the canvas, box redrawn
                refused.append(_refusal(e))
            else:
                done.append(f"deleted '{node}'")
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


def apply(p: Pipeline, sent: StreamlitFlowState, got: StreamlitFlowState) -> bool:
    """Turn one canvas report into model edits; True when the page must be drawn again."""
    ch = changes(sent, got)
    rerun = False
    if ch.selected and ch.selected != sent.selected_id and ch.selected != state.selected():
        state.select(ch.selected)
        rerun = True
    if not ch.edits:
        return rerun
    done, refused = [], []
    for d, r in (delete_nodes(p, ch.removed_nodes), remove_edges(p, ch.removed_edges),
                 add_edges(p, ch.added)):
        done += d
        refused += r
    if ch.relabelled:
        refused.append("The canvas shows ids and patterns: rename a node and edit its "
                       "settings in the inspector below.")
    _note(done, refused)
    if done:
        state.bump()  # the inputs pickers hold the old inputs: start them from the model
        nodes = p.node_ids()
        if state.selected() not in nodes:
            state.select(nodes[-1] if nodes else None)
    _redraw()  # what the canvas shows now may not be the model (a refused edit): send it again
    return True


def _timestamp() -> int:
    """A picture's timestamp: the component takes a picture only when it is newer than its
    last report, and reports carry the browser's clock; never older than the last report seen,
    so a browser whose clock runs ahead of the server's still takes every new picture."""
    return max(int(time.time() * 1000), st.session_state.get(SEEN, 0) + 1)


def _content(state_: StreamlitFlowState) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    return (frozenset(n.id for n in state_.nodes),
            frozenset((e.source, e.target) for e in state_.edges))


def stamp(state_: StreamlitFlowState, version: int) -> StreamlitFlowState:
    """Mark every box of a picture with the picture's number (the browser sends it back)."""
    for n in state_.nodes:
        n.data["picture"] = version
    return state_


def base_of(got: StreamlitFlowState, recent: dict[int, StreamlitFlowState],
            current: StreamlitFlowState) -> StreamlitFlowState:
    """The picture a canvas report is about: the one its boxes are marked with.

    The browser reports after each picture it takes, and a report can reach the server after
    the next picture was made there (a slow machine, a click during a rerun): read against the
    newest picture, the boxes added since would look deleted by the user. Each box carries the
    number of the picture it came in, so a report names its picture even when its content is
    the same as another picture's (deleting the edge just drawn gives back the picture before
    it: that is an edit of the newest picture, not an old report).
    """
    marks = [n.data.get("picture") for n in got.nodes if isinstance(n.data, dict)]
    numbers = [m for m in marks if isinstance(m, int) and m in recent]
    return recent[max(numbers)] if numbers else current


def draw(plan: Plan, states: dict[str, str], selected: str | None) -> None:
    """The canvas, the outcome of the last edit made on it, and its legend."""
    if not states:
        st.info("No sources yet: add one from the sidebar (a sample data file, a path or an "
                "upload).")
        return
    _canvas(plan, states, selected)
    messages(st.session_state.get(NOTES, []))
    st.caption("Click a box to inspect it; drag from a box's right handle to another box to "
               "add an input; right-click a box or an edge to delete it. New steps from the "
               "palette read the selected box.  " + "  ".join(
                   f"<span style='background:{c};border:1px solid #bbb;padding:0 6px'>{t}</span>"
                   for c, t in STATES.values()), unsafe_allow_html=True)


@st.fragment
def _canvas(plan: Plan, states: dict[str, str], selected: str | None) -> None:
    """The component itself (a fragment: see the module docstring). A fragment rerun gets the
    arguments of the last full run, which is current: every model change reruns the page."""
    nodes, edges = picture(plan, states, selected)
    signature: Any = (repr([n.asdict() for n in nodes]), repr([e.asdict() for e in edges]),
                      st.session_state.get(NONCE, 0))
    sent_sig, sent = st.session_state.get(SENT, (None, None))
    if sent is None or sent_sig != signature:
        # It carries the inspected node, so the canvas never reports a stale selection back
        # (which would undo a choice made in the Inspect box).
        recent = dict(st.session_state.get(RECENT, {}))
        version = max(recent, default=0) + 1
        sent = stamp(StreamlitFlowState(nodes, edges, selected_id=selected,
                                        timestamp=_timestamp()), version)
        st.session_state[SENT] = (signature, sent)
        recent[version] = sent
        st.session_state[RECENT] = {v: recent[v] for v in sorted(recent)[-KEEP_RECENT:]}
    rows = max(len(layer) for layer in _layers(layout(plan, list(states))))
    got = streamlit_flow(WIDGET, sent, height=min(560, 140 + rows * Y_STEP), fit_view=True,
                         allow_new_edges=True, get_node_on_click=True, get_edge_on_click=False,
                         enable_node_menu=True, enable_edge_menu=True, show_controls=True,
                         hide_watermark=True, min_zoom=0.3)
    if got is sent or got.timestamp <= st.session_state.get(SEEN, 0):
        return  # nothing new: the report of a picture already handled
    st.session_state[SEEN] = got.timestamp
    base = base_of(got, st.session_state.get(RECENT, {}), sent)
    if apply(plan.pipeline, base, got):
        st.rerun()  # the whole page: inspector, YAML and problems follow the edited model
    if base is not sent and _content(base) != _content(sent):
        # The report of an older picture, unchanged. The browser ignores a picture older than
        # its last report, so the model's picture may never have been taken: send it again,
        # newer than this report (only the canvas, when this is a canvas rerun).
        _redraw()
        try:
            st.rerun(scope="fragment")
        except StreamlitAPIException:  # a run of the whole page: draw it again
            st.rerun()


def _layers(pos: dict[str, tuple[int, int]]) -> list[list[str]]:
    by_x: dict[int, list[str]] = {}
    for n, (x, _) in pos.items():
        by_x.setdefault(x, []).append(n)
    return list(by_x.values()) or [[]]
