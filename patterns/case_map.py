"""Map the values of a column to new values, like a lookup written as CASE WHEN.

`mapping` gives value -> new value, e.g. `{DE: Germany, FR: France}`; a row whose `column` equals
a listed value gets its new value (`CASE WHEN column = 'DE' THEN 'Germany' ... END`). The listed
values are read as the column's type (`'1'` matches the integer 1, `2024-01-31` a DATE). Rows that
match nothing, and rows where `column` is NULL, get `default`, which is NULL when not given (as
SQL's CASE and Azure Data Factory's case() do): to keep unmatched values, list them or use
`derive` with `CASE ... ELSE column END`. The result replaces `column` in place, or goes to the
column named by `as`: an existing column of that name is replaced in place, a new one is added
at the end. New values (and `default`) must all be of one kind: text, numbers (all DOUBLE when
any has a fraction), true/false, dates or timestamps; a new value may be null.
"""

from __future__ import annotations

import datetime as dt
from typing import Union

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams, column_field
from patterns.fill_nulls import value_literal
from patterns.sql import alias, col, literal

Value = Union[bool, int, float, dt.datetime, dt.date, str]


class Params(PatternParams):
    column: str = column_field("Column whose values are mapped.")
    mapping: dict[str, Value | None] = Field(
        description="Value of the column -> new value. Unlisted values (and NULL) get 'default'.")
    default: Value | None = Field(
        None, description="New value for rows that match no listed value, or where the column "
        "is NULL. NULL when not given.")
    as_: OutputName = Field(
        None, alias="as", description="Column to write the result to. Default: replace "
        "'column' in place.")

    @field_validator("mapping")
    @classmethod
    def _not_empty(cls, v: dict[str, Value | None]) -> dict[str, Value | None]:
        if not v:
            raise ValueError("give at least one 'value: new value' pair")
        return v



def _kind(value: Value) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "numbers"
    if isinstance(value, dt.datetime):
        return "timestamps"
    if isinstance(value, dt.date):
        return "dates"
    return "text"


def _out_literal(value: Value | None, as_double: bool) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool) or isinstance(value, str):
        return literal(value)
    if isinstance(value, (int, float)):
        return exp.cast(literal(value), "DOUBLE") if as_double else literal(value)
    if isinstance(value, dt.datetime):
        return exp.cast(literal(value.isoformat(sep=" ")), "TIMESTAMP")
    return exp.cast(literal(value.isoformat()), "DATE")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    column_type = ctx.input.type_of(p.column)
    outs = [v for v in [*p.mapping.values(), p.default] if v is not None]
    kinds = sorted({_kind(v) for v in outs})
    if not outs:
        raise ParamError("mapping", "every new value and 'default' are null; map to at least "
                         "one value.")
    if len(kinds) > 1:
        raise ParamError("mapping", "the new values and 'default' mix " + " and ".join(kinds)
                         + "; use one kind (quote numbers to make them text).")
    as_double = any(isinstance(v, float) for v in outs)
    case = exp.Case()
    for key, value in p.mapping.items():
        try:
            match = value_literal(key, column_type)
        except ValueError as e:
            raise ParamError(f"mapping.{key}", f"cannot compare column '{p.column}' with "
                             f"'{key}': {e}.") from None
        case = case.when(exp.EQ(this=col(p.column), expression=match),
                         _out_literal(value, as_double))
    if p.default is not None:
        case = case.else_(_out_literal(p.default, as_double))
    target = p.as_ or p.column
    existing = {c.lower(): c for c in ctx.input.column_names}
    if target.lower() in existing and existing[target.lower()] != target:
        raise ParamError("as", f"'{target}' differs only in case from the existing column "
                         f"'{existing[target.lower()]}'. Write '{existing[target.lower()]}' to "
                         "replace it, or choose another name.")
    items: list[exp.Expr] = [alias(case, c) if c == target else col(c)
                             for c in ctx.input.column_names]
    if target not in existing.values():
        items.append(alias(case, target))
    return exp.select(*items).from_(ctx.input.table())


PATTERN = Pattern(
    name="case_map", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"column": "country", "mapping": {"DE": "Germany", "FR": "France"},
                          "default": "other", "as": "country_name"},
    keywords=("case when", "if then else", "map values", "categorize", "bucket", "recode",
              "lookup values"),
)
