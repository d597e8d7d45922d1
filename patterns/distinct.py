"""Remove duplicate rows: each distinct row (or combination of `columns`) once.

Without `columns`, whole rows are compared and every column is kept (`SELECT DISTINCT *`). With
`columns`, the output has only those columns, in the listed order, with each distinct
combination of their values once, like Dataiku's Distinct recipe on a subset of columns; to keep
whole rows, one per key, use `dedupe`. NULLs count as equal to each other here (two rows that
differ only in being NULL in the same column are duplicates). The output order is unspecified.
"""

from __future__ import annotations

from pydantic import field_validator
from sqlglot import exp

from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, columns_field
from patterns.sql import col


class Params(PatternParams):
    columns: list[str] | None = columns_field(
        "Columns to compare and keep, in output order. Default: every column.", default=None)

    @field_validator("columns")
    @classmethod
    def _valid(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("list at least one column, or leave 'columns' out to compare "
                                 "whole rows")
            dup = next((c for c in v if v.count(c) > 1), None)
            if dup is not None:
                raise ValueError(f"column '{dup}' is listed twice")
        return v


def build(p: Params, ctx: BuildContext) -> exp.Query:
    items: list[exp.Expr] = [col(c) for c in p.columns] if p.columns else [exp.Star()]
    return exp.select(*items).distinct().from_(ctx.input.table())


PATTERN = Pattern(
    name="distinct", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"columns": ["customer_id", "country"]},
    keywords=("unique rows", "remove duplicates", "distinct values"),
)
