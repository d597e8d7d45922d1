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

When `values` is left out, they are read from the data while the pipeline is planned (every
validate, compile, preview and run computes the input and reads the distinct non-NULL values of
`column`, sorted; at most 100): the output columns then follow the data, and change when it
does. This works for text, integer, boolean and date columns; list the values to fix the
columns, to keep planning from reading the input, or for other types.

As in dbt_utils.pivot, `prefix` and `suffix` are added to each value's column name, and
`safe_names: true` turns the value into a plain name first (dbt_utils.slugify: lower case,
spaces and dashes become `_`, other characters are dropped, `_` before a leading digit: `New
York-2` gives `new_york_2`). `else_value` fills the cells that would be NULL, e.g. `0` to count
or sum a missing combination as 0 (dbt_utils.pivot's `else_value`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal, Union

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_field, columns_field, distinct_names
from patterns.sql import alias, col, is_integer_type, literal, simple_aggregate

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


def slugify(text: str) -> str:
    """dbt_utils.slugify: lower case, spaces and dashes to '_', only [a-z0-9_] kept, '_' before
    a leading digit."""
    text = re.sub(r"[ -]+", "_", text.lower())
    text = re.sub(r"[^a-z0-9_]+", "", text)
    return "_" + text if text[:1].isdigit() else text


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
        default_factory=list,
        description="Values of 'column' that become output columns, in output order; each "
        "column is named after its value. Leave out to read them from the data while "
        "planning (distinct values, sorted).")
    prefix: str = Field("", description="Text put before each value's column name.")
    suffix: str = Field("", description="Text put after each value's column name.")
    safe_names: bool = Field(False, description="Name columns after the value slugified "
                             "(lower case, letters, digits and '_' only), as dbt_utils.slugify.")
    else_value: Union[bool, int, float, str, None] = Field(
        None, description="Value for cells that would be NULL (no rows, or only NULLs), e.g. "
                          "0; default: NULL.")

    @field_validator("values")
    @classmethod
    def _values_ok(cls, v: list[Scalar]) -> list[Scalar]:
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
    values = p.values or _discovered(p, column_type, ctx)
    selects: list[exp.Expr] = [col(c) for c in p.index]
    named: dict[str, str] = {}
    for i, v in enumerate(values):
        base = slugify(value_name(v)) if p.safe_names else value_name(v)
        name = f"{p.prefix}{base}{p.suffix}"
        if not name:
            raise ParamError(f"values[{i}]", f"value '{value_name(v)}' has no letters or "
                             "digits to name its column. Set 'prefix', or turn 'safe_names' "
                             "off.")
        if name.lower() in named:
            raise ParamError(f"values[{i}]", f"values '{named[name.lower()]}' and "
                             f"'{value_name(v)}' would both name the column '{name}'. Set "
                             "'safe_names' off or list only one of them.")
        named[name.lower()] = value_name(v)
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
        if p.else_value is not None:
            agg = exp.Coalesce(this=agg, expressions=[_else_literal(p, agg_type(p, value_type),
                                                                     ctx)])
        selects.append(alias(agg, name))
    query = exp.select(*selects).from_(rel.table())
    if p.index:
        query = query.group_by(*(col(c) for c in p.index))
    return query


MAX_DISCOVERED = 100
_DISCOVERABLE = ("VARCHAR", "BOOLEAN", "DATE")


def _discovered(p: Params, column_type: str, ctx: BuildContext) -> list[Scalar]:
    """The distinct values of ``column`` read from the input while planning."""
    if not (column_type.upper() in _DISCOVERABLE or is_integer_type(column_type)):
        raise ParamError("values", f"column '{p.column}' is {column_type}: its values are read "
                         "from the data only for text, integer, boolean and date columns. "
                         "List them in 'values'.")
    found = ctx.distinct_values(p.column, "values", MAX_DISCOVERED)
    if not found:
        raise ParamError("values", f"column '{p.column}' of input '{ctx.input.name}' has no "
                         "values to turn into columns (no rows, or only NULLs). List them in "
                         "'values'.")
    return found


def agg_type(p: Params, value_type: str) -> str:
    """The DuckDB type of a cell before ``else_value`` (what the else value must fit)."""
    if p.function in ("count", "count_distinct"):
        return "BIGINT"
    if p.function == "avg":
        return "DOUBLE"
    if p.function == "sum" and is_integer_type(value_type):
        return "BIGINT"
    return value_type


def _else_literal(p: Params, type_: str, ctx: BuildContext) -> exp.Expr:
    v = p.else_value
    assert v is not None
    numeric = type_.upper().startswith(("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                                        "FLOAT", "DOUBLE", "DECIMAL", "U"))
    if numeric and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise ParamError("else_value", f"{v!r} is not a number, but the cells are {type_} "
                         f"({p.function} of '{p.value}').")
    if not numeric and type_.upper() not in _STRING_TYPES and isinstance(v, (int, float)) \
            and not isinstance(v, bool):
        raise ParamError("else_value", f"{v!r} does not fit cells of type {type_} "
                         f"({p.function} of '{p.value}').")
    # Cast to the cell's type: COALESCE then keeps that type on every engine.
    return exp.cast(value_literal(v, type_, ctx) if not numeric else literal(v),
                    ctx.data_type(type_))


PATTERN = Pattern(
    name="pivot", category="Reshape", arity=1, params=Params, build=build, doc=__doc__,
    example={"index": ["region"], "column": "quarter", "value": "amount", "function": "sum",
             "values": ["Q1", "Q2", "Q3", "Q4"]},
    keywords=("wide", "crosstab", "columns from values", "spread"),
)
