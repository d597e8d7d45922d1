"""Group rows and compute aggregates: one row per combination of the `group_by` columns.

Each item of `aggregations` names a `function`, the `column` it reads and the output name `as`
(default `function_column`, or `count` for a row count). `count` without a column counts rows
(`count(*)`); with a column it counts non-NULL values. `count_distinct` counts distinct non-NULL
values. `sum`, `avg`, `min`, `max` and `median` ignore NULLs and give NULL for a group with no
values; `sum` of integer columns is a BIGINT, `avg` and `median` are DOUBLE (the median of an
even number of values is the mean of the middle two).

`first` and `last` take the value of the first or last row of the group by `order_by`, which they
require so that the result is the same on every run and engine (make `order_by` unique to avoid
ties, which pick any of the tied rows). `string_agg` joins the non-NULL values as text with
`separator`, in `order_by` order (or by the values themselves when there is no `order_by`).

NULLs in a `group_by` column form a group of their own, as in SQL's GROUP BY. Without `group_by`
the whole input is one group, so the result has exactly one row even for an empty input.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import (
    OrderItem,
    OrderSpec,
    OutputName,
    PatternParams,
    column_field,
    columns_field,
    function_output,
    order_by_field,
    order_specs,
)
from patterns.sql import alias, col, ident, is_integer_type, ordered, simple_aggregate

Function = Literal["count", "count_distinct", "sum", "avg", "min", "max", "median", "first",
                   "last", "string_agg"]
_FIRST, _LAST = "__dy_first", "__dy_last"


class Aggregation(BaseModel):
    """One aggregate column of the result."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    function: Function = Field(description="The aggregate function.")
    column: str | None = column_field("Column it reads (leave empty for count = rows).",
                                         default=None)
    as_: OutputName = Field(None, alias="as", description="Output column name "
                                                             "(default function_column).")
    separator: str = Field(",", description="Separator between values (string_agg only).")

    @model_validator(mode="after")
    def _needs_column(self) -> Aggregation:
        if self.column is None and self.function != "count":
            raise ValueError(f"function '{self.function}' needs a 'column'")
        return self

    @property
    def output(self) -> str:
        return function_output(self.function, self.column, self.as_)


class Params(PatternParams):
    group_by: list[str] = columns_field("Columns to group by (none: one row for all input).",
                                        default=[])
    aggregations: list[Aggregation] = Field(
        description="The aggregates to compute: function, column, as.", min_length=1)
    order_by: list[OrderItem] = order_by_field(
        "Row order within each group, for first, last and string_agg.", default=[])

    @model_validator(mode="after")
    def _checks(self) -> Params:
        names = list(self.group_by) + [a.output for a in self.aggregations]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"the result would have the column '{dup}' twice; give the "
                             "aggregation another name with 'as'")
        if not self.order_by:
            needs = next((a for a in self.aggregations if a.function in ("first", "last")), None)
            if needs is not None:
                raise ValueError(f"function '{needs.function}' needs 'order_by' to say which "
                                 "row is first")
        return self


def _reverse(spec: OrderSpec) -> OrderSpec:
    """The opposite order (NULL placement flipped too), so 'last' is the first row of it."""
    return OrderSpec(column=spec.column, descending=not spec.descending,
                     nulls_last=not spec.nulls_last)


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    specs = order_specs(p.order_by)
    for i, a in enumerate(p.aggregations):
        if a.column is not None:  # the input's spelling (names match ignoring case)
            p.aggregations[i] = a.model_copy(update={"column": ctx.check_column(
                a.column, f"aggregations[{i}].column")})
    source: exp.Expr = rel.table()
    uses_rank = any(a.function in ("first", "last") for a in p.aggregations)
    if uses_rank:
        # Rank rows in a subquery; first/last then pick the rank-1 value with MAX(CASE ...).
        partition = [col(c) for c in p.group_by]

        def rank(order: list[OrderSpec], name: str) -> exp.Alias:
            window = exp.Window(this=exp.RowNumber(), partition_by=partition or None,
                                order=exp.Order(expressions=[ordered(s) for s in order]))
            return alias(window, name)

        inner = exp.select(exp.Star(), rank(specs, _FIRST),
                           rank([_reverse(s) for s in specs], _LAST)).from_(rel.table())
        source = inner.subquery(ident("ranked"))

    projections: list[exp.Expr] = [col(c) for c in p.group_by]
    for a in p.aggregations:
        projections.append(alias(_aggregate(a, specs, rel.type_of(a.column)
                                            if a.column else None), a.output))
    query = exp.select(*projections).from_(source)
    if p.group_by:
        query = query.group_by(*(col(c) for c in p.group_by))
    return query


def _aggregate(a: Aggregation, specs: list[OrderSpec], col_type: str | None) -> exp.Expr:
    if a.column is None:
        return exp.Count(this=exp.Star())
    c = col(a.column)
    f = a.function
    if f == "sum" and is_integer_type(col_type):
        # DuckDB sums integers into HUGEINT, Spark into BIGINT: settle on BIGINT everywhere.
        return exp.Cast(this=exp.Sum(this=c), to=exp.DataType.build("BIGINT"))
    if f in ("count", "count_distinct", "sum", "avg", "min", "max", "median"):
        return simple_aggregate(f, c)
    if f in ("first", "last"):
        rank = _FIRST if f == "first" else _LAST
        pick = exp.Case(ifs=[exp.If(this=exp.EQ(this=col(rank), expression=exp.Literal.number(1)),
                                    true=c)])
        return exp.Max(this=pick)
    if f == "string_agg":
        order = [ordered(s) for s in specs] or [exp.Ordered(this=c, desc=False,
                                                            nulls_first=False)]
        text = exp.Cast(this=c, to=exp.DataType.build("VARCHAR"))
        return exp.GroupConcat(this=exp.Order(this=text, expressions=order),
                               separator=exp.Literal.string(a.separator))
    raise ParamError("aggregations", f"unknown function '{f}'")


PATTERN = Pattern(
    name="aggregate", category="Aggregate & window", arity=1, params=Params, build=build,
    doc=__doc__,
    example={"group_by": ["user_id"],
             "aggregations": [{"function": "count", "as": "events"},
                              {"function": "sum", "column": "amount", "as": "revenue"}]},
    keywords=("group by", "summarize", "totals", "sum", "count", "average", "mean", "min", "max",
              "rollup", "metrics"),
)
