"""Generate one row per hour, day, week or month between two dates (a calendar table).

The rows are `start`, `start` + 1 interval, `start` + 2 intervals, ... up to but not including
`end` (start inclusive, end exclusive, as dbt_utils.date_spine). Steps are counted from `start`,
which is not rounded: a week spine starting on a Wednesday has Wednesdays; a month spine starting
on the 31st gives the last day of shorter months (Jan 31, Feb 29, Mar 31, ...). `start` and
`end` are dates (`2024-01-01`), timestamps (`2024-01-01 06:00`, hour spines only) or a pipeline
param (`'{{ first_day }}'`); `start` must be before `end`. The column is a DATE for day, week and
month spines and a TIMESTAMP for hour spines. The step has no inputs. The SQL numbers the rows
with a generated integer series (DuckDB `generate_series`, Spark `sequence` + `explode`) and adds
that many intervals to `start`, so both engines give the same rows.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal, Union

from pydantic import Field, field_validator
from sqlglot import exp

from builder.errors import did_you_mean
from builder.sqlparams import PARAM_RE
from patterns.base import BuildContext, ParamError, Pattern, PatternParams, alias, ident, literal

MAX_ROWS = 10_000_000
DateValue = Union[dt.datetime, dt.date, str]


class Params(PatternParams):
    start: DateValue = Field(description="First date or timestamp of the spine (included), "
                             "e.g. 2024-01-01, or a pipeline param '{{ name }}'.")
    end: DateValue = Field(description="End of the spine (excluded), e.g. 2025-01-01, or a "
                           "pipeline param '{{ name }}'.")
    interval: Literal["hour", "day", "week", "month"] = Field(
        "day", description="Step between rows: hour, day, week or month.")
    column: str = Field("date", description="Name of the output column.")

    @field_validator("column")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("give the output column a name")
        return v


def _resolve(value: DateValue, param: str, ctx: BuildContext) -> dt.date:
    """A param value (or the pipeline param it names) as a date or datetime."""
    if isinstance(value, str):
        m = PARAM_RE.fullmatch(value.strip())
        if m:
            name = m.group(1)
            if name not in ctx.pipeline_params:
                raise ParamError(param, f"param '{param}': unknown pipeline param '{name}'."
                                 + (did_you_mean(name, ctx.pipeline_params)
                                    or " Declare it under 'params:' at the top of the "
                                       "pipeline."))
            value = ctx.pipeline_params[name]
    if isinstance(value, dt.date):  # datetime is a date too
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ParamError(param, f"param '{param}' got '{value}'. Write a date such as "
                         "2024-01-01 or a timestamp such as '2024-01-01 06:00:00'.") from None
    if parsed.tzinfo is not None:
        raise ParamError(param, f"param '{param}' got '{value}': leave out the time zone "
                         "(timestamps are UTC).")
    return parsed


def _add_months(d: dt.date, months: int) -> dt.date:
    """``d`` plus ``months`` calendar months, clamped to the month's last day (as SQL does)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    day = min(d.day, (first_next - dt.timedelta(days=1)).day)
    return d.replace(year=year, month=month, day=day)


def _count(start: dt.date, end: dt.date, interval: str) -> int:
    """How many rows ``start + k * interval < end`` there are (k = 0, 1, ...)."""
    if interval == "month":
        k = (end.year - start.year) * 12 + end.month - start.month
        while k > 0 and _add_months(start, k) >= end:
            k -= 1
        return k + 1
    step = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1),
            "week": dt.timedelta(days=7)}[interval]
    return math.ceil((_as_datetime(end) - _as_datetime(start)) / step)


def _as_datetime(d: dt.date) -> dt.datetime:
    return d if isinstance(d, dt.datetime) else dt.datetime(d.year, d.month, d.day)


def _typed(d: dt.date, type_name: str) -> exp.Expr:
    text = d.isoformat(sep=" ") if isinstance(d, dt.datetime) else d.isoformat()
    return exp.cast(literal(text), exp.DataType.build(type_name, dialect="duckdb"))


def build(p: Params, ctx: BuildContext) -> exp.Query:
    start, end = _resolve(p.start, "start", ctx), _resolve(p.end, "end", ctx)
    if p.interval != "hour":
        for name, d in (("start", start), ("end", end)):
            if isinstance(d, dt.datetime):
                if d.time() != dt.time(0):
                    raise ParamError(name, f"param '{name}' has a time of day ({d}); "
                                     f"{p.interval} spines take dates, e.g. {d.date()}.")
        start, end = _date_only(start), _date_only(end)
    if _as_datetime(start) >= _as_datetime(end):
        raise ParamError("end", f"param 'end' ({end}) must be after 'start' ({start}): the "
                         "spine includes 'start' and stops before 'end'.")
    n = _count(start, end, p.interval)
    if n > MAX_ROWS:
        raise ParamError("end", f"the spine would have {n:,} rows (more than {MAX_ROWS:,}). "
                         "Check 'start', 'end' and 'interval'.")
    k = exp.column("k", table="s", quoted=True)
    value: exp.Expr
    if p.interval == "hour":
        value = exp.TimestampAdd(this=_typed(start, "TIMESTAMP"), expression=k,
                                 unit=exp.var("HOUR"))
        out_type = "TIMESTAMP"
    else:
        step: exp.Expr = k if p.interval != "week" else exp.Mul(this=k, expression=literal(7))
        value = exp.DateAdd(this=_typed(start, "DATE"), expression=step,
                            unit=exp.var("MONTH" if p.interval == "month" else "DAY"))
        out_type = "DATE"
    series = exp.select(alias(exp.Explode(this=exp.GenerateSeries(
        start=literal(0), end=literal(n - 1))), "k"))
    return exp.select(
        alias(exp.cast(value, exp.DataType.build(out_type, dialect="duckdb")), p.column)
    ).from_(exp.Subquery(this=series, alias=exp.TableAlias(this=ident("s"))))


def _date_only(d: dt.date) -> dt.date:
    return d.date() if isinstance(d, dt.datetime) else d


PATTERN = Pattern(
    name="date_spine", category="Time", arity=0, params=Params, build=build, doc=__doc__,
    example={"start": "2024-01-01", "end": "2025-01-01", "interval": "day", "column": "day"},
    keywords=("calendar", "dates table", "every day", "generate dates", "series of dates",
              "date range"),
)
