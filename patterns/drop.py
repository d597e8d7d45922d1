"""Remove the listed columns and keep all the others, in their order.

The remaining columns keep their names, types and positions. Dropping every column is an error
(a table needs at least one column); to keep a few columns instead, use `select`. `prefix` and
`suffix` add text to the start and end of every remaining column's name, as dbt_utils.star does
with `except` (e.g. `suffix: _old` turns `amount` into `amount_old`).
"""

from __future__ import annotations

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._columns import renamed
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, columns_field, distinct_names


class Params(PatternParams):
    columns: list[str] = columns_field("Columns to remove.")
    prefix: str = Field("", description="Text added to the start of every kept column's name.")
    suffix: str = Field("", description="Text added to the end of every kept column's name.")

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, v: list[str]) -> list[str]:
        return distinct_names(v, empty="list at least one column to drop")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    dropped = set(p.columns)
    keep = [c for c in ctx.input.column_names if c not in dropped]
    if not keep:
        raise ParamError("columns", "cannot drop every column; keep at least one.")
    return exp.select(*(renamed(c, p.prefix, p.suffix) for c in keep)).from_(
        ctx.input.table())


PATTERN = Pattern(
    name="drop", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"columns": ["raw_payload"]},
    keywords=("remove columns", "delete columns", "exclude columns"),
)
