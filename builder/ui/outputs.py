"""A step's output: not written, a file, a staging table or a PostgreSQL table, with every key
of an output.

Files take ``path`` and ``format``; staging tables take ``staging`` (the table name), ``mode``
(replace, append, merge), ``primary_key`` and ``history: scd2``; both take ``description``,
``owner`` and ``columns`` (column descriptions). PostgreSQL tables take ``postgres:`` with the
environment variable of the connection string, the table, the mode and the primary key. Every change goes through
:mod:`builder.pipeline.edit`, which refuses what the file format does not allow.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder.pipeline import edit
from builder.pipeline.model import FORMATS, Pipeline
from builder.pipeline.yamlio import dumps, loads
from builder.plan.compiler import Plan
from builder.ui import state
from builder.ui.messages import action

KINDS = {"none": "Not written", "file": "A file", "staging": "A staging table",
         "postgres": "A PostgreSQL table"}
AUTO = ""  # the "from the file extension" / "no value" option of optional select boxes


@action
def _set_kind(node: str, kind_key: str) -> None:
    p = state.pipeline()
    assert p is not None
    kind = st.session_state.get(kind_key)
    if kind == "file":
        edit.set_output(p, node, st.session_state.get(state.key("out_path", node)) or
                        edit.default_output_path(p, node))
    elif kind == "staging":
        edit.set_staging_output(p, node, st.session_state.get(state.key("out_staging", node))
                                or node)
    elif kind == "postgres":
        edit.set_postgres_output(p, node)
    else:
        edit.set_output(p, node, None)
    _forget(node)


def _forget(node: str) -> None:
    """Start the detail widgets again from the model (after the output changed kind)."""
    for name in ("out_path", "out_staging", "out_format", "out_mode", "out_pk", "out_history",
                 "out_desc", "out_owner", "out_columns", "out_pg_env", "out_pg_table",
                 "out_pg_mode", "out_pg_pk"):
        st.session_state.pop(state.key(name, node), None)


@action
def _set_path(node: str, k: str) -> None:
    p = state.pipeline()
    assert p is not None
    edit.set_output(p, node, st.session_state.get(k) or edit.default_output_path(p, node))


@action
def _set_staging(node: str, k: str) -> None:
    p = state.pipeline()
    assert p is not None
    edit.set_staging_output(p, node, str(st.session_state.get(k) or ""))


@action
def _update(node: str, field: str, k: str, parse: str = "") -> None:
    p = state.pipeline()
    assert p is not None
    value: Any = st.session_state.get(k)
    if parse == "yaml":
        value = loads(value) if str(value or "").strip() else None
    edit.update_output(p, node, **{field: value})


@action
def _set_postgres(node: str, field: str, k: str) -> None:
    p = state.pipeline()
    assert p is not None
    edit.set_postgres_output(p, node, **{field: st.session_state.get(k)})


def _draw_postgres(node: str, spec: dict[str, Any], plan: Plan) -> None:
    c1, c2 = st.columns([2, 1])
    dsn = spec.get("dsn")
    k = state.initial(state.key("out_pg_env", node), dsn.get("env", "") if isinstance(dsn, dict)
              else "")
    c1.text_input("Environment variable with the connection string", key=k,
                  on_change=_set_postgres, args=(node, "env", k))
    k = state.initial(state.key("out_pg_table", node), str(spec.get("table") or ""))
    c2.text_input("Table (schema.table)", key=k, on_change=_set_postgres, args=(node, "table", k))
    k = state.initial(state.key("out_pg_mode", node), spec.get("mode", "replace"))
    c2.selectbox("Mode", list(edit.OUTPUT_MODES), key=k, on_change=_set_postgres,
                 args=(node, "mode", k), help="replace: a new table swapped in; append: inserts "
                 "the rows; merge: INSERT ... ON CONFLICT (primary key) DO UPDATE. Each write is "
                 "one transaction: a failed run leaves the table as it was.")
    columns = [c.name for c in plan.schema(node) or ()]
    pk = list(spec.get("primary_key") or [])
    k = state.initial(state.key("out_pg_pk", node), pk)
    c1.multiselect("Primary key", columns + [c for c in pk if c not in columns], key=k,
                   on_change=_set_postgres, args=(node, "primary_key", k),
                   help="Created on replace; merge needs a primary key or unique constraint on "
                   "these columns in PostgreSQL.")



def draw(p: Pipeline, node: str, plan: Plan) -> None:
    """The output settings of step ``node``."""
    out = p.outputs.get(node)
    kind = "none" if out is None else ("staging" if out.staging else "postgres" if
                                       out.postgres is not None else "file")
    kind_key = state.initial(state.key("out_kind", node), kind)
    st.radio("Write this step to", list(KINDS), key=kind_key, format_func=KINDS.__getitem__,
             horizontal=True, on_change=_set_kind, args=(node, kind_key),
             help="A file (Parquet, CSV or JSON) is replaced on each run; a staging table is "
             "published in the warehouse for other pipelines and the catalog.")
    if out is None:
        return
    c1, c2 = st.columns([2, 1])
    if out.postgres is not None:
        _draw_postgres(node, out.postgres, plan)
    elif out.staging is not None:
        k = state.initial(state.key("out_staging", node), out.staging)
        c1.text_input("Staging table", key=k, on_change=_set_staging, args=(node, k),
                      help="Other pipelines read it with a source {staging: NAME}.")
        k = state.initial(state.key("out_mode", node), out.mode)
        c2.selectbox("Mode", list(edit.OUTPUT_MODES), key=k, on_change=_update,
                     args=(node, "mode", k), help="replace: the table is the result; append: "
                     "adds the rows; merge: updates rows by primary key and adds new ones.")
        columns = [c.name for c in plan.schema(node) or ()]
        k = state.initial(state.key("out_pk", node), list(out.primary_key))
        c1.multiselect("Primary key", columns + [c for c in out.primary_key if c not in columns],
                       key=k, on_change=_update, args=(node, "primary_key", k),
                       help="Columns that identify a row: checked unique on write; needed by "
                       "merge and by history.")
        k = state.initial(state.key("out_history", node), out.history or AUTO)
        c2.selectbox("History", [AUTO, *edit.HISTORIES], key=k, on_change=_update,
                     args=(node, "history", k), format_func=lambda h: h or "none",
                     help="scd2 keeps every version of a row (valid_from, valid_to, "
                     "is_current) by primary key.")
    else:
        k = state.initial(state.key("out_path", node),
                          out.path or edit.default_output_path(p, node))
        c1.text_input("Output file (relative to the pipeline file)", key=k,
                      on_change=_set_path, args=(node, k))
        k = state.initial(state.key("out_format", node), out.format or AUTO)
        c2.selectbox("Format", [AUTO, *FORMATS], key=k, on_change=_update,
                     args=(node, "format", k), format_func=lambda f: f or "from the extension")
    with st.expander("Documentation (description, owner, columns)"):
        k = state.initial(state.key("out_desc", node), out.description or "")
        st.text_input("Description", key=k, on_change=_update, args=(node, "description", k))
        k = state.initial(state.key("out_owner", node), out.owner or "")
        st.text_input("Owner", key=k, on_change=_update, args=(node, "owner", k),
                      placeholder="team@example.com")
        k = state.initial(state.key("out_columns", node), dumps(out.columns).strip() if out.columns
                  else "")
        st.text_area("Column descriptions (YAML, one 'column: description' per line)", key=k,
                     on_change=_update, args=(node, "columns", k, "yaml"), height=90)
