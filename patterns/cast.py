"""Change the type of columns, in place.

`columns` maps a column name to a type name (DuckDB spelling, translated for Spark), e.g.
`{amount: "DECIMAL(10,2)", day: DATE, id: BIGINT}`. Supported: BOOLEAN, TINYINT, SMALLINT,
INTEGER, BIGINT, FLOAT, DOUBLE, DECIMAL(p,s), VARCHAR, DATE, TIMESTAMP (and their usual aliases
such as INT, TEXT, STRING, NUMERIC). Columns keep their names and positions; NULL stays NULL.
With `on_error: fail` (the default) a value that cannot be converted (e.g. 'abc' to INTEGER)
stops the run with an error, so bad data is never silently lost; `on_error: null` turns such
values into NULL instead (TRY_CAST). Numbers with a fraction cast to an integer type are rounded
to the nearest integer, halves away from zero (2.5 -> 3, -2.5 -> -3), on every engine. Text is
parsed as in SQL: '2024-01-31' for DATE, '2024-01-31 08:00:00' for TIMESTAMP, whole numbers for
the integer types (DuckDB rounds '2.5' while Spark refuses it).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_map_field
from patterns.sql import alias, col

COMMON_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE",
                "DECIMAL(p,s)", "VARCHAR", "DATE", "TIMESTAMP")

# Accepted spellings -> the type written in the query (same meaning on DuckDB and Spark).
_TYPE_NAMES = {
    "BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN",
    "TINYINT": "TINYINT", "INT1": "TINYINT",
    "SMALLINT": "SMALLINT", "INT2": "SMALLINT", "SHORT": "SMALLINT",
    "INTEGER": "INTEGER", "INT": "INTEGER", "INT4": "INTEGER",
    "BIGINT": "BIGINT", "INT8": "BIGINT", "LONG": "BIGINT",
    "FLOAT": "FLOAT", "REAL": "FLOAT", "FLOAT4": "FLOAT",
    "DOUBLE": "DOUBLE", "FLOAT8": "DOUBLE", "DOUBLE PRECISION": "DOUBLE",
    "DECIMAL": "DECIMAL", "NUMERIC": "DECIMAL",
    "VARCHAR": "VARCHAR", "TEXT": "VARCHAR", "STRING": "VARCHAR",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP", "DATETIME": "TIMESTAMP",
}
_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT"}
_TYPE_RE = re.compile(r"^\s*(?P<name>[A-Za-z][A-Za-z0-9]*(?:\s+PRECISION)?)\s*"
                      r"(?:\(\s*(?P<p>\d+)\s*(?:,\s*(?P<s>\d+)\s*)?\))?\s*$", re.IGNORECASE)


def type_sql(text: str) -> str:
    """The canonical type for a user's type name; ValueError with the common types if unknown.

    Shared with unpivot's ``cast_to``, so both accept the same spellings.
    """
    m = _TYPE_RE.match(text)
    name = _TYPE_NAMES.get(" ".join(m["name"].upper().split())) if m else None
    if m is None or name is None:
        raise ValueError(f"unknown or unsupported type '{text}'. Common types: "
                         + ", ".join(COMMON_TYPES))
    if name != "DECIMAL":
        if m["p"] is not None:
            raise ValueError(f"type '{text}' takes no size; write '{name}'")
        return name
    # DECIMAL without size means DECIMAL(18,3) in DuckDB but DECIMAL(10,0) in Spark: be explicit.
    if m["p"] is None:
        raise ValueError(f"give DECIMAL a precision and scale, e.g. 'DECIMAL(18,2)' (got '{text}')")
    precision, scale = int(m["p"]), int(m["s"] or 0)
    if not 1 <= precision <= 38 or scale > precision:
        raise ValueError(f"type '{text}': precision must be 1 to 38 and scale at most the "
                         "precision")
    return f"DECIMAL({precision},{scale})"


class Params(PatternParams):
    columns: dict[str, str] = column_map_field(
        "Column name -> type name, e.g. BIGINT, DOUBLE, DECIMAL(10,2), VARCHAR, DATE, TIMESTAMP.")
    on_error: Literal["fail", "null"] = Field(
        "fail", description="What a value that cannot be converted does: 'fail' stops the run "
        "with an error, 'null' turns it into NULL.")

    @field_validator("on_error", mode="before")
    @classmethod
    def _yaml_null(cls, v: object) -> object:
        # `on_error: null` unquoted is YAML's null: the user meant the choice 'null'.
        return "null" if v is None else v

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("give at least one 'column: type' pair")
        return v


def build(p: Params, ctx: BuildContext) -> exp.Query:
    types: dict[str, str] = {}
    for c, text in p.columns.items():
        try:
            types[c] = type_sql(str(text))
        except ValueError as e:
            raise ParamError(f"columns.{c}", f"{e}.") from None
    items: list[exp.Expr] = []
    for c in ctx.input.column_names:
        if c not in types:
            items.append(col(c))
            continue
        target = ctx.data_type(types[c])
        value: exp.Expr = col(c)
        source = ctx.input.type_of(c).upper()
        if types[c] in _INTEGER_TYPES and source.startswith(("FLOAT", "DOUBLE", "DECIMAL")):
            # DuckDB rounds DOUBLE half to even and DECIMAL half away; Spark truncates.
            value = exp.func("round", value, exp.Literal.number(0))
        # safe=True keeps TRY_CAST in Spark SQL (sqlglot writes plain CAST otherwise, which
        # fails on bad values under Spark's ANSI mode).
        converted = exp.TryCast(this=value, to=target, safe=True) if p.on_error == "null" \
            else exp.Cast(this=value, to=target)
        items.append(alias(converted, c))
    return exp.select(*items).from_(ctx.input.table())


PATTERN = Pattern(
    name="cast", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"columns": {"amount": "DECIMAL(10,2)", "day": "DATE"}},
    keywords=("convert type", "change type", "to number", "to date", "parse", "data type"),
    provides=("cast",),
)
