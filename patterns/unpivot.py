"""Turn columns into rows: one output row per input row and listed column.

Each input row gives one row per entry of `columns`, holding the `index` columns, the column's
name in `name_column` and its value in `value_column` (output columns in that order). `index`
defaults to every column not listed in `columns`. Rows whose value is NULL are kept unless
`drop_nulls` is true. Row order is not part of the result (sort afterwards if it matters).

The values share one output column, so they get one type: the columns' type when they all have
the same type; BIGINT when they are all integers; DOUBLE when they are all numbers (DECIMAL
included); otherwise VARCHAR, where each value is converted to text as the engine writes it
(integers, text and dates read the same on every engine; floating-point numbers and timestamps
may be written differently, so unpivot those separately or cast them first).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from patterns.base import (
    BuildContext,
    ParamError,
    Pattern,
    PatternParams,
    alias,
    col,
    columns_field,
    literal,
)

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                  "UINTEGER"}
_NUMBER_TYPES = _INTEGER_TYPES | {"FLOAT", "DOUBLE", "REAL", "HUGEINT", "UBIGINT"}


def _is_number(type_: str) -> bool:
    return type_ in _NUMBER_TYPES or type_.startswith("DECIMAL")


class Params(PatternParams):
    index: list[str] | None = columns_field(
        "Columns kept on every output row (default: every column not in 'columns').",
        default=None)
    columns: list[str] = columns_field("Columns turned into rows, in this order.")
    name_column: str = Field("name", description="Output column holding the column's name.")
    value_column: str = Field("value", description="Output column holding the column's value.")
    drop_nulls: bool = Field(False, description="Leave out rows whose value is NULL.")

    @field_validator("columns")
    @classmethod
    def _columns_ok(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one column to turn into rows")
        for c in v:
            if v.count(c) > 1:
                raise ValueError(f"column '{c}' is listed twice")
        return v

    @model_validator(mode="after")
    def _names_ok(self) -> Params:
        if not self.name_column or not self.value_column:
            raise ValueError("name_column and value_column must not be empty")
        if self.name_column == self.value_column:
            raise ValueError(f"name_column and value_column are both '{self.name_column}'; "
                             "give them different names")
        for c in self.index or []:
            if c in self.columns:
                raise ValueError(f"column '{c}' is both in 'index' and in 'columns'")
            if (self.index or []).count(c) > 1:
                raise ValueError(f"column '{c}' is listed twice in 'index'")
        return self


def _common_type(types: list[str]) -> str | None:
    """The type the values are cast to (None: they already share one)."""
    if len(set(types)) == 1:
        return None
    if all(t in _INTEGER_TYPES for t in types):
        return "BIGINT"
    if all(_is_number(t) for t in types):
        return "DOUBLE"
    return "VARCHAR"


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    index = p.index if p.index is not None else [
        c for c in rel.column_names if c not in p.columns]
    for param, name in (("name_column", p.name_column), ("value_column", p.value_column)):
        if name in index:
            raise ParamError(param, f"'{name}' is already an index column. Choose another "
                             f"{param}.")
    target = _common_type([rel.type_of(c).upper() for c in p.columns])
    parts: list[exp.Select] = []
    for c in p.columns:
        value: exp.Expr = col(c)
        if target is not None:
            value = exp.cast(value, ctx.data_type(target))
        part = exp.select(*(col(i) for i in index), alias(literal(c), p.name_column),
                          alias(value, p.value_column)).from_(rel.table())
        if p.drop_nulls:
            part = part.where(exp.Not(this=exp.Is(this=col(c), expression=exp.Null())))
        parts.append(part)
    query: exp.Query = parts[0]
    for part in parts[1:]:
        query = exp.union(query, part, distinct=False)
    return query


PATTERN = Pattern(
    name="unpivot", category="Reshape", arity=1, params=Params, build=build, doc=__doc__,
    example={"index": ["region"], "columns": ["q1", "q2", "q3", "q4"],
             "name_column": "quarter", "value_column": "amount"},
    keywords=("long", "melt", "stack columns", "columns to rows", "gather"),
)
