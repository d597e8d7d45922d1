"""Add a key column: the md5 hash of the listed columns, the same as dbt_utils' surrogate keys.

The key is `dbt_utils.generate_surrogate_key(columns)`: each column is cast to text, a NULL is
replaced by `_dbt_utils_surrogate_key_null_`, the texts are joined with `-` in the listed order
and hashed with md5 (32 lowercase hex characters). So the same values always give the same key,
NULLs included, and keys built here match the ones a dbt project built from the same values.
The key is added after the input's columns. With `treat_nulls_as_empty_strings: true` a NULL is
replaced by an empty text instead, as dbt_utils does when the project sets the variable
`surrogate_key_treat_nulls_as_empty_strings` (the behaviour of its older `surrogate_key` macro):
use it to match keys such a project built.

Keys match across engines and dbt warehouses when the columns are integers, text, booleans,
dates or decimals with a fixed scale, whose text form is the same everywhere. Floating-point
numbers and timestamps are written as text differently by different engines (`1e+20` or
`1.0E20`, fractional seconds, time zones), so their keys may not match other systems: cast them
to text, a date or a decimal first when keys must agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, columns_field, distinct_names
from patterns.sql import alias, col, literal

# dbt_utils.generate_surrogate_key's stand-in for NULL.
NULL_TOKEN = "_dbt_utils_surrogate_key_null_"


def surrogate_key(columns: Sequence[str | exp.Expr], null_text: str = NULL_TOKEN) -> exp.Expr:
    """md5 of the columns (names or expressions) cast to text, NULLs replaced by ``null_text``
    (the dbt token by default), joined with '-'."""
    parts: list[exp.Expr] = []
    for i, c in enumerate(columns):
        if i:
            parts.append(literal("-"))
        text = exp.cast(col(c) if isinstance(c, str) else c, exp.DataType.build("VARCHAR"))
        parts.append(exp.Coalesce(this=text, expressions=[literal(null_text)]))
    return exp.MD5(this=exp.Concat(expressions=parts, safe=False, coalesce=False))


class Params(PatternParams):
    columns: list[str] = columns_field("Columns that make up the key, in this order (the order "
                                       "changes the key).")
    as_: str = Field("surrogate_key", alias="as", description="Name of the new key column.")
    treat_nulls_as_empty_strings: bool = Field(
        False, description="Hash a NULL as an empty text instead of dbt_utils' NULL token (as "
                           "dbt_utils with surrogate_key_treat_nulls_as_empty_strings set).")

    @field_validator("columns")
    @classmethod
    def _columns_ok(cls, v: list[str]) -> list[str]:
        return distinct_names(v, empty="list at least one column to build the key from")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    if not p.as_:
        raise ParamError("as", "the key column needs a name.")
    if rel.has(p.as_):
        raise ParamError("as", f"'{p.as_}' is already a column of input '{rel.name}'. Choose "
                         "another name for the key column.")
    selects: list[exp.Expr] = [col(c) for c in rel.column_names]
    null_text = "" if p.treat_nulls_as_empty_strings else NULL_TOKEN
    selects.append(alias(surrogate_key(p.columns, null_text), p.as_))
    return exp.select(*selects).from_(rel.table())


PATTERN = Pattern(
    name="surrogate_key", category="Keys & privacy", arity=1, params=Params, build=build,
    doc=__doc__, example={"columns": ["order_id", "line_no"], "as": "order_line_key"},
    keywords=("hash key", "id", "primary key", "md5", "unique key"),
)
