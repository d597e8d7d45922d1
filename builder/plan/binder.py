"""DuckDB binder errors on a step turned into Dockyard's one-line messages, with the position
in the step's SQL: an unknown column (with the closest name), an unknown function.
"""

from __future__ import annotations

import re

import duckdb

from builder.errors import Problem, did_you_mean, engine_message, function_error
from builder.pipeline.model import Step
from builder.plan import sqlcheck
from builder.plan.types import Relation

_CANDIDATE_RE = re.compile(r'Referenced column "([^"]+)" not found')


def binder_problem(e: duckdb.Error, st: Step, rels: list[Relation], file: str | None) -> Problem:
    """A DuckDB binder error on a step turned into Dockyard's message, with SQL position."""
    text = str(e)
    m = _CANDIDATE_RE.search(text)
    if m:
        name = m.group(1)
        cols = [c for r in rels for c in r.column_names]
        where = f"input '{rels[0].name}'" if len(rels) == 1 else \
            "inputs " + ", ".join(f"'{r.name}'" for r in rels) if rels else "the query"
        msg = f"column '{name}' not found in {where}." + (did_you_mean(name, cols) or (
            " Columns: " + ", ".join(cols[:12]) + "." if cols else ""))
        line, col = sqlcheck.find_token(st.sql or "", name) if st.sql else (None, None)
        return Problem(msg, file=file, line=st.line, step=st.id, sql_line=line, sql_col=col,
                       kind="compile")
    fn = function_error(text)
    if fn:  # an unknown function or argument types no overload takes: point at the name
        line, col = sqlcheck.find_token(st.sql, fn.name) if st.sql else (None, None)
        return Problem(fn.message, file=file, line=st.line, step=st.id, sql_line=line,
                       sql_col=col, kind="compile")
    return Problem(engine_message(e), file=file, line=st.line, step=st.id, kind="compile")
