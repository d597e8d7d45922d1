"""Column checks of pattern params: every column-typed param (``column_field`` and friends)
against the schema of the input it refers to, before the pattern's build function runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlglot import exp

from builder.errors import did_you_mean
from builder.pipeline.pydantic_errors import pydantic_messages
from builder.plan.types import ParamError, ParamErrors, Relation
from patterns.base import Pattern
from patterns.fields import field_kind, order_specs
from patterns.sql import checked_expression


def resolve_param_columns(pattern: Pattern, params: Any, rels: list[Relation]) -> Any:
    """Check every column-typed top-level param against the input schema it refers to.

    Names match case-insensitively, as DuckDB, Spark and dbt_utils match them: ``FIELD_3``
    finds the column ``field_3``. Returns the params with each name in the input's own spelling
    (validated again, so a pattern's own checks see the resolved names).
    """
    model = pattern.params
    updates: dict[str, Any] = {}
    for name in model.model_fields:
        kind, inp = field_kind(model, name)
        if kind is None:
            continue
        value = getattr(params, name)
        if value is None:
            continue
        targets = rels if inp is None else ([rels[inp]] if inp < len(rels) else [])
        if not targets:
            continue
        if kind in ("sql", "sql_map"):
            exprs = [value] if kind == "sql" else list(value.values())
            for text in exprs:
                _check_sql_columns(str(text), name, targets)
            continue
        if kind == "column":
            names = [value]
        elif kind in ("columns", "column_map"):
            names = list(value)
        elif kind == "order_by":
            names = [s.column for s in order_specs(value)]
        else:
            names = []
        resolved = [_resolve_column(c, targets, name if kind in ("column", "column_map")
                                    else f"{name}[{i}]") for i, c in enumerate(names)]
        if resolved == names:
            continue
        key = model.model_fields[name].alias or name
        if kind == "column":
            updates[key] = resolved[0]
        elif kind == "columns":
            updates[key] = resolved
        elif kind == "column_map":
            updates[key] = dict(zip(resolved, value.values()))
        else:
            updates[key] = [{**s.model_dump(), "column": r}
                            for s, r in zip(order_specs(value), resolved)]
    if not updates:
        return params
    try:
        return model.model_validate({**params.model_dump(by_alias=True, exclude_unset=True),
                                     **updates})
    except ValidationError as e:
        raise ParamErrors([ParamError(p, m) for p, m in pydantic_messages(model, e)]) from None


def _resolve_column(name: str, rels: list[Relation], param: str) -> str:
    """``name`` as one of ``rels``' columns spells it (exact match first, then ignoring case)."""
    cols = [x for r in rels for x in r.column_names]
    if name in cols:
        return name
    where = f"input '{rels[0].name}'" if len(rels) == 1 else "the inputs"
    # An input cannot hold two names that differ only in case (DuckDB refuses them).
    same = [c for c in cols if c.lower() == name.lower()]
    if same:
        return same[0]
    raise ParamError(param, f"column '{name}' not found in {where}."
                     + (did_you_mean(name, cols) or " Columns: " + ", ".join(cols[:12]) + "."))


def _check_sql_columns(text: str, param: str, rels: list[Relation]) -> None:
    """The statement check, then unknown column names, of a SQL expression param."""
    tree, masked = checked_expression(text, [r.name for r in rels], param)
    placeholders = {ref.placeholder for ref in masked.refs}
    cols = [c for r in rels for c in r.column_names]
    lowered = {c.lower() for c in cols}
    local_aliases = {a.alias for a in tree.find_all(exp.Alias)}
    for column in tree.find_all(exp.Column):
        name = column.name
        if not name or column.table or name in cols or name in local_aliases \
                or name in placeholders:
            continue
        if not column.this.quoted and name.lower() in lowered:
            continue  # DuckDB resolves unquoted names case-insensitively
        if isinstance(column.parent, exp.Lambda) or column.find_ancestor(exp.Lambda):
            continue
        where = f"input '{rels[0].name}'" if len(rels) == 1 else "the inputs"
        raise ParamError(param, f"column '{name}' not found in {where}."
                         + (did_you_mean(name, cols) or " Columns: " + ", ".join(cols[:12]) + "."))
