"""The step graph (networkx): inputs, cycles, arity, outputs, unused steps.

Nodes are source ids, step ids and ``<step>.rejected`` side outputs; an edge ``a -> b`` means
step ``b`` reads ``a``. Every problem is collected with the step and YAML line it belongs to.
"""

from __future__ import annotations

import networkx as nx

from builder.errors import Problem, did_you_mean
from builder.pipeline.model import Pipeline
from patterns import PATTERNS
from patterns.base import REJECTED_SUFFIX
from patterns.registry import Registry


def rejected_id(step_id: str) -> str:
    """The id of a step's side output of rejected rows."""
    return step_id + REJECTED_SUFFIX


def _rejected_hint(registry: Registry) -> str:
    """Which steps have rejected rows, as each pattern declares it (Pattern.rejected_rows)."""
    makers = [p.rejected_rows.hint(p.name) for p in registry if p.rejected_rows is not None]
    return f" Only {' or '.join(makers)} have rejected rows." if makers else ""


def build_graph(
    pipeline: Pipeline, inputs: dict[str, list[str]], registry: Registry = PATTERNS,
    side_outputs: set[str] | None = None,
) -> tuple[nx.DiGraph, list[Problem]]:
    """The DAG of a pipeline and the graph problems found in it.

    ``inputs`` gives each step's input ids (declared, or inferred from its SQL);
    ``side_outputs`` are the extra readable nodes such as ``check.rejected``.
    """
    file = pipeline.file
    problems: list[Problem] = []
    g: nx.DiGraph = nx.DiGraph()
    for sid in pipeline.sources:
        g.add_node(sid, kind="source")
    for st in pipeline.steps:
        g.add_node(st.id, kind="step")
    for node in side_outputs or ():
        g.add_node(node, kind="side")
        g.add_edge(node[: -len(REJECTED_SUFFIX)], node)
    known = list(g.nodes)
    for st in pipeline.steps:
        ins = inputs.get(st.id, [])
        for inp in ins:
            if inp == st.id:
                problems.append(Problem(f"cycle: '{st.id}' -> '{st.id}' (a step cannot read "
                                        "itself).", file=file, line=st.line, step=st.id,
                                        kind="graph"))
                continue
            if inp not in g:
                hint = did_you_mean(inp, known)
                if not hint and inp.endswith(REJECTED_SUFFIX):
                    hint = _rejected_hint(registry)
                problems.append(Problem(
                    f"input '{inp}' is not a source or step." + (hint or (
                        " Known ids: " + ", ".join(known[:12]) + ".")),
                    file=file, line=st.line, step=st.id, kind="graph"))
                continue
            g.add_edge(inp, st.id)
        pat = registry.get(st.pattern) if st.pattern is not None and st.pattern in registry \
            else None
        if len(set(ins)) != len(ins) and not (pat is not None and pat.repeated_inputs):
            dup = next(i for i in ins if ins.count(i) > 1)
            problems.append(Problem(f"input '{dup}' is listed twice.", file=file, line=st.line,
                                    step=st.id, kind="graph"))
        if pat is not None and not pat.accepts(len(ins)):
            problems.append(Problem(
                f"pattern '{st.pattern}' takes {pat.arity_text()}, got {len(ins)}"
                + (f" ({', '.join(ins)})." if ins else ".")
                + (" Add them under 'inputs:'." if len(ins) < (pat.arity if isinstance(
                    pat.arity, int) else 1) else ""),
                file=file, line=st.line, step=st.id, kind="graph"))
    try:
        cycles = list(nx.simple_cycles(g))
    except nx.NetworkXException:  # pragma: no cover - simple_cycles works on any digraph
        cycles = []
    reported: set[frozenset[str]] = set()
    for cycle in sorted(cycles, key=len):
        key = frozenset(cycle)
        if key in reported or len(cycle) < 2:
            continue
        reported.add(key)
        start = min(cycle, key=lambda n: pipeline.step_ids().index(n)
                    if n in pipeline.step_ids() else 0)
        i = cycle.index(start)
        ordered = cycle[i:] + cycle[:i]
        path = " -> ".join(f"'{n}'" for n in ordered + [ordered[0]])
        first = pipeline.step(start) if start in pipeline.step_ids() else None
        problems.append(Problem(f"cycle: {path}. Remove one of these inputs.", file=file,
                                line=first.line if first else None, step=start, kind="graph"))
    for oid, out in pipeline.outputs.items():
        if oid not in g or g.nodes[oid].get("kind") == "source":
            hint = did_you_mean(oid, [n for n in known if g.nodes[n].get("kind") != "source"])
            problems.append(Problem(
                f"output '{oid}' names no step." + (hint or " Outputs are keyed by step id."),
                file=file, line=out.line, kind="graph"))
    if pipeline.outputs:
        needed = set()
        for oid in pipeline.outputs:
            if oid in g:
                needed |= nx.ancestors(g, oid) | {oid}
        for st in pipeline.steps:
            if st.id not in needed:
                problems.append(Problem(
                    "feeds no output: it is previewable but 'dockyard run' skips it.",
                    file=file, line=st.line, step=st.id, kind="graph", severity="warning"))
    return g, problems


def topological_order(g: nx.DiGraph, pipeline: Pipeline) -> list[str]:
    """Nodes in an order that respects dependencies, ties broken by file order."""
    position = {n: i for i, n in enumerate(pipeline.node_ids())}
    return list(nx.lexicographical_topological_sort(
        g, key=lambda n: (position.get(n.split(".")[0], 0), n)))

