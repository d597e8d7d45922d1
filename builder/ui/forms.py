"""Param forms generated from a pattern's param model.

Each field becomes the widget its type asks for: column fields (see
:func:`patterns.fields.field_kind`) become pickers filled from the input's propagated schema,
``Literal`` choices select boxes, ``bool`` checkboxes, numbers number inputs, SQL expressions
text areas, lists of nested models (aggregations, checks, order_by items) editable tables.
Anything else is edited as a YAML snippet, so every pattern gets a working form.

Widgets write into ``step.params`` only when a value really changes, and a value set back to its
default is removed again, so a loaded pipeline saves byte-identical until the user edits it.
"""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from builder.errors import ConfigError, Problem
from builder.pipeline.model import Step, plain
from builder.pipeline.yamlio import dumps, loads
from builder.plan.compiler import Plan
from builder.ui import state
from builder.ui.messages import problem_text
from patterns.base import Pattern
from patterns.fields import OrderSpec, field_kind, order_specs

NONE = ""  # the "no value" option of optional select boxes


@dataclass
class FieldSpec:
    """What the form needs to know about one param field."""

    name: str
    kind: str  # column, columns, column_map, order_by, sql, sql_map, choice, bool, int,
    #            float, text, text_list, rows, yaml
    required: bool
    default: Any
    description: str
    input: int | None = None
    choices: list[Any] | None = None
    row_model: type[BaseModel] | None = None
    optional: bool = False  # None is an accepted value


def _unwrap_optional(ann: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) < len(typing.get_args(ann)):
            return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), True
    return ann, False


def _default(info: Any) -> Any:
    if info.is_required():
        return None
    if info.default_factory is not None:
        return info.default_factory()
    return None if info.default is PydanticUndefined else info.default


def field_specs(model: type[BaseModel]) -> list[FieldSpec]:
    """One :class:`FieldSpec` per field of a param model, in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        kind, inp = field_kind(model, name)
        ann, optional = _unwrap_optional(info.annotation)
        spec = FieldSpec(name=info.alias or name, kind="yaml", required=info.is_required(),
                         default=_default(info), description=info.description or "",
                         input=inp, optional=optional)
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if kind is not None:
            spec.kind = kind
            if kind == "column_map" and not (origin is dict and args and args[1] is str):
                spec.kind = "yaml"
        elif origin is typing.Literal:
            spec.kind, spec.choices = "choice", list(args)
        elif ann is bool:
            spec.kind = "bool"
        elif ann is int:
            spec.kind = "int"
        elif ann is float:
            spec.kind = "float"
        elif ann is str:
            spec.kind = "text"
        elif origin is list and args and args[0] is str:
            spec.kind = "text_list"
        elif origin is list and args and isinstance(args[0], type) and \
                issubclass(args[0], BaseModel) and _flat_model(args[0]):
            spec.kind, spec.row_model = "rows", args[0]
        out.append(spec)
    return out


def _flat_model(model: type[BaseModel]) -> bool:
    """True when every field of a nested model fits in one table cell."""
    for name, info in model.model_fields.items():
        ann, _ = _unwrap_optional(info.annotation)
        kind, _inp = field_kind(model, name)
        if kind not in (None, "column", "sql"):
            return False
        if kind is None and not (ann in (str, int, float, bool) or
                                 typing.get_origin(ann) is typing.Literal):
            return False
    return True


# ---- columns from the propagated schema --------------------------------------------------

def input_columns(plan: Plan, inputs: list[str], index: int | None) -> list[tuple[str, str]]:
    """(name, type) of input ``index`` of a step (None: of all its inputs, first seen wins)."""
    chosen = inputs if index is None else inputs[index:index + 1]
    seen: dict[str, str] = {}
    for node in chosen:
        for c in plan.schema(node) or ():
            seen.setdefault(c.name, c.type)
    return list(seen.items())


# ---- writing back ------------------------------------------------------------------------

def _write(step: Step, spec: FieldSpec, new: Any) -> bool:
    """Store a changed value in the model; a value equal to the default is removed again."""
    current = step.params.get(spec.name, spec.default)
    if _same(new, current):
        return False
    if new is None or (not spec.required and _same(new, spec.default)):
        step.params.pop(spec.name, None)
    else:
        step.params[spec.name] = new
    return True


def _same(a: Any, b: Any) -> bool:
    return bool(a == b) and type(a) is type(b) or (a in (None, []) and b in (None, []))


# ---- the form ----------------------------------------------------------------------------

def param_form(pattern: Pattern, step: Step, plan: Plan, inputs: list[str]) -> None:
    """Draw the form for a pattern step; problems of a param show under its widget."""
    problems = [p for p in plan.problems if p.step == step.id]
    by_param: dict[str, list[Problem]] = {}
    for p in problems:
        top = re.split(r"[.\[]", p.param)[0] if p.param else ""
        by_param.setdefault(top, []).append(p)
    specs = field_specs(pattern.params)
    known = {s.name for s in specs}
    for spec in specs:
        try:
            _field_widget(spec, step, plan, inputs)
        except ConfigError as e:  # a YAML snippet that does not parse
            st.error(str(e.problems[0].message))
        for p in by_param.get(spec.name, []):
            (st.warning if p.severity == "warning" else st.error)(problem_text(p))
    for name in [n for n in by_param if n and n not in known]:
        for p in by_param[name]:
            st.error(problem_text(p))


def _label(spec: FieldSpec) -> str:
    return spec.name + ("" if not spec.required else " *")



def _field_widget(spec: FieldSpec, step: Step, plan: Plan, inputs: list[str]) -> None:
    k = state.key("param", step.id, spec.name)
    value = step.params.get(spec.name, spec.default)
    help_ = spec.description or None
    cols = input_columns(plan, inputs, spec.input)
    names = [c for c, _ in cols]
    types_ = dict(cols)

    def fmt(c: Any) -> str:
        # Only the name: a label carrying the column's type would change when the input's
        # schema does, and the browser would then send back a label that no longer exists
        # (Streamlit resets such a selection: a silently changed param). Types are in the help.
        return "(none)" if c == NONE or c is None else str(c)

    if names and spec.kind in ("column", "columns", "join_keys"):
        help_ = (help_ or "") + "\n\nInput columns: " + ", ".join(
            f"{c} ({types_[c]})" for c in names[:60])

    if spec.kind == "column":
        options = ([NONE] if not spec.required else []) + names
        if value not in options and value is not None:
            options.append(value)
        state.initial(k, value if value is not None else (NONE if not spec.required else None))
        new = st.selectbox(_label(spec), options, key=k, help=help_, format_func=fmt,
                           placeholder="choose a column")
        _write(step, spec, None if new == NONE else new)
    elif spec.kind == "columns":
        current = [str(v) for v in value] if isinstance(value, list) else []
        options = names + [c for c in current if c not in names]
        state.initial(k, current)
        picked = st.multiselect(_label(spec), options, key=k, help=help_, format_func=fmt,
                                placeholder="choose columns")
        _write(step, spec, list(picked))
    elif spec.kind == "choice":
        choices = list(spec.choices or [])
        options = ([NONE] if spec.optional or not spec.required and spec.default is None
                   else []) + choices
        if value is not None and value not in options:
            options.append(value)
        state.initial(k, value if value is not None else (NONE if NONE in options else None))
        new = st.selectbox(_label(spec), options, key=k, help=help_,
                           format_func=lambda c: "(none)" if c == NONE else str(c))
        _write(step, spec, None if new == NONE else new)
    elif spec.kind == "bool":
        state.initial(k, bool(value))
        _write(step, spec, st.checkbox(_label(spec), key=k, help=help_))
    elif spec.kind in ("int", "float"):
        cast = int if spec.kind == "int" else float
        state.initial(k, None if value is None else cast(value))
        number = st.number_input(_label(spec), key=k, help=help_, value=None,
                                 step=1 if spec.kind == "int" else None)
        _write(step, spec, None if number is None else cast(number))
    elif spec.kind in ("sql", "text"):
        state.initial(k, "" if value is None else str(value))
        if spec.kind == "sql":
            new = st.text_area(_label(spec), key=k, help=(help_ or "") + " SQL expression "
                               "(DuckDB dialect) over the input's columns.", height=80)
            if names:
                st.caption("Columns: " + ", ".join(names[:40]))
        else:
            new = st.text_input(_label(spec), key=k, help=help_)
        _write(step, spec, new if new.strip() else None)
    elif spec.kind == "text_list":
        state.initial(k, ", ".join(value or []))
        text = st.text_input(_label(spec) + " (comma-separated)", key=k, help=help_)
        _write(step, spec, [t.strip() for t in text.split(",") if t.strip()] or None)
    elif spec.kind == "join_keys" and not isinstance(value, dict):
        # Shared names are the common case; a {left: right} mapping is edited as YAML.
        left = {c for c, _ in input_columns(plan, inputs, 0)}
        shared = [c for c, _ in input_columns(plan, inputs, 1) if c in left]
        current = [str(v) for v in value] if isinstance(value, list) else []
        state.initial(k, current)
        picked = st.multiselect(_label(spec), shared + [c for c in current if c not in shared],
                                key=k, help=(help_ or "") + " Only columns both inputs have are "
                                "listed; for keys with different names write a mapping in YAML.",
                                placeholder="choose key columns")
        _write(step, spec, list(picked))
    elif spec.kind == "order_by":
        _order_by_editor(spec, step, k, value, names, help_)
    elif spec.kind in ("sql_map", "column_map"):
        _map_editor(spec, step, k, value, names, help_)
    elif spec.kind == "rows":
        _rows_editor(spec, step, k, value, names, help_)
    else:
        _yaml_editor(spec, step, k, value, help_)


def _clean(v: Any) -> Any:
    """A cell value as plain data (empty cells are None)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str) and not v.strip():
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


def _editor(k: str, rows: list[dict[str, Any]], columns: list[str], label: str,
            help_: str | None, config: dict[str, Any]) -> list[dict[str, Any]]:
    """An add/remove-rows table; the rows it started with stay fixed for this generation."""
    base_key = k + ":base"
    if base_key not in st.session_state:
        st.session_state[base_key] = pd.DataFrame(rows, columns=columns).astype(object)
    # The required mark stays outside the bold: '**name ***' renders as stray asterisks.
    name, star = (label[:-2], " \\*") if label.endswith(" *") else (label, "")
    st.markdown(f"**{name}**{star}" + ("" if not help_ else f"  \n<small>{help_}</small>"),
                unsafe_allow_html=True)
    df = st.data_editor(st.session_state[base_key], key=k, num_rows="dynamic",
                        column_config=config, hide_index=True, width="stretch")
    out = []
    for rec in df.to_dict("records"):
        row = {c: _clean(rec.get(c)) for c in columns}
        if any(v is not None for v in row.values()):
            out.append(row)
    return out


def _order_by_editor(spec: FieldSpec, step: Step, k: str, value: Any, names: list[str],
                     help_: str | None) -> None:
    items = value if isinstance(value, list) else ([value] if value else [])
    try:
        specs = order_specs([OrderSpec(**i) if isinstance(i, dict) else i for i in items])
    except (TypeError, ValueError):
        _yaml_editor(spec, step, k, value, help_)
        return
    rows = [{"column": s.column, "descending": s.descending, "nulls_last": s.nulls_last}
            for s in specs]
    config = {"column": st.column_config.SelectboxColumn("column", options=names or None,
                                                         required=True),
              "descending": st.column_config.CheckboxColumn("descending", default=False),
              "nulls_last": st.column_config.CheckboxColumn("nulls last", default=True)}
    new_rows = _editor(k, rows, ["column", "descending", "nulls_last"], _label(spec), help_,
                       config)
    if new_rows == rows:
        return
    new: list[Any] = []
    for r in new_rows:
        if not r.get("column"):
            continue
        desc, nulls_last = bool(r.get("descending")), r.get("nulls_last") is not False
        if nulls_last:
            new.append(f"{r['column']} desc" if desc else str(r["column"]))
        else:
            new.append({"column": r["column"], "descending": desc, "nulls_last": False})
    _write(step, spec, new)


def _map_editor(spec: FieldSpec, step: Step, k: str, value: Any, names: list[str],
                help_: str | None) -> None:
    if value is not None and not isinstance(value, dict):
        _yaml_editor(spec, step, k, value, help_)
        return
    rows = [{"name": str(a), "value": "" if b is None else str(b)}
            for a, b in (value or {}).items()]
    key_col = (st.column_config.SelectboxColumn("column", options=names or None, required=True)
               if spec.kind == "column_map" else st.column_config.TextColumn("name",
                                                                              required=True))
    val_col = st.column_config.TextColumn("SQL expression" if spec.kind == "sql_map" else "value")
    new_rows = _editor(k, rows, ["name", "value"], _label(spec), help_,
                       {"name": key_col, "value": val_col})
    if [(r["name"], r["value"] or "") for r in new_rows] == \
            [(r["name"], r["value"]) for r in rows]:
        return
    _write(step, spec, {str(r["name"]): r["value"] for r in new_rows if r.get("name")})


def item_keys(model: type[BaseModel]) -> dict[str, str]:
    """YAML key -> field name of a nested item model (``as`` -> ``as_``): the table's columns
    and the keys written are the documented YAML keys, never Python's field names."""
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def table_keys(model: type[BaseModel], items: list[dict[str, Any]],
               more: bool = False) -> list[str]:
    """The columns an items table shows: every key, except optional ones with a default of
    their own (a string_agg ``separator``) while no item sets them, unless ``more``."""
    out = []
    for key, name in item_keys(model).items():
        info = model.model_fields[name]
        rare = not info.is_required() and _default(info) is not None
        if more or not rare or any(key in i for i in items):
            out.append(key)
    return out


def items_to_rows(items: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Param items as table rows (one cell per key)."""
    return [{k: _clean(i.get(k)) for k in keys} for i in items]


def rows_to_items(model: type[BaseModel], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows back to param items, keyed by the YAML keys; empty cells and cells equal to
    the field's default are left out so the YAML stays as short as a hand-written one."""
    fields = item_keys(model)
    out = []
    for r in rows:
        item = {}
        for k, v in r.items():
            info = model.model_fields[fields[k]]
            if v is None or (not info.is_required() and v == _default(info)):
                continue
            item[k] = v
        if item:
            out.append(item)
    return out


def _rows_editor(spec: FieldSpec, step: Step, k: str, value: Any, names: list[str],
                 help_: str | None) -> None:
    model = spec.row_model
    assert model is not None
    items = value if isinstance(value, list) else []
    if not all(isinstance(i, dict) for i in items):
        _yaml_editor(spec, step, k, value, help_)
        return
    fields = item_keys(model)
    hidden = [key for key in fields if key not in table_keys(model, items)]
    more = bool(hidden) and st.checkbox(f"More columns: {', '.join(hidden)}", key=k + ":more")
    keys = table_keys(model, items, more=more)
    config: dict[str, Any] = {}
    for key in keys:
        info = model.model_fields[fields[key]]
        ann, _ = _unwrap_optional(info.annotation)
        kind, _inp = field_kind(model, fields[key])
        desc = info.description
        if kind == "column":
            config[key] = st.column_config.SelectboxColumn(key, options=names or None,
                                                           help=desc)
        elif typing.get_origin(ann) is typing.Literal:
            config[key] = st.column_config.SelectboxColumn(
                key, options=list(typing.get_args(ann)), help=desc)
        elif ann is bool:
            config[key] = st.column_config.CheckboxColumn(key, help=desc)
        elif ann in (int, float):
            config[key] = st.column_config.NumberColumn(key, help=desc)
        else:
            config[key] = st.column_config.TextColumn(key, help=desc)
    rows = items_to_rows(items, keys)
    # The shown columns are part of the key: a table with other columns is another table.
    new_rows = _editor(k + ":" + ",".join(keys), rows, keys, _label(spec), help_, config)
    if new_rows == rows:
        return
    # Hidden columns are ones no item sets (see table_keys): nothing is dropped here.
    _write(step, spec, rows_to_items(model, new_rows))


def _yaml_editor(spec: FieldSpec, step: Step, k: str, value: Any, help_: str | None) -> None:
    state.initial(k, "" if value is None else dumps(value).strip())
    text = st.text_area(_label(spec) + " (YAML)", key=k, help=help_, height=100)
    if not text.strip():
        _write(step, spec, None)
        return
    _write(step, spec, plain(loads(text)))

