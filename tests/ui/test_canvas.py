"""The canvas's two directions without a browser: the picture drawn from the model (layout,
edges, what may be deleted) and canvas events turned into model edits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit_flow.elements import StreamlitFlowEdge
from streamlit_flow.state import StreamlitFlowState

from builder.pipeline import edit
from builder.pipeline.model import load
from builder.plan.compiler import plan
from builder.ui import dag

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def example(tmp_path: Path):
    shutil.copytree(ROOT / "saved_pipelines" / "data", tmp_path / "data")
    shutil.copy(ROOT / "saved_pipelines" / "daily_revenue.yaml", tmp_path)
    return load(tmp_path / "daily_revenue.yaml")


def _sent(example):
    pl = plan(example)
    states = dag.node_states(pl, [])
    nodes, edges = dag.picture(pl, states, None)
    return pl, StreamlitFlowState(nodes, edges)


def test_layout_is_layered_and_stable(example):
    pl = plan(example)
    nodes = list(dag.node_states(pl, []))
    pos = dag.layout(pl, nodes)
    # orders, users first; then paid_orders; order_lines; revenue_by_country last.
    assert pos["orders"][0] == pos["users"][0] == 0
    assert pos["orders"][0] < pos["paid_orders"][0] < pos["order_lines"][0] < \
        pos["revenue_by_country"][0]
    assert pos["orders"] != pos["users"]
    assert dag.layout(plan(example), nodes) == pos  # a rerun draws the same picture


def test_picture_has_every_edge(example):
    _, sent = _sent(example)
    pairs = {(e.source, e.target) for e in sent.edges}
    assert pairs == {("orders", "paid_orders"), ("paid_orders", "order_lines"),
                     ("order_lines", "revenue_by_country"), ("users", "revenue_by_country")}
    assert {n.id for n in sent.nodes} == {"orders", "users", "paid_orders", "order_lines",
                                         "revenue_by_country"}


def test_canvas_events_become_edits(example):
    u = edit.add_pattern_step(example, "union", ["orders"])
    _, sent = _sent(example)
    drawn = StreamlitFlowEdge("st-flow-edge_paid_orders-union_1", "paid_orders", u.id)
    got = StreamlitFlowState(sent.nodes, [*sent.edges, drawn], selected_id=drawn.id)
    ch = dag.changes(sent, got)
    assert ch.added == [("paid_orders", u.id)] and ch.selected is None
    assert not ch.removed_edges and not ch.removed_nodes and not ch.relabelled
    assert dag.add_edges(example, ch.added) == (["'union_1' now reads 'paid_orders'"], [])
    assert dag.add_edges(example, [("users", "order_lines")]) == ([], [
        "step 'order_lines' (select) takes 1 input and already reads 'paid_orders': remove an "
        "input first."])
    assert u.inputs == ["orders", "paid_orders"]
    # A click selects; a box or edge missing from a (stale) picture is seen as a removal.
    _, sent = _sent(example)
    keep = [e for e in sent.edges if (e.source, e.target) != ("orders", u.id)]
    got = StreamlitFlowState([n for n in sent.nodes if n.id != "revenue_by_country"],
                             [e for e in keep if e.target != "revenue_by_country"],
                             selected_id="paid_orders")
    ch = dag.changes(sent, got)
    assert ch.selected == "paid_orders"
    assert ch.removed_edges == [("orders", u.id)]
    assert ch.removed_nodes == ["revenue_by_country"]


def test_what_may_be_deleted_on_the_canvas(example):
    _, sent = _sent(example)
    assert all(n.deletable for n in sent.nodes)
    # An edge into a pattern step is one of its inputs; into a SQL step it is the SQL's FROM.
    deletable = {(e.source, e.target) for e in sent.edges if e.deletable}
    assert deletable == {("orders", "paid_orders"), ("paid_orders", "order_lines")}


def test_deleting_on_the_canvas_edits_the_model(example):
    # An edge: the step stops reading that input.
    assert dag.remove_edges(example, [("orders", "paid_orders")]) == (
        ["'paid_orders' no longer reads 'orders'"], [])
    assert example.step("paid_orders").inputs == []
    assert dag.remove_edges(example, [("users", "revenue_by_country")]) == ([], [
        "step 'revenue_by_country' is a SQL step: it reads the tables its SQL names. Remove "
        "'users' from its SQL instead."])
    # A box others read: refused in one line naming them, nothing deleted.
    assert dag.delete_nodes(example, ["order_lines"]) == ([], [
        "cannot delete 'order_lines': step 'revenue_by_country' reads it. Change their inputs "
        "first or delete them."])
    assert "order_lines" in example.step_ids()
    # A chain deleted at once (a selection): readers first, so it goes in one go.
    assert dag.delete_nodes(example, ["order_lines", "revenue_by_country"]) == (
        ["deleted 'revenue_by_country'", "deleted 'order_lines'"], [])
    assert example.step_ids() == ["paid_orders"]
    assert "revenue_by_country" not in example.outputs


def test_a_canvas_report_is_applied_once_and_redrawn(example, monkeypatch):
    """apply(): a deletion reported by the canvas changes the model and asks for a redraw; a
    refused one changes nothing and also redraws (the canvas removed the box on its own)."""
    fake: dict = {}
    monkeypatch.setattr(dag.st, "session_state", fake)
    monkeypatch.setattr(dag.state.st, "session_state", fake)
    _, sent = _sent(example)
    got = StreamlitFlowState([n for n in sent.nodes if n.id != "users"],
                             [e for e in sent.edges if e.source != "users"])
    assert dag.apply(example, sent, got) is True
    assert "users" in example.sources and fake[dag.NONCE] == 1
    assert fake[dag.NOTES] == [("error", "cannot delete 'users': step 'revenue_by_country' "
                                "reads it. Change their inputs first or delete them.")]
    got = StreamlitFlowState([n for n in sent.nodes if n.id != "revenue_by_country"],
                             [e for e in sent.edges if e.target != "revenue_by_country"])
    assert dag.apply(example, sent, got) is True
    assert "revenue_by_country" not in example.step_ids() and fake[dag.NONCE] == 2
    assert fake[dag.NOTES] == [("success", "Canvas: deleted 'revenue_by_country'.")]
    # A report with no edit and no new selection (the component's echo of a picture): nothing.
    assert dag.apply(example, sent, StreamlitFlowState(sent.nodes, sent.edges)) is False


def test_a_late_report_of_an_older_picture_deletes_nothing(example):
    """On a slow machine the canvas's report of the picture before a new step was added can
    reach the server after that step's picture was made: read against the newest picture, the
    new box looked deleted by the user (and was deleted). Each box carries its picture's number,
    so the report is read against the picture it is about; an edit of the newest picture still
    counts, also when it gives back an older picture's content (deleting the edge just drawn)."""
    _, before = _sent(example)
    dag.stamp(before, 1)
    u = edit.add_pattern_step(example, "union", ["orders"])
    _, now = _sent(example)
    dag.stamp(now, 2)
    recent = {1: before, 2: now}
    echo = StreamlitFlowState(before.nodes, before.edges)  # the browser's report of `before`
    base = dag.base_of(echo, recent, now)
    assert base is before
    assert not dag.changes(base, echo).edits
    assert dag.changes(now, echo).removed_nodes == [u.id]  # what reading it against `now` did
    # Deleting the new box on the newest picture gives back `before`'s content: a deletion.
    mine = StreamlitFlowState([n for n in now.nodes if n.id != u.id],
                              [e for e in now.edges if e.target != u.id])
    assert mine.nodes and dag.base_of(mine, recent, now) is now
    assert dag.changes(now, mine).removed_nodes == [u.id]
