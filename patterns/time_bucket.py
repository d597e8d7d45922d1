"""Truncate a date or timestamp column to the start of its time bucket (e.g. 15 minutes).

`interval` is a number and a unit: `1 hour`, `15 minutes`, `2 weeks`, `3 months` (units: second,
minute, hour, day, week, month; singular or plural). Each value becomes the start of the bucket
that contains it. Buckets of one unit are calendar units (`date_trunc`): `1 week` starts on
Monday, `1 month` on the 1st. Buckets of several units are counted from the Unix epoch
(1970-01-01 00:00:00), except weeks, which are counted from Monday 1969-12-29 so that they start
on Mondays too: `15 minutes` gives :00, :15, :30, :45; `2 days` gives buckets starting on the
even days since 1970-01-01; `3 months` gives quarters (Jan, Apr, Jul, Oct). Sub-second parts are
ignored; timestamps with a time zone are bucketed on their wall clock in the session time zone
(UTC). A DATE column stays a DATE (and takes day, week or month buckets only); a TIMESTAMP stays
a TIMESTAMP (TIMESTAMP_S/_MS/_NS become TIMESTAMP). NULL stays NULL. By default the column is
replaced in place; with `as` the bucket is written to that column instead (replacing it in place
if it exists, else added at the end) and the original column is kept. Row order is unchanged.
"""

from __future__ import annotations

from pydantic import Field
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._interval import (
    UNIT_SECONDS,
    date_literal,
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
from patterns.fields import OutputName, PatternParams, column_field
from patterns.sql import alias, col, literal

# Origins of the multi-unit buckets: the Unix epoch, and the Monday before it for weeks.
_EPOCH = "1970-01-01"
_EPOCH_MONDAY = "1969-12-29"


class Params(PatternParams):
    column: str = column_field("DATE or TIMESTAMP column to bucket.")
    interval: str = Field(description="Bucket length: a number and a unit, e.g. '15 minutes', "
                          "'1 hour', '1 week', '3 months'. Units: second, minute, hour, day, "
                          "week, month.")
    as_: OutputName = Field(None, alias="as", description="Column to write the bucket start "
                            "to; by default 'column' itself is replaced.")


def _floor_to(value: exp.Expr, width: int, to: str) -> exp.Expr:
    """``CAST(FLOOR(value / width) * width AS to)``: floor to a multiple of width (negatives too)."""
    return exp.cast(exp.Mul(this=floor_div(value, width), expression=literal(width)),
                    sql_type(to))


def bucket_expr(column: exp.Expr, n: int, unit: str) -> exp.Expr:
    """The start of the bucket of ``n`` ``unit`` s containing ``column`` (not cast back).

    Only functions that sqlglot renders faithfully for DuckDB and Spark: date_trunc, year/
    month/hour/minute/second, day differences between dates, date/timestamp addition.
    """
    if n == 1:
        return exp.TimestampTrunc(this=column, unit=exp.var(unit.upper()))
    if unit == "month":
        return exp.DateAdd(this=date_literal(_EPOCH),
                           expression=_floor_to(month_index(column), n, "INT"),
                           unit=exp.var("MONTH"))
    if unit in ("day", "week"):
        origin = _EPOCH_MONDAY if unit == "week" else _EPOCH
        width = n * (7 if unit == "week" else 1)
        return exp.DateAdd(this=date_literal(origin),
                           expression=_floor_to(day_index(column, origin), width, "INT"),
                           unit=exp.var("DAY"))
    origin_ts = exp.cast(literal(f"{_EPOCH} 00:00:00"), sql_type("TIMESTAMP"))
    return exp.TimestampAdd(this=origin_ts,
                            expression=_floor_to(second_index(column), n * UNIT_SECONDS[unit],
                                                 "BIGINT"),
                            unit=exp.var("SECOND"))


def build(p: Params, ctx: BuildContext) -> exp.Query:
    n, unit = parse_interval(p.interval, "interval")
    type_name = ctx.input.type_of(p.column)
    kind = time_kind(type_name)
    if kind is None:
        raise ParamError("column", f"column '{p.column}' is {type_name}; time_bucket needs a "
                         "DATE or TIMESTAMP column. Cast it first (e.g. with a SQL step).")
    if kind == "date" and unit in ("second", "minute", "hour"):
        raise ParamError("interval", f"column '{p.column}' is a DATE: bucket it by day, week "
                         f"or month (got '{p.interval}'), or cast it to TIMESTAMP first.")
    bucket = exp.cast(bucket_expr(col(p.column), n, unit), time_type(kind))
    target = p.as_ or p.column
    names = ctx.input.column_names
    items: list[exp.Expr] = [alias(bucket.copy(), c) if c == target else col(c) for c in names]
    if target not in names:
        items.append(alias(bucket, target))
    return exp.select(*items).from_(ctx.input.table())


PATTERN = Pattern(
    name="time_bucket", category="Time", arity=1, params=Params, build=build, doc=__doc__,
    example={"column": "ts", "interval": "15 minutes", "as": "ts_15min"},
    keywords=("truncate date", "per day", "per hour", "per week", "group by time", "period"),
)
