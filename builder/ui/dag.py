"""The pipeline drawn as a graph: one box per source and step, colored by its state."""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from builder.plan.compiler import Plan
from builder.plan.dot import quote

# state -> (fill color, legend text)
STATES = {
    "invalid": ("#f8d7da", "invalid"),
    "cached": ("#d1e7dd", "previewed (cached)"),
    "valid": ("#ffffff", "valid, not previewed"),
    "source": ("#e7f1ff", "source"),
}


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


def dot(plan: Plan, states: dict[str, str], selected: str | None) -> str:
    """Graphviz DOT text for the pipeline (left to right, the selected node outlined)."""
    p = plan.pipeline
    lines = ["digraph pipeline {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             '  edge [color="#888888"];']
    for node, st_ in states.items():
        if node in p.sources:
            label = f"{node}\n(source)"
        elif node in plan.side_nodes:
            label = f"{node}\n(rejected rows)"
        else:
            step = p.step(node)
            label = f"{node}\n({step.pattern or 'sql'})"
        if node in p.outputs:
            label += "\n→ output"
        attrs = [f"label={quote(label)}", f'fillcolor="{STATES[st_][0]}"']
        if st_ == "invalid":
            attrs.append('color="#dc3545"')
        if node == selected:
            attrs.append("penwidth=3")
        lines.append(f"  {quote(node)} [{', '.join(attrs)}];")
    for a, b in plan.graph.edges:
        if a in states and b in states:
            lines.append(f"  {quote(a)} -> {quote(b)};")
    lines.append("}")
    return "\n".join(lines)


def draw(plan: Plan, states: dict[str, str], selected: str | None) -> None:
    """The graph and its legend."""
    if not states:
        st.info("No sources yet: add one from the sidebar (a sample data file, a path or an "
                "upload).")
        return
    st.graphviz_chart(dot(plan, states, selected))
    st.caption("  ".join(f"<span style='background:{c};border:1px solid #bbb;padding:0 6px'>"
                         f"{t}</span>" for c, t in STATES.values()), unsafe_allow_html=True)
