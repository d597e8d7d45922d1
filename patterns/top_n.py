"""Keep the first `n` rows of each partition by `order_by` (e.g. the 3 biggest orders per user).

Rows are grouped by `partition_by` (the whole input is one group when it is empty) and numbered
by `order_by` (NULLs sort last unless an `order_by` item says otherwise); rows numbered 1 to `n`
are kept, so each group yields exactly `n` rows, or all of its rows when it has fewer. Ties at the
boundary are cut, not kept together: rows that compare equal on `order_by` are ordered further by
the remaining columns in column order (ascending, NULLs last; MAP columns are skipped), so the
result is deterministic. NULL values in `partition_by` form a group of their own, as in GROUP BY.
The output has the input's columns (no rank column); the order of the output rows is not defined.
"""

from __future__ import annotations

from pydantic import Field, field_validator
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
    partition_by: list[str] = columns_field(
        "Columns that define the groups; the first n rows of each group are kept. "
        "Empty: the first n rows overall.", default=[])
    order_by: list[OrderItem] = order_by_field(
        "Which rows come first, e.g. 'amount desc'. Ties are cut by the remaining columns.")
    n: int = Field(description="How many rows to keep per group (1 or more).", ge=1,
                   le=2**63 - 1)

    @field_validator("order_by")
    @classmethod
    def _order_by(cls, v: list[OrderItem]) -> list[OrderItem]:
        if not v:
            raise ValueError("list at least one column to order by")
        return v

    @field_validator("partition_by")
    @classmethod
    def _partition_by(cls, v: list[str]) -> list[str]:
        return distinct_names(v)


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    specs = order_specs(p.order_by)
    rn = fresh_name("_dy_row_number", rel.column_names)
    order = [ordered(s) for s in specs] + tie_breakers(
        rel, p.partition_by + [s.column for s in specs])
    window = exp.Window(this=exp.RowNumber(), partition_by=[col(c) for c in p.partition_by],
                        order=exp.Order(expressions=order))
    numbered = exp.select(exp.Star(), alias(window, rn)).from_(rel.table())
    return (exp.select(*(col(c) for c in rel.column_names))
            .from_(numbered.subquery(ident("numbered")))
            .where(exp.LTE(this=col(rn), expression=literal(p.n))))


PATTERN = Pattern(
    name="top_n", category="Aggregate & window", arity=1, params=Params, build=build,
    doc=__doc__, example={"partition_by": ["user_id"], "order_by": ["amount desc"], "n": 3},
    keywords=("top n", "best", "largest", "first per group", "rank", "highest"),
)
