"""Turn the values of one column into columns: one row per index, one column per listed value.

For each distinct combination of the `index` columns there is one output row (NULL index values
form their own group, as in GROUP BY). For each entry of `values` there is one output column,
named after the value as text (`2024`, `true`, `2024-01-31`), holding `function` of `value` over
the rows of that index whose `column` equals the entry. The output columns are the index columns,
then one column per listed value, in the listed order. Values of `column` that are not listed are
ignored (their rows still create their index row); a listed value that never occurs gives an
all-NULL column. A combination with no rows is NULL for every function, `count` included (a
combination whose rows all hold NULL in `value` counts 0, so the two stay apart). NULLs in
`value` are skipped by every function, as in SQL; NULL cannot be listed in
`values`. `sum` over integer columns is a BIGINT on every engine. With an empty `index` the
result is a single row. The list of values is fixed when the pipeline is written, so the output
columns are known before anything runs (it is compiled as conditional aggregation, which every
engine runs the same way).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Union

from pydantic import Field, field_validator
from sqlglot import exp

from patterns.base import (
    BuildContext,
    ParamError,
    Pattern,
    PatternParams,
    alias,
    col,
    column_field,
    columns_field,
    distinct_names,
    is_integer_type,
    literal,
    simple_aggregate,
)

Scalar = Union[bool, int, float, str, dt.datetime, dt.date]
Function = Literal["count", "count_distinct", "sum", "avg", "min", "max"]

_STRING_TYPES = ("VARCHAR", "JSON")


def value_name(value: Scalar) -> str:
    """A listed value as the text that names its output column."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def value_literal(value: Scalar, column_type: str, ctx: BuildContext) -> exp.Expr:
    """A listed value as a literal comparable with a column of ``column_type``.

    Text columns compare with the value's text; a text value compared with another type is cast
    to that type explicitly (so engines do not pick different implicit casts).
    """
    if column_type.upper() in _STRING_TYPES:
        return literal(value_name(value))
    if isinstance(value, str):
        return exp.cast(literal(value), ctx.data_type(column_type))
    return literal(value)


class Params(PatternParams):
    index: list[str] = columns_field(
        "Columns that identify an output row (one row per distinct combination); may be empty "
        "for a single row.")
    column: str = column_field("Column whose values become the output columns.")
    value: str = column_field("Column aggregated into each cell.")
    function: Function = Field(
        "sum", description="How the cell's rows are combined: count (non-NULL values), "
        "count_distinct, sum, avg, min or max.")
    values: list[Scalar] = Field(
        description="Values of 'column' that become output columns, in output order; each "
        "column is named after its value.")

    @field_validator("values")
    @classmethod
    def _values_ok(cls, v: list[Scalar]) -> list[Scalar]:
        if not v:
            raise ValueError("list at least one value of 'column' to turn into a column")
        names = [value_name(x) for x in v]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"value '{name}' is listed twice")
        return v

    @field_validator("index")
    @classmethod
    def _index_ok(cls, v: list[str]) -> list[str]:
        return distinct_names(v)


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    if p.column in p.index:
        raise ParamError("column", f"column '{p.column}' is also in 'index'. Pivot on a column "
                         "that is not part of the index.")
    column_type = rel.type_of(p.column)
    value_type = rel.type_of(p.value).upper()
    selects: list[exp.Expr] = [col(c) for c in p.index]
    for i, v in enumerate(p.values):
        name = value_name(v)
        if name in p.index:
            raise ParamError(f"values[{i}]", f"value '{name}' would name a column that is "
                             "already an index column. Rename the index column first.")
        cell = exp.Case(ifs=[exp.If(this=exp.EQ(this=col(p.column),
                                                expression=value_literal(v, column_type, ctx)),
                                    true=col(p.value))])
        agg = simple_aggregate(p.function, cell)
        if p.function in ("count", "count_distinct"):
            # COUNT of no rows is 0; a missing combination must be NULL like the others.
            match = exp.Case(ifs=[exp.If(this=exp.EQ(
                this=col(p.column), expression=value_literal(v, column_type, ctx)),
                true=exp.Literal.number(1))])
            agg = exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.Count(this=match),
                                                   expression=exp.Literal.number(0)),
                                       true=exp.Null())], default=agg)
        if p.function == "sum" and is_integer_type(value_type):
            # DuckDB sums integers into HUGEINT, Spark into BIGINT: make both BIGINT.
            agg = exp.cast(agg, exp.DataType.build("BIGINT"))
        selects.append(alias(agg, name))
    query = exp.select(*selects).from_(rel.table())
    if p.index:
        query = query.group_by(*(col(c) for c in p.index))
    return query


PATTERN = Pattern(
    name="pivot", category="Reshape", arity=1, params=Params, build=build, doc=__doc__,
    example={"index": ["region"], "column": "quarter", "value": "amount", "function": "sum",
             "values": ["Q1", "Q2", "Q3", "Q4"]},
    keywords=("wide", "crosstab", "columns from values", "spread"),
)
