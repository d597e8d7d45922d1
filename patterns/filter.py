"""Keep the rows where a condition is true.

`where` is a SQL boolean expression over the input's columns, in DuckDB's dialect, for example
`amount > 0 AND country = 'DE'`. Rows where it is false or NULL are dropped (as in SQL's WHERE).
Pipeline params can be used as values: `ts >= {{ min_day }}`.
"""

from __future__ import annotations

from sqlglot import exp

from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, sql_field


class Params(PatternParams):
    where: str = sql_field("SQL boolean expression; rows where it is true are kept.")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    return exp.select(exp.Star()).from_(ctx.input.table()).where(ctx.expr(p.where, "where"))


PATTERN = Pattern(
    name="filter", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"where": "amount > 0"},
    keywords=("where", "keep rows", "remove rows", "condition", "subset"),
)
