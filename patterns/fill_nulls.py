"""Replace NULLs in columns with a fixed value.

`columns` maps a column name to the value that replaces its NULLs, e.g. `{country: unknown,
amount: 0, day: 2024-01-01}`. Other values are unchanged, and every column keeps its name, type
and position (`COALESCE(column, value)`). The value must suit the column's type: a number for
numeric columns (a whole number for integer columns), `true`/`false` for BOOLEAN, a date
(`2024-01-01`) for DATE, a date or timestamp (`2024-01-01 08:00:00`) for TIMESTAMP; text columns
take text (numbers are written as text). Only NULL is replaced: empty strings and NaN are values.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Union

from pydantic import field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_map_field
from patterns.sql import alias, col, literal

Value = Union[bool, int, float, dt.datetime, dt.date, str]

_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT")
_NUMERIC = ("FLOAT", "DOUBLE", "DECIMAL")
_TEXT = ("VARCHAR",)


def value_literal(value: Value, column_type: str) -> exp.Expr:
    """``value`` as a SQL value of DuckDB type ``column_type``: ``CAST(<literal> AS <type>)``.

    Raises ValueError (message without a trailing period) when the value does not suit the type,
    so callers can report it at build time rather than fail at run time.
    """
    t = column_type.upper()
    base = re.split(r"[(\s]", t, maxsplit=1)[0]
    kind = "a number" if base in _NUMERIC else "a whole number" if base in _INTEGER else None
    text: object
    if isinstance(value, bool):
        if base != "BOOLEAN" and base not in _TEXT:
            raise ValueError(f"{value} does not suit type {column_type}")
        text = "true" if value else "false"
    elif base in _INTEGER or base in _NUMERIC:
        pattern = _INT_RE if base in _INTEGER else _NUM_RE
        ok = isinstance(value, int) or (isinstance(value, float) and base in _NUMERIC) or (
            isinstance(value, str) and pattern.match(value.strip()) is not None)
        if not ok:
            raise ValueError(f"'{value}' is not {kind} (column type {column_type})")
        text = value.strip() if isinstance(value, str) else value
    elif base == "BOOLEAN":
        if not (isinstance(value, str) and value.strip().lower() in ("true", "false")):
            raise ValueError(f"'{value}' is not true or false (column type {column_type})")
        text = value.strip().lower()
    elif base == "DATE":
        try:
            d = value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) \
                else dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"'{value}' is not a date like 2024-01-31 "
                             f"(column type {column_type})") from None
        text = d.isoformat()
    elif base in ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMPTZ"):
        try:
            ts = value if isinstance(value, dt.datetime) else dt.datetime.combine(
                value, dt.time()) if isinstance(value, dt.date) else \
                dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"'{value}' is not a timestamp like 2024-01-31 08:00:00 "
                             f"(column type {column_type})") from None
        if ts.tzinfo is not None and "TIME ZONE" not in t and base != "TIMESTAMPTZ":
            raise ValueError(f"'{value}' has a time zone; column type {column_type} has none")
        text = ts.isoformat(sep=" ")
    elif base in _TEXT:
        text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else \
            value.isoformat() if isinstance(value, dt.date) else str(value)
    else:
        raise ValueError(f"columns of type {column_type} are not supported")
    if base in _TEXT:
        return literal(text)  # a string literal is already text on every engine
    if base == "BOOLEAN":
        return literal(text == "true")
    return exp.cast(literal(text), exp.DataType.build(column_type, dialect="duckdb"))


class Params(PatternParams):
    columns: dict[str, Value | None] = column_map_field(
        "Column name -> the value that replaces its NULLs (suited to the column's type).")

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, v: dict[str, Value | None]) -> dict[str, Value | None]:
        if not v:
            raise ValueError("give at least one 'column: value' pair")
        for c, value in v.items():
            if value is None:
                raise ValueError(f"give a value to put in place of the NULLs of '{c}'")
        return v


def build(p: Params, ctx: BuildContext) -> exp.Query:
    fills: dict[str, exp.Expr] = {}
    for c, value in p.columns.items():
        try:
            assert value is not None  # refused by the validator
            fills[c] = value_literal(value, ctx.input.type_of(c))
        except ValueError as e:
            raise ParamError(f"columns.{c}", f"cannot fill column '{c}': {e}.") from None
    items: list[exp.Expr] = [
        alias(exp.func("coalesce", col(c), fills[c]), c) if c in fills else col(c)
        for c in ctx.input.column_names]
    return exp.select(*items).from_(ctx.input.table())


PATTERN = Pattern(
    name="fill_nulls", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"columns": {"country": "unknown", "amount": 0}},
    keywords=("missing values", "replace nulls", "default value", "coalesce", "impute",
              "forward fill"),
)
