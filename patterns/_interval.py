"""Interval params shared by the time patterns: ``"30 minutes"``, ``"1 hour"``, ``"2 days"``.

Not a pattern (the leading underscore keeps it out of the palette): a small parser so every
pattern that takes a length of time accepts the same spelling and gives the same error.
"""

from __future__ import annotations

import re

from sqlglot import exp

from builder.plan.types import ParamError

# Canonical unit names (singular), shortest first; the plural with an 's' is accepted too.
UNITS = ("second", "minute", "hour", "day", "week", "month")
# Length of each unit in seconds, for the units that have a fixed length.
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}

_INTERVAL_RE = re.compile(r"^\s*(?:(?P<n>[0-9]+)\s*)?(?P<unit>[A-Za-z]+)\s*$")


def parse_interval(text: str, param: str) -> tuple[int, str]:
    """Parse ``"<number> <unit>"`` into ``(number, unit)`` with the unit singular.

    The number is a positive whole number and may be left out (``"hour"`` is ``"1 hour"``);
    units are second, minute, hour, day, week, month, singular or plural, any case.

    >>> parse_interval("30 minutes", "gap")
    (30, 'minute')
    >>> parse_interval("1 Hour", "interval")
    (1, 'hour')

    Raises:
        ParamError: naming ``param``, with an example and the valid units.
    """
    m = _INTERVAL_RE.match(str(text))
    unit = m["unit"].lower() if m else ""
    if unit.endswith("s") and unit[:-1] in UNITS:
        unit = unit[:-1]
    if not m or unit not in UNITS:
        raise ParamError(param, f"param '{param}' got '{text}'. Write a number and a unit, "
                         "e.g. '30 minutes' or '1 day'. Valid units: "
                         + ", ".join(f"{u}(s)" for u in UNITS) + ".")
    n = int(m["n"]) if m["n"] is not None else 1
    if n < 1:
        raise ParamError(param, f"param '{param}' got '{text}': the number must be 1 or more.")
    return n, unit


def time_kind(type_name: str) -> str | None:
    """``'date'``, ``'timestamp'`` or ``'timestamptz'`` for a DuckDB type name, else None.

    TIMESTAMP_S/_MS/_NS count as ``'timestamp'`` (results are plain TIMESTAMP: Spark has only
    microsecond timestamps).
    """
    t = type_name.strip().upper()
    if t == "DATE":
        return "date"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "timestamptz"
    if t.startswith("TIMESTAMP") or t == "DATETIME":
        return "timestamp"
    return None


def time_type(kind: str) -> exp.DataType:
    """The SQL type of a :func:`time_kind` (DuckDB names; sqlglot renders them for Spark)."""
    name = {"date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ"}[kind]
    return exp.DataType.build(name, dialect="duckdb")


# ---- portable date arithmetic (each renders faithfully for DuckDB and Spark via sqlglot) ----

def sql_type(name: str) -> exp.DataType:
    """A type from its DuckDB name."""
    return exp.DataType.build(name, dialect="duckdb")


def date_literal(text: str) -> exp.Expr:
    """``CAST('YYYY-MM-DD' AS DATE)``."""
    return exp.cast(exp.Literal.string(text), sql_type("DATE"))


def day_index(value: exp.Expr, origin: str = "1970-01-01") -> exp.Expr:
    """Whole days from ``origin`` to the date of ``value`` (negative before it)."""
    return exp.DateDiff(this=exp.cast(value, sql_type("DATE")), expression=date_literal(origin),
                        unit=exp.var("DAY"))


def second_index(value: exp.Expr, origin: str = "1970-01-01") -> exp.Expr:
    """Whole seconds from ``origin`` midnight to ``value`` (sub-seconds dropped, floor).

    Built from the day difference and hour/minute/second, all integers in both engines (Spark's
    TIMESTAMPDIFF truncates towards zero where DuckDB's DATE_DIFF floors, before 1970).
    """
    def times(e: exp.Expr, k: int) -> exp.Expr:
        return exp.Mul(this=e, expression=exp.Literal.number(k))

    return exp.Add(this=exp.Add(this=exp.Add(
        this=times(day_index(value.copy(), origin), 86400),
        expression=times(exp.Hour(this=value.copy()), 3600)),
        expression=times(exp.Minute(this=value.copy()), 60)),
        expression=exp.Second(this=value.copy()))


def month_index(value: exp.Expr) -> exp.Expr:
    """Calendar months since January 1970 (``(year - 1970) * 12 + month - 1``)."""
    years = exp.paren(exp.Sub(this=exp.Year(this=value.copy()),
                              expression=exp.Literal.number(1970)))
    return exp.Sub(this=exp.Add(this=exp.Mul(this=years, expression=exp.Literal.number(12)),
                                expression=exp.Month(this=value.copy())),
                   expression=exp.Literal.number(1))


def floor_div(value: exp.Expr, width: int) -> exp.Expr:
    """``FLOOR(value / width)``: rounds down for negative values too (a BIGINT in Spark,
    a DOUBLE in DuckDB: cast it where the type matters)."""
    return exp.Floor(this=exp.Div(this=exp.paren(value), expression=exp.Literal.number(width)))
