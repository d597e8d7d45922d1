"""Keep exactly one row per key: the first one by `order_by`.

Rows are grouped by `keys`; from each group the first row by `order_by` is kept (NULLs sort
last unless an `order_by` item says otherwise), for example the latest version of each record
with `order_by: [updated_at desc]`. NULL key values form a group of their own, as in GROUP BY.
Ties are broken deterministically: rows that compare equal on `order_by` (or every row, when
`order_by` is left out) are ordered further by the remaining columns in column order (ascending,
NULLs last; MAP columns are skipped), so the same input always keeps the same row. The output
has the input's columns in their order; the order of the output rows is not defined.
"""

from __future__ import annotations

from pydantic import field_validator
from sqlglot import exp

from patterns.base import BuildContext, Pattern
from patterns.fields import (
    OrderItem,
    PatternParams,
    columns_field,
    distinct_names,
    order_by_field,
    order_specs,
)
from patterns.sql import alias, col, fresh_name, ident, literal, ordered, tie_breakers


class Params(PatternParams):
    keys: list[str] = columns_field("Columns that identify a record; one row is kept per value.")
    order_by: list[OrderItem] = order_by_field(
        "Which row of a group to keep: the first by this order, e.g. 'updated_at desc'. "
        "Optional: without it (and for ties) the remaining columns decide.", default=[])

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        return distinct_names(v, empty="list at least one key column")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    specs = order_specs(p.order_by)
    rn = fresh_name("_dy_row_number", rel.column_names)
    order = [ordered(s) for s in specs] + tie_breakers(
        rel, p.keys + [s.column for s in specs])
    if not order:  # every column is a key: any row of a group is the same row
        order = [exp.Ordered(this=literal(1), nulls_first=False)]
    window = exp.Window(this=exp.RowNumber(), partition_by=[col(k) for k in p.keys],
                        order=exp.Order(expressions=order))
    numbered = exp.select(exp.Star(), alias(window, rn)).from_(rel.table())
    return (exp.select(*(col(c) for c in rel.column_names))
            .from_(numbered.subquery(ident("numbered")))
            .where(exp.EQ(this=col(rn), expression=literal(1))))


PATTERN = Pattern(
    name="dedupe", category="Aggregate & window", arity=1, params=Params, build=build,
    doc=__doc__, example={"keys": ["customer_id"], "order_by": ["updated_at desc"]},
    keywords=("remove duplicates", "deduplicate", "duplicate rows", "unique", "latest record",
              "one row per key"),
    provides=("latest_per_key",),
)
