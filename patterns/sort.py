"""Order the rows by one or more columns.

`order_by` lists the sort columns, most significant first: `col`, `"col desc"`, or
`{column: col, descending: true, nulls_last: false}`. NULLs come last unless `nulls_last: false`
(in both directions, on every engine). Rows that are equal in every sort column come in an
unspecified order: add columns (e.g. an id) until the order is unique if it matters. The columns
are unchanged. The order belongs to this step's result (previews, an output written from it);
steps that read it (joins, aggregates, ...) do not keep it, so sort last. For the first rows
by an order, use `top_n` rather than `sort` followed by `limit`.
"""

from __future__ import annotations

from pydantic import field_validator
from sqlglot import exp

from patterns.base import BuildContext, Pattern
from patterns.fields import OrderItem, PatternParams, order_by_field, order_specs
from patterns.sql import ordered


class Params(PatternParams):
    order_by: list[OrderItem] = order_by_field(
        "Sort columns, most significant first: 'col', 'col desc' or {column, descending, "
        "nulls_last}.")

    @field_validator("order_by")
    @classmethod
    def _not_empty(cls, v: list[OrderItem]) -> list[OrderItem]:
        if not v:
            raise ValueError("list at least one column to sort by")
        names = [s.column for s in order_specs(v)]
        dup = next((c for c in names if names.count(c) > 1), None)
        if dup is not None:
            raise ValueError(f"column '{dup}' is listed twice")
        return v


def build(p: Params, ctx: BuildContext) -> exp.Query:
    return exp.select(exp.Star()).from_(ctx.input.table()).order_by(
        *(ordered(s) for s in order_specs(p.order_by)))


PATTERN = Pattern(
    name="sort", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"order_by": ["customer_id", "ts desc"]},
    keywords=("order by", "sort rows", "ascending", "descending"),
)
