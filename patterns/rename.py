"""Rename columns; every column keeps its place.

`mapping` gives old name -> new name, e.g. `{cust_id: customer_id}`. Columns not in the mapping
keep their names, and every column keeps its position. The new names must be unique in the
output: renaming onto the name of a column that stays (or two columns onto one name) is an error.
Names are compared case-insensitively, as DuckDB and Spark resolve them; swapping two names
(`{a: b, b: a}`) is allowed because the result has no duplicates. Values and types are unchanged.
"""

from __future__ import annotations

from pydantic import field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_map_field
from patterns.sql import alias, col


class Params(PatternParams):
    mapping: dict[str, str] = column_map_field(
        "Old column name -> new column name. Columns not listed keep their name and place.")

    @field_validator("mapping")
    @classmethod
    def _valid(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("give at least one 'old: new' pair")
        seen: dict[str, str] = {}
        for old, new in v.items():
            if not new.strip():
                raise ValueError(f"the new name for column '{old}' is empty")
            other = seen.get(new.lower())
            if other is not None:
                raise ValueError(f"columns '{other}' and '{old}' are both renamed to '{new}'")
            seen[new.lower()] = old
        return v


def build(p: Params, ctx: BuildContext) -> exp.Query:
    renamed = {old.lower() for old in p.mapping}
    for old, new in p.mapping.items():
        for c in ctx.input.column_names:
            if c.lower() == new.lower() and c.lower() not in renamed:
                raise ParamError("mapping", f"cannot rename '{old}' to '{new}': column '{c}' "
                                 "already exists. Rename or drop that column first.")
    items: list[exp.Expr] = []
    for c in ctx.input.column_names:
        target = p.mapping.get(c, c)
        items.append(alias(col(c), target) if target != c else col(c))
    return exp.select(*items).from_(ctx.input.table())


PATTERN = Pattern(
    name="rename", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"mapping": {"cust_id": "customer_id"}},
    keywords=("rename columns", "column names", "alias"),
)
