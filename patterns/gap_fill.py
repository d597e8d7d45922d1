"""Add the missing rows of a regular time series: one row per period, per partition.

Within each partition (`partition_by`, NULL counting as one value), every point of the grid
`first timestamp`, `first + interval`, `first + 2 intervals`, ... up to the partition's last
timestamp appears at least once. The timestamps are assumed to be on that grid already (bucket
them with `time_bucket` first); the input rows are kept exactly as they are (also rows off the
grid, duplicates and rows with a NULL timestamp, which take no part in the grid), and a row is
added for each grid point that has none. In added rows the partition columns and `timestamp` are
set, and the other columns get: `fill: null` (default) NULL; `fill: forward` the values of the
previous existing row of the partition, copied as they are (NULLs included; if several rows
share that timestamp, the one that sorts last by the other columns, ascending with NULLs last);
`fill: {column: value}` the given constants (cast to the column's type), NULL for columns not
listed. `interval` is a number and a unit (`1 day`, `15 minutes`, `1 month`; units second,
minute, hour, day, week, month); months are added to the first timestamp with the end of month
clamped (Jan 31, Feb 29, Mar 31). A DATE timestamp takes day, week or month intervals. The
columns keep their order; row order is not part of the result.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, Literal, Union

import duckdb
from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._interval import (
    UNIT_SECONDS,
    day_index,
    floor_div,
    month_index,
    parse_interval,
    second_index,
    sql_type,
    time_kind,
    time_type,
)
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_field, columns_field, distinct_names
from patterns.sql import alias, col, ident, literal

_P = "__gf_"  # prefix of the helper columns; input columns may not start with it
ADDED, HAS_ROW, GROUP, LO, HI, K = (f"{_P}{n}" for n in ("added", "has_row", "grp", "lo", "hi",
                                                          "k"))
Fill = Union[Literal["null", "forward"], dict[str, Any]]


class Params(PatternParams):
    partition_by: list[str] = columns_field("Columns that identify one series (each gets its "
                                            "own grid); none: the whole input is one series.",
                                            default=[])
    timestamp: str = column_field("DATE or TIMESTAMP column of the series, on the grid.")
    interval: str = Field(description="Distance between grid points: a number and a unit, "
                          "e.g. '1 day', '15 minutes', '1 month'.")
    fill: Fill = Field("null", description="Values of the other columns in added rows: 'null', "
                       "'forward' (copy the previous existing row) or a mapping "
                       "{column: constant}.")

    @field_validator("fill", mode="before")
    @classmethod
    def _null_is_null(cls, v: Any) -> Any:
        return "null" if v is None else v  # YAML 'fill: null' arrives as None

    @field_validator("partition_by")
    @classmethod
    def _no_dupes(cls, v: list[str]) -> list[str]:
        return distinct_names(v)


def _portable_type(ctx: BuildContext, type_name: str) -> exp.DataType:
    kind = time_kind(type_name)
    return time_type(kind) if kind else ctx.data_type(type_name)


def _constant(value: Any, column: str, ctx: BuildContext) -> exp.Expr:
    if value is not None and not isinstance(value, (str, int, float, bool, dt.date,
                                                    decimal.Decimal)):
        raise ParamError(f"fill.{column}", f"param 'fill.{column}': give one value (text, "
                         f"number, boolean or date), got {type(value).__name__}.")
    if value is None:
        return exp.Null()
    type_name = ctx.input.type_of(column)
    constant = exp.cast(literal(value), _portable_type(ctx, type_name))
    try:  # a bad constant would only fail once rows are added: check it now
        with duckdb.connect() as con:
            con.execute(exp.select(constant).sql(dialect="duckdb"))
    except duckdb.Error:
        raise ParamError(f"fill.{column}", f"param 'fill.{column}': '{value}' is not a valid "
                         f"{type_name} (the type of column '{column}').") from None
    return constant


def _grid(p: Params, ctx: BuildContext, n: int, unit: str, kind: str) -> exp.Select:
    """One row per grid point per partition: partition columns and the point in ``timestamp``."""
    src = ctx.input.table()
    ts = col(p.timestamp)
    bounds = exp.select(*(col(c) for c in p.partition_by), alias(exp.Min(this=ts.copy()), LO),
                        alias(exp.Max(this=ts.copy()), HI)).from_(src).where(
        exp.Not(this=exp.Is(this=ts.copy(), expression=exp.Null())))
    if p.partition_by:
        bounds = bounds.group_by(*(col(c) for c in p.partition_by))
    lo, hi = col(LO), col(HI)
    # An upper bound of the number of steps from lo to hi (points after hi are dropped below):
    # index differences in whole units, exact and the same in both engines.
    index = month_index if unit == "month" else day_index if unit in ("day", "week") \
        else second_index
    span = exp.Sub(this=exp.paren(index(hi)), expression=exp.paren(index(lo)))
    width = n * (7 if unit == "week" else 1) if unit in ("day", "week", "month") \
        else n * UNIT_SECONDS[unit]
    steps = exp.select(
        *(col(c) for c in p.partition_by), lo.copy(), hi.copy(),
        alias(exp.Explode(this=exp.GenerateSeries(
            start=literal(0), end=exp.cast(floor_div(span, width), sql_type("BIGINT")))), K),
    ).from_(exp.Subquery(this=bounds, alias=exp.TableAlias(this=ident("b")))).where(
        exp.Not(this=exp.Is(this=lo.copy(), expression=exp.Null())))
    step_unit, per_step = ("DAY", 7 * n) if unit == "week" else (unit.upper(), n)
    offset = col(K) if per_step == 1 else exp.Mul(this=col(K), expression=literal(per_step))
    point = exp.cast(exp.TimestampAdd(this=col(LO), expression=offset, unit=exp.var(step_unit)),
                     time_type(kind))
    points = exp.select(*(col(c) for c in p.partition_by), alias(point, p.timestamp),
                        col(HI)).from_(exp.Subquery(this=steps,
                                                    alias=exp.TableAlias(this=ident("s"))))
    return exp.select(*(col(c) for c in p.partition_by), col(p.timestamp)).from_(
        exp.Subquery(this=points, alias=exp.TableAlias(this=ident("g")))).where(
        exp.LTE(this=col(p.timestamp), expression=col(HI)))


def build(p: Params, ctx: BuildContext) -> exp.Query:
    n, unit = parse_interval(p.interval, "interval")
    names = ctx.input.column_names
    clash = next((c for c in names if c.startswith(_P)), None)
    if clash:
        raise ParamError(None, f"column '{clash}' starts with '{_P}', which gap_fill uses for "
                         "its helper columns. Rename it first.")
    type_name = ctx.input.type_of(p.timestamp)
    kind = time_kind(type_name)
    if kind is None:
        raise ParamError("timestamp", f"column '{p.timestamp}' is {type_name}; gap_fill needs a "
                         "DATE or TIMESTAMP column. Cast it first (e.g. with a SQL step).")
    if kind == "date" and unit in ("second", "minute", "hour"):
        raise ParamError("interval", f"column '{p.timestamp}' is a DATE: use a day, week or "
                         f"month interval (got '{p.interval}'), or cast it to TIMESTAMP first.")
    if p.timestamp in p.partition_by:
        raise ParamError("partition_by", f"column '{p.timestamp}' is the timestamp; it cannot "
                         "also be in 'partition_by'.")
    keys = [*p.partition_by, p.timestamp]
    others = [c for c in names if c not in keys]
    fills: dict[str, exp.Expr] = {}
    if isinstance(p.fill, dict):
        for c, value in p.fill.items():
            c = ctx.check_column(c, f"fill.{c}")  # the input's spelling
            if c in keys:
                raise ParamError(f"fill.{c}", f"param 'fill': column '{c}' is a partition or "
                                 "timestamp column, which added rows already have. List "
                                 "only other columns.")
            fills[c] = _constant(value, c, ctx)

    grid = _grid(p, ctx, n, unit, kind)
    original = exp.select(*(col(c) for c in names), alias(literal(0), ADDED)).from_(
        ctx.input.table())
    added = exp.select(*(col(c) if c in keys else alias(fills.get(c, exp.Null()), c)
                         for c in names), alias(literal(1), ADDED)).from_(
        exp.Subquery(this=grid, alias=exp.TableAlias(this=ident("grid"))))
    both = exp.union(original, added, distinct=False)
    # Grid points that already have a row are dropped (window, so NULL partitions match).
    has_row = exp.Window(this=exp.Max(this=exp.Sub(this=literal(1), expression=col(ADDED))),
                         partition_by=[col(c) for c in keys])
    marked = exp.select(exp.Star(), alias(has_row, HAS_ROW)).from_(
        exp.Subquery(this=both, alias=exp.TableAlias(this=ident("u"))))
    kept = exp.select(*(col(c) for c in names), col(ADDED)).from_(
        exp.Subquery(this=marked, alias=exp.TableAlias(this=ident("m")))).where(
        exp.or_(exp.EQ(this=col(ADDED), expression=literal(0)),
                exp.EQ(this=col(HAS_ROW), expression=literal(0))))
    if p.fill != "forward":
        return exp.select(*(col(c) for c in names)).from_(
            exp.Subquery(this=kept, alias=exp.TableAlias(this=ident("k"))))

    # Forward: each existing row starts a group (running count of existing rows); the added rows
    # after it share its group and copy its values.
    order = [exp.Ordered(this=col(p.timestamp), nulls_first=False),
             exp.Ordered(this=col(ADDED), nulls_first=False),
             *(exp.Ordered(this=col(c), nulls_first=False) for c in others
               if not ctx.input.type_of(c).upper().startswith("MAP"))]
    running = exp.Window(
        this=exp.Sum(this=exp.Sub(this=literal(1), expression=col(ADDED))),
        partition_by=[col(c) for c in p.partition_by], order=exp.Order(expressions=order),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                            end="CURRENT ROW"))
    grouped = exp.select(exp.Star(), alias(running, GROUP)).from_(
        exp.Subquery(this=kept, alias=exp.TableAlias(this=ident("k"))))

    def copied(c: str) -> exp.Expr:
        first = exp.Window(this=exp.FirstValue(this=col(c)),
                           partition_by=[*(col(x) for x in p.partition_by), col(GROUP)],
                           order=exp.Order(expressions=[
                               exp.Ordered(this=col(ADDED), nulls_first=False)]),
                           spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED",
                                               start_side="PRECEDING", end="CURRENT ROW"))
        return alias(exp.Case(ifs=[exp.If(this=exp.EQ(this=col(ADDED), expression=literal(1)),
                                          true=first)], default=col(c)), c)

    return exp.select(*(col(c) if c in keys else copied(c) for c in names)).from_(
        exp.Subquery(this=grouped, alias=exp.TableAlias(this=ident("f"))))


PATTERN = Pattern(
    name="gap_fill", category="Time", arity=1, params=Params, build=build, doc=__doc__,
    example={"partition_by": ["sensor_id"], "timestamp": "hour", "interval": "1 hour",
             "fill": "forward"},
    keywords=("missing dates", "fill gaps", "every period", "continuous time series",
              "forward fill"),
)
