"""Turn a list column into rows: one output row per element of the list.

Each input row is repeated once per element of its list in `column`; the element replaces the list
in the same position, under the name `as` (default: the list column's name). A row whose list is
empty or NULL is kept once, with a NULL element (as Azure Data Factory's flatten does), so no row
disappears; filter on the element afterwards to drop those. NULL elements inside a list give
their own rows. Only the list's own level is unnested (a list of lists gives lists). Row order is
not part of the result, and the element's position in its list is not kept.
"""

from __future__ import annotations

import re

from pydantic import Field
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams, column_field
from patterns.sql import alias, col, ident

_UNNESTED = "__dy_unnested"
_LIST_TYPE_RE = re.compile(r"^(?P<element>.+)\[(?P<size>\d*)\]$")


class Params(PatternParams):
    column: str = column_field("List column to turn into rows.")
    as_: OutputName = Field(None, alias="as", description="Name of the element column "
                                                          "(default: the list column's name).")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    type_ = rel.type_of(p.column)
    m = _LIST_TYPE_RE.match(type_)
    if not m:
        raise ParamError("column", f"column '{p.column}' is {type_}, not a list. Split text into "
                         "a list first (e.g. with derive and string_split).")
    name = p.as_ or p.column
    if name != p.column and rel.has(name):
        raise ParamError("as", f"'{name}' is already a column of input '{rel.name}'. Choose "
                         "another name for the element column.")
    # A NULL or empty list becomes a one-NULL list, so that its row is kept on every engine
    # (sqlglot drops Spark's OUTER when writing DuckDB, so OUTER is not used).
    list_type = ctx.data_type(m["element"] + "[]")
    values = exp.Case(
        ifs=[exp.If(this=exp.or_(exp.Is(this=col(p.column, rel.name), expression=exp.Null()),
                                 exp.EQ(this=exp.ArraySize(this=col(p.column, rel.name)),
                                        expression=exp.Literal.number(0))),
                    true=exp.cast(exp.Array(expressions=[exp.Null()]), list_type))],
        default=col(p.column, rel.name))
    lateral = exp.Lateral(
        this=exp.Explode(this=values), view=True, outer=False,
        alias=exp.TableAlias(this=ident(_UNNESTED), columns=[ident(name)]))
    selects = [alias(col(name, _UNNESTED), name) if c == p.column else col(c, rel.name)
               for c in rel.column_names]
    query = exp.select(*selects).from_(rel.table())
    query.append("laterals", lateral)
    return query


PATTERN = Pattern(
    name="unnest", category="Reshape", arity=1, params=Params, build=build, doc=__doc__,
    example={"column": "tags", "as": "tag"},
    keywords=("flatten", "explode", "array", "list", "expand", "one row per element"),
)
