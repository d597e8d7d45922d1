"""Keep only the listed columns, in the listed order.

Every other column is dropped. To drop a few columns and keep the rest, use `drop`; to rename,
use `rename`.
"""

from __future__ import annotations

from pydantic import field_validator
from sqlglot import exp

from patterns.base import BuildContext, Pattern, PatternParams, col, columns_field, distinct_names


class Params(PatternParams):
    columns: list[str] = columns_field("Columns to keep, in output order.")

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, v: list[str]) -> list[str]:
        return distinct_names(v, empty="list at least one column to keep")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    return exp.select(*(col(c) for c in p.columns)).from_(ctx.input.table())


PATTERN = Pattern(
    name="select", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"columns": ["user_id", "ts"]},
    keywords=("choose columns", "keep columns", "reorder columns", "pick columns"),
)
