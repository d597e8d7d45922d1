"""The SQL step editor: the query beside the tables it can read and their columns.

The query is validated on every change (Streamlit applies a text area on Ctrl+Enter or when it
loses focus) by the same compiler the CLI uses; parse errors point at their line and column,
unknown tables and columns come with a did-you-mean.
"""

from __future__ import annotations

import streamlit as st

from builder.errors import Problem
from builder.pipeline import edit
from builder.pipeline.model import Step
from builder.plan.compiler import Plan
from builder.ui import state
from builder.ui.messages import problem_text


def caret(sql: str, line: int, col: int) -> str:
    """The SQL line a problem is on, with a caret under its column."""
    lines = sql.splitlines() or [""]
    text = lines[min(max(line, 1), len(lines)) - 1]
    return f"{text}\n{' ' * max(col - 1, 0)}^"


def draw(step: Step, plan: Plan) -> None:
    """Editor on the left, readable tables on the right, problems under the editor."""
    p = plan.pipeline
    left, right = st.columns([3, 2])
    with left:
        k = state.key("sql", step.id)
        if k not in st.session_state:
            st.session_state[k] = step.sql or ""
        text = st.text_area("SQL (one SELECT; read sources and steps by their id)", key=k,
                            height=220, help="Press Ctrl+Enter (or click outside) to apply. "
                            "Pipeline params: {{ name }}.")
        if text != step.sql:
            step.sql = text
        problems: list[Problem] = [x for x in plan.problems if x.step == step.id]
        if not any(x.severity == "error" for x in problems) and step.id in plan.steps and \
                plan.steps[step.id].ok:
            cols = plan.steps[step.id].columns or ()
            st.success(f"Valid: {len(cols)} columns.")
        for prob in problems:
            (st.warning if prob.severity == "warning" else st.error)(problem_text(prob))
            if prob.sql_line:
                st.code(caret(step.sql or "", prob.sql_line, prob.sql_col or 1), language="sql")
    with right:
        reads = edit.reads(p, step)
        st.markdown("**Tables you can read**")
        candidates = edit.input_candidates(p, step.id)
        # The tables this query reads come first and open.
        for node in sorted(candidates, key=lambda n: (n not in reads, candidates.index(n))):
            schema = plan.schema(node)
            title = f"{'◆' if node in p.sources else '■'} {node}" + (
                "  (read here)" if node in reads else "")
            with st.expander(title, expanded=node in reads):
                if schema is None:
                    st.caption("schema not known (fix this node first)")
                else:
                    st.markdown("\n".join(f"- `{c.name}` {c.type}" for c in schema[:100]))
                    if len(schema) > 100:
                        st.caption(f"... and {len(schema) - 100} more columns")
