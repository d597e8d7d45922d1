"""Number each value's bucket among equal-width buckets between a minimum and a maximum.

As dbt_utils.width_bucket (modelled on Snowflake's and PostgreSQL's `width_bucket`): the range
from `min_value` to `max_value` is cut into `num_buckets` buckets of equal width, numbered 1 to
`num_buckets`; each bucket includes its lower edge and excludes its upper one. A value below
`min_value` is in bucket 0, a value at or above `max_value` in bucket `num_buckets + 1`, and
NULL stays NULL. E.g. `min_value: 0, max_value: 100, num_buckets: 10` puts 0 and 9.99 in bucket
1, 10 in bucket 2 and 100 in bucket 11. The bucket is a BIGINT written to `as` (default
`<column>_bucket`): a new column at the end, or an existing one replaced in its place.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._columns import with_columns
from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams, column_field
from patterns.sql import col, is_number_type, literal


class Params(PatternParams):
    column: str = column_field("The number column to put in buckets.")
    min_value: float = Field(description="Lower edge of the first bucket.")
    max_value: float = Field(description="Upper edge of the last bucket (above min_value).")
    num_buckets: int = Field(description="How many buckets between min_value and max_value.",
                             ge=1)
    as_: OutputName = Field(None, alias="as", description="Name of the bucket column (default "
                            "'<column>_bucket').")

    @model_validator(mode="after")
    def _range(self) -> Params:
        if self.max_value <= self.min_value:
            raise ValueError(f"max_value ({self.max_value:g}) must be above min_value "
                             f"({self.min_value:g})")
        return self


def build(p: Params, ctx: BuildContext) -> exp.Query:
    type_ = ctx.input.type_of(p.column)
    if not is_number_type(type_):
        raise ParamError("column", f"column '{p.column}' is {type_}, not a number. Cast it "
                         "first (cast pattern).")
    value = exp.cast(col(p.column), exp.DataType.build("DOUBLE"))
    # (value - min) * n / (max - min): the same DOUBLE arithmetic on both engines. A value just
    # below max_value stays in the last bucket when rounding lands it on n.
    scaled = exp.Div(this=exp.Mul(this=exp.paren(exp.Sub(this=value.copy(),
                                                         expression=literal(p.min_value))),
                                  expression=literal(p.num_buckets)),
                     expression=literal(p.max_value - p.min_value))
    bigint = exp.DataType.build("BIGINT")
    bucket = exp.Case(ifs=[
        exp.If(this=exp.LT(this=value.copy(), expression=literal(p.min_value)),
               true=exp.cast(literal(0), bigint)),
        exp.If(this=exp.GTE(this=value.copy(), expression=literal(p.max_value)),
               true=exp.cast(literal(p.num_buckets + 1), bigint)),
        exp.If(this=exp.GTE(this=scaled.copy(), expression=literal(p.num_buckets)),
               true=exp.cast(literal(p.num_buckets), bigint)),
    ], default=exp.cast(exp.Add(this=exp.Floor(this=scaled), expression=literal(1)), bigint))
    return with_columns(ctx, {p.as_ or f"{p.column}_bucket": bucket}, "as")


PATTERN = Pattern(
    name="width_bucket", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"column": "amount", "min_value": 0, "max_value": 1000,
                          "num_buckets": 10, "as": "amount_bucket"},
    keywords=("bins", "histogram", "buckets", "ranges", "discretize", "band"),
)
