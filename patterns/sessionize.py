"""Split each partition's events into sessions separated by inactivity longer than `gap`.

Rows are ordered by `timestamp` within each `partition_by` group (usually the user). The first
event starts session 1; a new session starts whenever the time since the previous event is
strictly greater than `gap` (a gap exactly equal to it stays in the same session). Events with
the same timestamp always share a session. `gap` is written like `30 minutes`, `1 hour`,
`45 seconds` or `2 days`.

Two columns are added: `session_number` counts sessions from 1 within each partition, and
`session_id` is a string unique across partitions and identical across runs and engines: the
`dbt_utils.generate_surrogate_key` (an md5 hex) of the partition columns and the session number,
so it can be recomputed in any warehouse. Rows with a NULL timestamp keep every column but get
NULL session columns. Every input row is kept; none is reordered in a way the result depends on.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._interval import parse_interval
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_field, columns_field
from patterns.sql import alias, col, ident
from patterns.surrogate_key import surrogate_key

_NEW, _NUM = "__dy_new_session", "__dy_session_number"
_TEMPORAL = ("TIMESTAMP", "DATE")


class Params(PatternParams):
    partition_by: list[str] = columns_field(
        "Columns that identify whose events these are (e.g. user_id); none: one stream.",
        default=[])
    timestamp: str = column_field("Event time column (TIMESTAMP or DATE).")
    gap: str = Field("30 minutes", description="Inactivity longer than this starts a new "
                                                "session, e.g. '30 minutes', '1 hour'.")
    session_column: str = Field("session_id", description="Name of the session id column.")
    number_column: str = Field("session_number",
                               description="Name of the per-partition session number column.")

    @model_validator(mode="after")
    def _names(self) -> Params:
        if not self.session_column or not self.number_column:
            raise ValueError("session_column and number_column must not be empty")
        if self.session_column == self.number_column:
            raise ValueError(f"session_column and number_column are both "
                             f"'{self.session_column}'; give them different names")
        return self


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    n, unit = parse_interval(p.gap, "gap")
    ts_type = rel.type_of(p.timestamp).upper()
    if not ts_type.startswith(_TEMPORAL):
        raise ParamError("timestamp", f"column '{p.timestamp}' is {ts_type}, not a timestamp. "
                         "Convert it first with the cast pattern (e.g. to TIMESTAMP).")
    for name in (p.session_column, p.number_column):
        if rel.has(name):
            raise ParamError("session_column" if name == p.session_column else "number_column",
                             f"the input already has a column '{name}'. Choose another name "
                             "for the new column.")

    ts = col(p.timestamp)
    partition = [col(c) for c in p.partition_by] or None
    order = exp.Order(expressions=[exp.Ordered(this=ts, desc=False, nulls_first=False)])

    def window(func: exp.Expr, frame: exp.WindowSpec | None = None) -> exp.Window:
        return exp.Window(this=func, partition_by=partition, order=order.copy(), spec=frame)

    previous = window(exp.Lag(this=ts.copy()))
    gap = exp.Interval(this=exp.Literal.string(str(n)), unit=exp.Var(this=unit.upper()))
    starts = exp.Case(
        ifs=[exp.If(this=exp.Is(this=ts.copy(), expression=exp.Null()), true=exp.Null()),
             exp.If(this=exp.or_(exp.Is(this=previous, expression=exp.Null()),
                                 exp.GT(this=ts.copy(), expression=exp.Add(
                                     this=previous.copy(), expression=gap))),
                    true=exp.Literal.number(1))],
        default=exp.Literal.number(0))
    flagged = exp.select(exp.Star(), alias(starts, _NEW)).from_(rel.table())

    # RANGE (not ROWS): rows with equal timestamps are peers and get the same running count,
    # whatever order the engine puts them in.
    frame = exp.WindowSpec(kind="RANGE", start="UNBOUNDED", start_side="PRECEDING",
                           end="CURRENT ROW")
    number = exp.Cast(this=window(exp.Sum(this=col(_NEW)), frame),
                      to=exp.DataType.build("BIGINT"))
    numbered = exp.select(exp.Star(), alias(number, _NUM)).from_(
        flagged.subquery(ident("flagged")))

    is_null = exp.Is(this=ts.copy(), expression=exp.Null())
    session_id = surrogate_key([col(c) for c in p.partition_by] + [col(_NUM)])
    projections: list[exp.Expr] = [col(c) for c in rel.column_names]
    projections.append(alias(exp.Case(ifs=[exp.If(this=is_null, true=exp.Null())],
                                      default=session_id), p.session_column))
    projections.append(alias(exp.Case(ifs=[exp.If(this=is_null.copy(), true=exp.Null())],
                                      default=col(_NUM)), p.number_column))
    return exp.select(*projections).from_(numbered.subquery(ident("numbered")))


PATTERN = Pattern(
    name="sessionize", category="Time", arity=1, params=Params, build=build, doc=__doc__,
    example={"partition_by": ["user_id"], "timestamp": "ts", "gap": "30 minutes"},
    keywords=("sessions", "visits", "inactivity gap", "session id", "clickstream"),
)
