"""Generate one row per minute, hour, day, week, month, quarter or year from a start date (a
calendar table), as dbt_utils.date_spine does.

The rows are `start`, `start` + 1 interval, `start` + 2 intervals, ... and there are as many as
dbt_utils.date_spine gives: the number of `interval` boundaries from `start` to `end` (DuckDB's
`date_diff`; whole weeks for a week spine). So a last partial period is left out, and `end` itself
never is a row: a month spine from 2024-01-01 to 2024-02-15 has one row, 2024-01-01; to
2024-03-01 it has two. An hour spine from 22:00 to 01:30 has 22:00, 23:00 and 00:00. Steps are
counted from `start`, which is not rounded: a week spine starting on a Wednesday has Wednesdays; a
month spine starting on the 31st gives the last day of shorter months (Jan 31, Feb 29, Mar 31).

`start` and `end` are dates (`2024-01-01`), timestamps (`2024-01-01 06:00`, hour and minute
spines only), a pipeline param (`'{{ first_day }}'`) or a SQL expression without columns
(`current_date - INTERVAL 7 DAY`, DuckDB dialect; `{{ name }}` allowed), as dbt_utils takes SQL
expressions. Dates and params are checked when the pipeline is planned: `start` must be before
`end`, with at least one whole interval between them. An expression is evaluated when the step
runs (cast to DATE, or TIMESTAMP for hour and minute spines), and a spine whose `end` is not a
whole interval after `start` is empty. The column is a DATE for day, week, month, quarter and year
spines and a TIMESTAMP for hour and minute spines. The step has no inputs. The SQL numbers the
rows with a generated integer series (DuckDB `generate_series`, Spark `sequence` + `explode`) and
adds that many intervals to `start`, so both engines give the same rows.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal, Union

from pydantic import Field, field_validator
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from builder.errors import did_you_mean
from builder.pipeline.params import PARAM_RE
from builder.plan.types import ParamError
from patterns._interval import day_index, floor_div, month_index, second_index, sql_type
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams
from patterns.sql import alias, ident, literal

MAX_ROWS = 10_000_000
_DATE_LIKE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}(?:[ T][\d:.]*)?\s*$")
DateValue = Union[dt.datetime, dt.date, str]
Interval = Literal["minute", "hour", "day", "week", "month", "quarter", "year"]
# Spines of these intervals hold timestamps; the others hold dates.
_TIME_INTERVALS = ("minute", "hour")
# Each interval as (unit sqlglot adds, how many of them): quarter and year step in months, as
# both engines clamp a month step to the month's last day (Feb 29 + 1 year -> Feb 28).
_STEP = {"minute": ("MINUTE", 1), "hour": ("HOUR", 1), "day": ("DAY", 1), "week": ("DAY", 7),
         "month": ("MONTH", 1), "quarter": ("MONTH", 3), "year": ("MONTH", 12)}


class Params(PatternParams):
    start: DateValue = Field(description="First date or timestamp of the spine (included), "
                             "e.g. 2024-01-01, a pipeline param '{{ name }}' or a SQL "
                             "expression such as current_date - INTERVAL 7 DAY.")
    end: DateValue = Field(description="End of the spine (never a row; a last partial period "
                           "is left out), e.g. 2025-01-01, a pipeline param '{{ name }}' or a "
                           "SQL expression such as current_date.")
    interval: Interval = Field(
        "day", description="Step between rows: minute, hour, day, week, month, quarter or "
                           "year.")
    column: str = Field("date", description="Name of the output column.")

    @field_validator("column")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("give the output column a name")
        return v


def _resolve(value: DateValue, param: str, ctx: BuildContext) -> dt.date | exp.Expr:
    """A param value (or the pipeline param it names) as a date or datetime; any other text as
    the SQL expression it spells."""
    if isinstance(value, str):
        m = PARAM_RE.fullmatch(value.strip())
        if m:
            name = m.group(1)
            if name not in ctx.pipeline_params:
                raise ParamError(param, f"param '{param}': unknown pipeline param '{name}'."
                                 + (did_you_mean(name, ctx.pipeline_params)
                                    or " Declare it under 'params:' at the top of the "
                                       "pipeline."))
            return _as_date(ctx.pipeline_params[name], param, value)
    if isinstance(value, dt.date):  # datetime is a date too
        return value
    if _DATE_LIKE.match(str(value)):  # '2024-02-30' is a wrong date, not 2024 - 2 - 30
        return _as_date(value, param, value)
    return _expression(str(value), param, ctx)


def _as_date(value: object, param: str, shown: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ParamError(param, f"param '{param}' got '{shown}'. Write a date such as "
                         "2024-01-01 or a timestamp such as '2024-01-01 06:00:00'.") from None
    if parsed.tzinfo is not None:
        raise ParamError(param, f"param '{param}' got '{shown}': leave out the time zone "
                         "(timestamps are UTC).")
    return parsed


def _expression(text: str, param: str, ctx: BuildContext) -> exp.Expr:
    """``text`` as a SQL expression; it may not read columns (the step has no inputs)."""
    hint = ("Write a date such as 2024-01-01, a timestamp such as '2024-01-01 06:00:00' or a "
            "SQL expression such as current_date - INTERVAL 7 DAY.")
    try:
        tree = ctx.expr(text, param)
    except (ParseError, TokenError):
        raise ParamError(param, f"param '{param}' got '{text}'. {hint}") from None
    column = next(tree.find_all(exp.Column), None)
    if column is not None:
        raise ParamError(param, f"param '{param}' got '{text}', which reads '{column.name}' "
                         f"as a column, but the step has no inputs. {hint}")
    return tree


def _month_number(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _add_months(d: dt.date, months: int) -> dt.date:
    """``d`` plus ``months`` calendar months, clamped to the month's last day (as SQL does)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    day = min(d.day, (first_next - dt.timedelta(days=1)).day)
    return d.replace(year=year, month=month, day=day)


def _count(start: dt.date, end: dt.date, interval: str) -> int:
    """The rows dbt_utils.date_spine gives: the ``interval`` boundaries from ``start`` to ``end``
    as DuckDB's date_diff counts them (whole weeks for ``week``)."""
    if interval in _TIME_INTERVALS:
        width = 60 if interval == "minute" else 3600
        a, b = (int((_as_datetime(d) - dt.datetime(1970, 1, 1)).total_seconds()) // width
                for d in (start, end))
        return b - a
    days = (end - start).days
    if interval in ("day", "week"):
        return days if interval == "day" else days // 7
    months = _month_number(end) - _month_number(start)
    if interval == "month":
        return months
    if interval == "quarter":
        return _month_number(end) // 3 - _month_number(start) // 3
    return end.year - start.year


def _first_end(start: dt.date, interval: str) -> dt.date:
    """The earliest ``end`` that gives a one-row spine from ``start`` (for the error's hint)."""
    if interval in _TIME_INTERVALS:
        unit = dt.timedelta(minutes=1) if interval == "minute" else dt.timedelta(hours=1)
        t = _as_datetime(start)
        t = t.replace(second=0, microsecond=0) if interval == "minute" else \
            t.replace(minute=0, second=0, microsecond=0)
        return t + unit
    if interval in ("day", "week"):
        return start + dt.timedelta(days=1 if interval == "day" else 7)
    first = dt.date(start.year, start.month, 1)
    if interval == "month":
        return _add_months(first, 1)
    if interval == "quarter":
        return _add_months(dt.date(start.year, start.month - (start.month - 1) % 3, 1), 3)
    return dt.date(start.year + 1, 1, 1)


def _count_sql(start: exp.Expr, end: exp.Expr, interval: str) -> exp.Expr:
    """:func:`_count` in SQL, for expressions (integer arithmetic both engines agree on)."""
    def diff(index: exp.Expr, of_start: exp.Expr) -> exp.Expr:
        return exp.Sub(this=exp.paren(index), expression=exp.paren(of_start))

    if interval in _TIME_INTERVALS:
        width = 60 if interval == "minute" else 3600
        a, b = (exp.cast(floor_div(second_index(d), width), sql_type("BIGINT"))
                for d in (start, end))
        return diff(b, a)
    if interval in ("day", "week"):
        days = diff(day_index(end), day_index(start))
        return days if interval == "day" else \
            exp.cast(floor_div(days, 7), sql_type("BIGINT"))
    if interval == "month":
        return diff(month_index(end), month_index(start))
    if interval == "quarter":
        a, b = (exp.cast(floor_div(month_index(d), 3), sql_type("BIGINT"))
                for d in (start, end))
        return diff(b, a)
    return diff(exp.Year(this=end), exp.Year(this=start))


def _as_datetime(d: dt.date) -> dt.datetime:
    return d if isinstance(d, dt.datetime) else dt.datetime(d.year, d.month, d.day)


def _date_only(d: dt.date) -> dt.date:
    return d.date() if isinstance(d, dt.datetime) else d


def _typed(d: dt.date | exp.Expr, type_name: str) -> exp.Expr:
    if isinstance(d, exp.Expr):
        return exp.cast(d, sql_type(type_name))
    text = d.isoformat(sep=" ") if isinstance(d, dt.datetime) else d.isoformat()
    return exp.cast(literal(text), sql_type(type_name))


def _no_time_of_day(p: Params, name: str, d: dt.date) -> dt.date:
    """``d`` as a date for day and longer spines (refused with a time of day)."""
    if p.interval in _TIME_INTERVALS:
        return d
    if isinstance(d, dt.datetime) and d.time() != dt.time(0):
        raise ParamError(name, f"param '{name}' has a time of day ({d}); "
                         f"{p.interval} spines take dates, e.g. {d.date()}.")
    return _date_only(d)


def _check_dates(p: Params, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date, int]:
    """Dates (no time of day) for day and longer spines, ``start`` before ``end`` and the row
    count within bounds; returns the dates and the count."""
    start, end = _no_time_of_day(p, "start", start), _no_time_of_day(p, "end", end)
    if _as_datetime(start) >= _as_datetime(end):
        raise ParamError("end", f"param 'end' ({end}) must be after 'start' ({start}): the "
                         "spine includes 'start' and stops before 'end'.")
    n = _count(start, end, p.interval)
    if n < 1:
        raise ParamError("end", f"the spine from {start} to {end} is empty: there is no whole "
                         f"{p.interval} between them (rows stop at the last {p.interval} "
                         "boundary before 'end', as in dbt_utils.date_spine). Set 'end' to "
                         f"{_first_end(start, p.interval)} or later.")
    if n > MAX_ROWS:
        raise ParamError("end", f"the spine would have {n:,} rows (more than {MAX_ROWS:,}). "
                         "Check 'start', 'end' and 'interval'.")
    return start, end, n


def build(p: Params, ctx: BuildContext) -> exp.Query:
    start, end = _resolve(p.start, "start", ctx), _resolve(p.end, "end", ctx)
    out_type = "TIMESTAMP" if p.interval in _TIME_INTERVALS else "DATE"
    k = exp.column("k", table="s", quoted=True)
    unit, per = _STEP[p.interval]
    step: exp.Expr = k if per == 1 else exp.Mul(this=k, expression=literal(per))
    if isinstance(start, dt.date) and isinstance(end, dt.date):
        start, end, n = _check_dates(p, start, end)
        series = exp.select(alias(exp.Explode(this=exp.GenerateSeries(
            start=literal(0), end=literal(n - 1))), "k"))
    else:  # an expression: the count is computed when the step runs
        if isinstance(start, dt.date):
            start = _no_time_of_day(p, "start", start)
        if isinstance(end, dt.date):
            end = _no_time_of_day(p, "end", end)
        # INTEGER: Spark's date_add takes an INT day count (a BIGINT series is refused).
        count = exp.select(alias(exp.cast(_count_sql(_typed(start, out_type),
                                                     _typed(end, out_type), p.interval),
                                          sql_type("INTEGER")), "n"))
        n_col = exp.column("n", table="c", quoted=True)
        # Spark's sequence(0, -1) counts down, so the series never ends below 0; the WHERE
        # below drops its one row when the spine is empty.
        last = exp.Case(ifs=[exp.If(this=exp.GT(this=n_col, expression=literal(0)),
                                    true=exp.Sub(this=n_col.copy(), expression=literal(1)))],
                        default=literal(0))
        series = exp.select(alias(exp.Explode(this=exp.GenerateSeries(
            start=literal(0), end=last)), "k"), alias(n_col.copy(), "n")).from_(
            exp.Subquery(this=count, alias=exp.TableAlias(this=ident("c"))))
    base = _typed(start, out_type)
    value: exp.Expr = exp.TimestampAdd(this=base, expression=step, unit=exp.var(unit)) \
        if out_type == "TIMESTAMP" else exp.DateAdd(this=base, expression=step, unit=exp.var(unit))
    query = exp.select(alias(exp.cast(value, sql_type(out_type)), p.column)).from_(
        exp.Subquery(this=series, alias=exp.TableAlias(this=ident("s"))))
    if len(series.selects) > 1:
        query = query.where(exp.LT(this=k.copy(), expression=exp.column("n", table="s",
                                                                         quoted=True)))
    return query


PATTERN = Pattern(
    name="date_spine", category="Time", arity=0, params=Params, build=build, doc=__doc__,
    example={"start": "2024-01-01", "end": "2025-01-01", "interval": "day", "column": "day"},
    keywords=("calendar", "dates table", "every day", "generate dates", "series of dates",
              "date range"),
)
