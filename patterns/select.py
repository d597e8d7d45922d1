"""Keep only the listed columns, in the listed order.

Every other column is dropped. To drop a few columns and keep the rest, use `drop`; to rename,
use `rename`. `prefix` and `suffix` add text to the start and end of every kept column's name,
as dbt_utils.star does (e.g. `prefix: customer_` turns `id` into `customer_id`).
"""

from __future__ import annotations

from pydantic import Field, field_validator
from sqlglot import exp

from patterns._columns import renamed
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, columns_field, distinct_names


class Params(PatternParams):
    columns: list[str] = columns_field("Columns to keep, in output order.")
    prefix: str = Field("", description="Text added to the start of every column's name.")
    suffix: str = Field("", description="Text added to the end of every column's name.")

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, v: list[str]) -> list[str]:
        return distinct_names(v, empty="list at least one column to keep")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    return exp.select(*(renamed(c, p.prefix, p.suffix) for c in p.columns)).from_(
        ctx.input.table())



PATTERN = Pattern(
    name="select", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"columns": ["user_id", "ts"]},
    keywords=("choose columns", "keep columns", "reorder columns", "pick columns"),
)
