"""Add columns together, counting NULL as 0 (dbt_utils.safe_add).

`columns` are the columns to add; each NULL counts as 0 (`COALESCE(a, 0) + COALESCE(b, 0)`), so
the sum is never NULL. The result is written to `as`: a new column at the end, or an existing one
replaced in its place. Its type is the columns' common type as SQL adds them (two INTEGER
columns give an INTEGER, a DOUBLE among them a DOUBLE); an INTEGER sum too big for its type is
an error on every engine, so cast a column to BIGINT first when sums may be that large.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._columns import with_columns
from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams, columns_field, distinct_names
from patterns.sql import col, is_number_type, literal


class Params(PatternParams):
    columns: list[str] = columns_field("The number columns to add (two or more).")
    as_: OutputName = Field(..., alias="as", description="Name of the sum column (an existing "
                            "name is replaced in place).")

    @field_validator("columns")
    @classmethod
    def _two_or_more(cls, v: list[str]) -> list[str]:
        distinct_names(v)
        if len(v) < 2:
            raise ValueError("list two or more columns to add")
        return v


def build(p: Params, ctx: BuildContext) -> exp.Query:
    for i, c in enumerate(p.columns):
        type_ = ctx.input.type_of(c)
        if not is_number_type(type_):
            raise ParamError(f"columns[{i}]", f"column '{c}' is {type_}, not a number. Cast it "
                             "first (cast pattern).")
    terms: list[exp.Expr] = [exp.Coalesce(this=col(c), expressions=[literal(0)])
                             for c in p.columns]
    total = terms[0]
    for term in terms[1:]:
        total = exp.Add(this=total, expression=term)
    assert p.as_ is not None
    return with_columns(ctx, {p.as_: total}, "as")


PATTERN = Pattern(
    name="safe_add", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"columns": ["base_fee", "surcharge", "tip"], "as": "total"},
    keywords=("add", "sum columns", "plus", "total of columns", "nulls as zero"),
)
