"""Turn columns into rows: one output row per input row and unpivoted column (dbt_utils.unpivot).

Each input row gives one row per entry of `columns`, holding the `index` columns, the column's
name in `name_column` and its value in `value_column` (output columns in that order). As in
dbt_utils.unpivot, every column is unpivoted by default: leave `columns` out and list the columns
to keep on every row in `index` (dbt_utils' `exclude`) and the columns to leave out of the result
in `remove`. `index` defaults to every column not in `columns` or `remove`. Rows whose value is
NULL are kept unless `drop_nulls` is true. Row order is not part of the result (sort afterwards
if it matters).

The values share one output column, so they get one type: `cast_to` when given (as dbt_utils'
`cast_to`: BIGINT, DOUBLE, DECIMAL(p,s), VARCHAR, DATE, ... spelled as in the cast pattern; a
value that cannot be converted stops the run). Otherwise the exact common type, as union picks
it: the columns' type when they all have the same type; the widest integer for integers (INTEGER
and UBIGINT give HUGEINT, so no digit is lost); a DECIMAL wide enough for integers and decimals;
DOUBLE for any mix with FLOAT or DOUBLE; TIMESTAMP for dates with timestamps; otherwise VARCHAR,
where each value is converted to text as the engine writes it (integers, text and dates read the
same on every engine; floating-point numbers and timestamps may be written differently, so
unpivot those separately or set `cast_to`).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.cast import type_sql
from patterns.fields import PatternParams, columns_field, distinct_names
from patterns.sql import alias, col, literal
from patterns.union import _common_type as common_type  # union's exact widening, shared


class Params(PatternParams):
    index: list[str] | None = columns_field(
        "Columns kept on every output row, dbt_utils' 'exclude' (default: every column not in "
        "'columns' or 'remove').", default=None)
    columns: list[str] | None = columns_field(
        "Columns turned into rows, in this order (default: every column not in 'index' or "
        "'remove').", default=None)
    remove: list[str] = columns_field("Columns left out of the result.", default=[])
    name_column: str = Field("name", description="Output column holding the column's name.")
    value_column: str = Field("value", description="Output column holding the column's value.")
    cast_to: str | None = Field(None, description="Type of the value column, e.g. VARCHAR, "
                                "DOUBLE, DECIMAL(18,2) (default: the columns' common type).")
    drop_nulls: bool = Field(False, description="Leave out rows whose value is NULL.")

    @field_validator("columns")
    @classmethod
    def _columns_ok(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        return distinct_names(v, empty="list at least one column to turn into rows, or leave "
                                       "'columns' out to unpivot every other column")

    @field_validator("index", "remove")
    @classmethod
    def _no_repeats(cls, v: list[str] | None) -> list[str] | None:
        return v if v is None else distinct_names(v)

    @field_validator("cast_to")
    @classmethod
    def _type_ok(cls, v: str | None) -> str | None:
        return v if v is None else type_sql(v)

    @model_validator(mode="after")
    def _names_ok(self) -> Params:
        if not self.name_column or not self.value_column:
            raise ValueError("name_column and value_column must not be empty")
        if self.name_column == self.value_column:
            raise ValueError(f"name_column and value_column are both '{self.name_column}'; "
                             "give them different names")
        for c in self.index or []:
            if c in (self.columns or []):
                raise ValueError(f"column '{c}' is both in 'index' and in 'columns'")
        for c in self.remove:
            for other in ("index", "columns"):
                if c in (getattr(self, other) or []):
                    raise ValueError(f"column '{c}' is both in 'remove' and in '{other}'")
        return self


def _value_type(types: list[str]) -> str | None:
    """The type the values are cast to (None: they already share one)."""
    if len(set(types)) == 1:
        return None
    return common_type(types) or "VARCHAR"


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    skip = set(p.remove) | set(p.index or [])
    columns = p.columns if p.columns is not None else [
        c for c in rel.column_names if c not in skip]
    if not columns:
        raise ParamError("columns", "no column is left to turn into rows: every column is in "
                         "'index' or 'remove'.")
    index = p.index if p.index is not None else [
        c for c in rel.column_names if c not in columns and c not in p.remove]
    for param, name in (("name_column", p.name_column), ("value_column", p.value_column)):
        if name.lower() in {i.lower() for i in index}:
            raise ParamError(param, f"'{name}' is already an index column. Choose another "
                             f"{param}.")
    target = p.cast_to or _value_type([rel.type_of(c).upper() for c in columns])
    parts: list[exp.Select] = []
    for c in columns:
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
