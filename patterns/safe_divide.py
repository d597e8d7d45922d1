"""Divide one expression by another, NULL instead of an error when the denominator is 0.

As dbt_utils.safe_divide: `numerator / NULLIF(denominator, 0)`, so a 0 or NULL denominator (or a
NULL numerator) gives NULL. Both are SQL expressions over the input's columns (a column name is
the simplest one), e.g. `numerator: revenue - cost`, `denominator: revenue`. The result is a
DOUBLE on every engine (DuckDB and Spark type a decimal division differently), written to `as`:
a new column at the end, or an existing one replaced in its place.
"""

from __future__ import annotations

from pydantic import Field
from sqlglot import exp

from patterns._columns import with_columns
from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams, sql_field
from patterns.sql import literal


class Params(PatternParams):
    numerator: str = sql_field("What to divide: a column or SQL expression, e.g. 'revenue'.")
    denominator: str = sql_field("What to divide by: a column or SQL expression; 0 or NULL "
                                 "gives NULL.")
    as_: OutputName = Field(..., alias="as", description="Name of the result column (an "
                            "existing name is replaced in place).")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    numerator = exp.cast(exp.paren(ctx.expr(p.numerator, "numerator"), copy=False),
                         exp.DataType.build("DOUBLE"))
    denominator = exp.Nullif(this=exp.paren(ctx.expr(p.denominator, "denominator"), copy=False),
                             expression=literal(0))
    assert p.as_ is not None
    return with_columns(ctx, {p.as_: exp.Div(this=numerator, expression=denominator)}, "as")


PATTERN = Pattern(
    name="safe_divide", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"numerator": "clicks", "denominator": "impressions", "as": "ctr"},
    keywords=("divide", "division", "ratio", "divide by zero", "percentage", "rate"),
)
