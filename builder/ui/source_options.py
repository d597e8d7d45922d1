"""A source's settings beyond its path: format, reader options, the table it reads, PII access.

CSV files get a widget per common DuckDB ``read_csv`` option (``delim``, ``decimal_separator``,
``header``, ``skip``, ``dateformat``, ``nullstr``, ``quote``, ``types``): a semicolon file with
decimal commas reads right once ``delim`` and ``decimal_separator`` are set. Every other option
(and every option of Parquet and JSON files) is edited as YAML, so nothing a file holds is out
of reach. Only DuckDB's own option names are offered.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder.pipeline import edit
from builder.pipeline.model import FORMATS, Pipeline, Source, infer_format
from builder.pipeline.yamlio import dumps, loads
from builder.plan.compiler import Plan
from builder.ui import state
from builder.ui.messages import action

AUTO = ""
OFF = ""
# DuckDB read_csv option -> (label, widget kind, help)
CSV_OPTIONS: dict[str, tuple[str, str, str]] = {
    "delim": ("Delimiter", "text", "The character between fields, e.g. ; or \\t (default: "
              "detected)."),
    "decimal_separator": ("Decimal separator", "choice", "',' for numbers written 12,50."),
    "header": ("Header row", "tristate", "Whether the first line holds column names (default: "
               "detected)."),
    "skip": ("Lines to skip", "int", "Lines before the header (a preamble)."),
    "dateformat": ("Date format", "text", "strptime format of DATE columns, e.g. %d.%m.%Y."),
    "nullstr": ("NULL marker", "text", "The text that means NULL, e.g. NA."),
    "quote": ("Quote character", "text", "Default: \"."),
}
_TRISTATE = {AUTO: "detect", "yes": "yes", "no": "no"}


@action
def _set(source_id: str, field: str, k: str) -> None:
    p = state.pipeline()
    assert p is not None
    edit.update_source(p, source_id, **{field: st.session_state.get(k)})


@action
def _set_option(source_id: str, name: str, k: str, kind: str) -> None:
    p = state.pipeline()
    assert p is not None
    value: Any = st.session_state.get(k)
    if kind == "tristate":
        value = None if value == AUTO else value == "yes"
    elif kind == "yaml":
        value = loads(value) if str(value or "").strip() else None
    elif kind == "int":
        value = None if value in (None, 0) else int(value)
    edit.set_source_option(p, source_id, name, value)


@action
def _set_other(source_id: str, k: str) -> None:
    p = state.pipeline()
    assert p is not None
    src = p.sources[source_id]
    text = str(st.session_state.get(k) or "")
    other = loads(text) if text.strip() else {}
    if not isinstance(other, dict):
        edit.set_source_options(p, source_id, other)  # raises the one-line message
    shown = CSV_OPTIONS.keys() | {"types"} if src.resolved_format == "csv" else set()
    kept = {n: v for n, v in src.options.items() if n in shown}
    edit.set_source_options(p, source_id, {**kept, **other})


@action
def _set_incremental(source_id: str, k_by: str, k_lookback: str) -> None:
    p = state.pipeline()
    assert p is not None
    by = str(st.session_state.get(k_by) or "")
    lookback = str(st.session_state.get(k_lookback) or "").strip()
    edit.update_source(p, source_id, incremental={"by": by, "lookback": lookback} if by
                       else None)


def _incremental(sid: str, src: Source, cols: list[str]) -> None:
    """Incremental read (builder.plan.incremental): the column compared with the watermark and the
    lookback that re-reads late rows. Off: a full read every run."""
    inc = src.incremental or {}
    k_by = state.initial(state.key("src_inc_by", sid), inc.get("by", OFF) if inc else OFF)
    k_lb = state.initial(state.key("src_inc_lookback", sid), inc.get("lookback", ""))
    by_choices = [OFF, "event_time", *cols]
    if inc.get("by") and inc["by"] not in by_choices:
        by_choices.append(inc["by"])
    left, right = st.columns(2)
    left.selectbox("Incremental by", by_choices, key=k_by, on_change=_set_incremental,
                   args=(sid, k_by, k_lb),
                   format_func=lambda c: {OFF: "off (read everything)",
                                          "event_time": "event_time (the catalog's)"}.get(c, c),
                   help="Read only rows newer than the last successful run's newest value of "
                        "this column; the outputs must merge into staging tables.")
    right.text_input("Lookback", key=k_lb, on_change=_set_incremental, args=(sid, k_by, k_lb),
                     placeholder="e.g. 2 hours", help="Re-read this much before the watermark "
                     "so late-arriving rows are merged too.")



def draw(p: Pipeline, src: Source, plan: Plan) -> None:
    """Format and reader options of a file source; the table name of a catalog or staging
    source, and the PII columns it asks raw values of."""
    sid = src.id
    if src.postgres is not None:
        _draw_postgres(sid, src.postgres)
        return
    if src.path is None:
        field = "catalog" if src.catalog is not None else "staging"
        k = state.initial(state.key("src_table", sid), getattr(src, field) or "")
        st.text_input("Catalog entry" if field == "catalog" else "Staging table", key=k,
                      on_change=_set, args=(sid, field, k))
        if field == "catalog":
            cols = [c.name for c in plan.schema(sid) or ()]
            k = state.initial(state.key("src_pii", sid), list(src.pii_access))
            st.multiselect("Raw PII columns (pii_access)", cols + [
                c for c in src.pii_access if c not in cols], key=k, on_change=_set,
                args=(sid, "pii_access", k), help="PII columns are masked on read; list "
                "those this pipeline needs raw (the catalog entry must allow this pipeline).")
            _incremental(sid, src, cols)
        return
    k = state.initial(state.key("src_format", sid), src.format or AUTO)
    # Fixed labels (a label that changes loses the selection in the browser); the guess is
    # in the help.
    st.selectbox("Format", [AUTO, *FORMATS], key=k, on_change=_set, args=(sid, "format", k),
                 format_func=lambda f: f or "from the extension",
                 help=f"The extension says: {infer_format(src.path) or 'nothing'}.")
    with st.expander("Reader options", expanded=bool(src.options)):
        shown: set[str] = set()
        if src.resolved_format == "csv":
            shown = set(CSV_OPTIONS) | {"types"}
            grid = st.columns(3)
            for i, (name, (label, kind, help_)) in enumerate(CSV_OPTIONS.items()):
                _option_widget(grid[i % 3], sid, src, name, label, kind, help_)
            value = src.options.get("types")
            k = state.initial(state.key("src_opt", sid, "types"),
                              dumps(value).strip() if value else "")
            st.text_area("Column types (YAML, one 'column: TYPE' per line)", key=k,
                         on_change=_set_option, args=(sid, "types", k, "yaml"), height=80,
                         help="E.g. 'amount: DECIMAL(10,2)'; other columns are detected.")
        other = {n: v for n, v in src.options.items() if n not in shown}
        k = state.initial(state.key("src_opt_other", sid), dumps(other).strip() if other else "")
        st.text_area("Other reader options (YAML)", key=k, on_change=_set_other, args=(sid, k),
                     height=70, help=f"DuckDB read_{src.resolved_format} options by their "
                     "DuckDB names, e.g. 'all_varchar: true'.")


def _draw_postgres(sid: str, spec: dict[str, Any]) -> None:
    """The variable holding the connection string, and the table or query."""
    dsn = spec.get("dsn")
    env = dsn.get("env", "") if isinstance(dsn, dict) else ""
    k = state.initial(state.key("src_pg_env", sid), env)
    st.text_input("Environment variable with the connection string", key=k, on_change=_set,
                  args=(sid, "env", k))
    field = "table" if spec.get("table") is not None else "query"
    k = state.initial(state.key("src_pg", sid, field), str(spec.get(field) or ""))
    if field == "table":
        st.text_input("PostgreSQL table (schema.table)", key=k, on_change=_set,
                      args=(sid, field, k))
    else:
        st.text_area("PostgreSQL query", key=k, on_change=_set, args=(sid, field, k),
                     height=90)
    st.caption("Typed from PostgreSQL's catalog; every run and preview reads the rows again.")


def _option_widget(col: Any, sid: str, src: Source, name: str, label: str, kind: str,
                   help_: str) -> None:
    value = src.options.get(name)
    k = state.key("src_opt", sid, name)
    if kind == "tristate":
        state.initial(k, AUTO if value is None else ("yes" if value else "no"))
        col.selectbox(label, list(_TRISTATE), key=k, format_func=_TRISTATE.__getitem__,
                      on_change=_set_option, args=(sid, name, k, kind), help=help_)
    elif kind == "choice":
        options = [AUTO, ".", ","] + ([str(value)] if value and str(value) not in ".," else [])
        state.initial(k, AUTO if value is None else str(value))
        col.selectbox(label, options, key=k, on_change=_set_option, args=(sid, name, k, kind),
                      format_func=lambda c: c or "default (.)", help=help_)
    elif kind == "int":
        state.initial(k, int(value) if isinstance(value, int) else 0)
        col.number_input(label, key=k, min_value=0, step=1, on_change=_set_option,
                         args=(sid, name, k, kind), help=help_)
    else:
        state.initial(k, "" if value is None else str(value))
        col.text_input(label, key=k, on_change=_set_option, args=(sid, name, k, kind),
                       help=help_)
