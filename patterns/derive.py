"""Add computed columns, or replace existing ones in place, from SQL expressions.

`columns` maps a column name to a SQL expression over the input's columns (DuckDB dialect), e.g.
`{total: "price * qty", country: "upper(country)"}`. A new name is added after the input's
columns, in the order given; an existing name is replaced in its place. Every expression sees
the input's columns only, not the other columns derived in the same step (`{a: "x + 1",
b: "a * 2"}` uses the input's `a`): chain two derive steps to build on a derived column.
Expressions are per row: aggregates such as `sum(x)` are refused (use `aggregate`), window
functions (`... OVER (...)`) are allowed. NULLs follow SQL: most operators give NULL when an
operand is NULL; use `coalesce` to choose a fallback. Pipeline params work as values:
`amount * {{ rate }}`.
"""

from __future__ import annotations

from pydantic import field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, sql_map_field
from patterns.sql import alias, col


class Params(PatternParams):
    columns: dict[str, str] = sql_map_field(
        "Column name -> SQL expression over the input's columns. An existing name is replaced "
        "in place; a new name is added at the end.")

    @field_validator("columns")
    @classmethod
    def _valid(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("give at least one 'name: expression' pair")
        seen: dict[str, str] = {}
        for name, text in v.items():
            if not name.strip():
                raise ValueError("a column name is empty")
            if not str(text).strip():
                raise ValueError(f"the expression for '{name}' is empty")
            if name.lower() in seen:
                raise ValueError(f"'{seen[name.lower()]}' and '{name}' name the same column "
                                 "(names are case-insensitive)")
            seen[name.lower()] = name
        return v


def _per_row(tree: exp.Expr, name: str) -> None:
    for agg in tree.find_all(exp.AggFunc):
        if not agg.find_ancestor(exp.Window):
            raise ParamError(f"columns.{name}", f"'{name}' uses the aggregate "
                             f"'{agg.sql(dialect='duckdb')}'; derive computes one value per "
                             "row. Use the 'aggregate' pattern, or a window: "
                             "'sum(x) OVER (PARTITION BY k)'.")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    existing = {c.lower(): c for c in ctx.input.column_names}
    exprs: dict[str, exp.Expr] = {}
    for name, text in p.columns.items():
        same = existing.get(name.lower())
        if same is not None and same != name:
            raise ParamError(f"columns.{name}", f"'{name}' differs only in case from the "
                             f"existing column '{same}'. Write '{same}' to replace it, or "
                             "choose another name.")
        tree = ctx.expr(str(text), "columns")
        _per_row(tree, name)
        exprs[name] = tree
    items: list[exp.Expr] = [alias(exprs[c], c) if c in exprs else col(c)
                             for c in ctx.input.column_names]
    items += [alias(e, n) for n, e in exprs.items() if n.lower() not in existing]
    return exp.select(*items).from_(ctx.input.table())


PATTERN = Pattern(
    name="derive", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"columns": {"total": "price * qty"}},
    keywords=("new column", "add column", "calculated column", "formula", "compute", "expression"),
)
