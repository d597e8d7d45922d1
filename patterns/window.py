"""Add window-function columns: ranks, previous/next values, running or moving aggregates.

Rows are grouped by `partition_by` (the whole input is one group when it is empty) and ordered
by `order_by` (NULLs sort last unless an `order_by` item says otherwise); every input row is kept
and each item of `functions` adds one column, named `as` (default `function_column`, or just the
function name for `row_number`, `rank`, `dense_rank` and `count` without a column).

`row_number` numbers rows 1, 2, 3...; `rank` and `dense_rank` give rows that tie on `order_by`
the same rank (`rank` then skips: 1, 1, 3; `dense_rank` does not: 1, 1, 2). `lag` and `lead` take
`column` from the row `offset` rows before or after (default 1), NULL when there is none. These
five need `order_by`. `sum`, `avg`, `min`, `max` and `count` ignore NULL values (`count`
without a column counts rows); their `frame` is `running` (from the first row of the partition
to the current row: ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) by default when `order_by`
is given, else `whole` (all rows of the partition); `{preceding: n}` is a moving window of the
current row and the n rows before it (ROWS BETWEEN n PRECEDING AND CURRENT ROW). Frames count
rows, not values (ROWS, not RANGE): rows that tie on `order_by` still enter a running total one by
one. `sum` of integer columns is a BIGINT, `avg` a DOUBLE.

Ties are broken deterministically: for `row_number`, `lag`, `lead` and framed aggregates, rows
that tie on `order_by` are ordered further by the remaining columns in column order (ascending,
NULLs last; MAP columns are skipped), so every run gives the same result. NULL values in
`partition_by` form a partition of their own, as in GROUP BY.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import (
    OrderItem,
    OutputName,
    PatternParams,
    column_field,
    columns_field,
    function_output,
    order_by_field,
    order_specs,
)
from patterns.sql import (
    alias,
    col,
    is_integer_type,
    literal,
    ordered,
    simple_aggregate,
    tie_breakers,
)

Function = Literal["row_number", "rank", "dense_rank", "lag", "lead", "sum", "avg", "min",
                   "max", "count"]
_RANKING = ("row_number", "rank", "dense_rank")
_OFFSET = ("lag", "lead")
_AGGREGATES = ("sum", "avg", "min", "max", "count")


class Preceding(BaseModel):
    """A moving frame: the current row and the ``preceding`` rows before it."""

    model_config = ConfigDict(extra="forbid")
    preceding: int = Field(description="How many rows before the current row the frame "
                                       "includes (0 or more).", ge=0)


class WindowFunction(BaseModel):
    """One window column: a function, the column it reads and its output name."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    function: Function = Field(description="The window function.")
    column: str | None = column_field(
        "Column it reads (lag, lead, sum, avg, min, max; optional for count).", default=None)
    offset: int | None = Field(
        None, ge=1, description="lag/lead only: how many rows back or ahead (default 1).")
    frame: Union[Literal["running", "whole"], Preceding, None] = Field(
        None, description="Aggregates only: 'running' (default with order_by), 'whole' "
                          "partition (default without), or {preceding: n}.")
    as_: OutputName = Field(None, alias="as", description="Output column name "
                                                             "(default function_column).")

    @field_validator("frame", mode="before")
    @classmethod
    def _frame(cls, v: object) -> object:
        # Checked by hand so a bad value gives one message, not one per Union branch.
        valid = "Valid values: running, whole, {preceding: n}"
        if v is None or v in ("running", "whole") or isinstance(v, Preceding):
            return v
        if isinstance(v, dict):
            n = v.get("preceding")
            if set(v) != {"preceding"} or not isinstance(n, int) or isinstance(n, bool) \
                    or n < 0:
                raise ValueError(f"got {v}. A moving frame is {{preceding: n}} with n a whole "
                                 "number, 0 or more")
            return Preceding(preceding=n)
        raise ValueError(f"got '{v}'. {valid}")

    @model_validator(mode="after")
    def _consistent(self) -> WindowFunction:
        f = self.function
        if f in _RANKING and self.column is not None:
            raise ValueError(f"function '{f}' takes no 'column'")
        if f not in _RANKING and f != "count" and self.column is None:
            raise ValueError(f"function '{f}' needs a 'column'")
        if f not in _OFFSET and self.offset is not None:
            raise ValueError(f"'offset' applies to lag and lead only, not '{f}'")
        if f not in _AGGREGATES and self.frame is not None:
            raise ValueError(f"'frame' applies to sum, avg, min, max and count only, not '{f}'")
        return self

    @property
    def output(self) -> str:
        return function_output(self.function, self.column, self.as_)


class Params(PatternParams):
    partition_by: list[str] = columns_field(
        "Columns that define the partitions (none: the whole input is one partition).",
        default=[])
    order_by: list[OrderItem] = order_by_field(
        "Row order within a partition; needed by ranks, lag, lead and running frames.",
        default=[])
    functions: list[WindowFunction] = Field(
        description="The columns to add: function, column, offset, frame, as.", min_length=1)

    @field_validator("partition_by")
    @classmethod
    def _partition_by(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            dup = next(c for c in v if v.count(c) > 1)
            raise ValueError(f"column '{dup}' is listed twice")
        return v

    @model_validator(mode="after")
    def _unique_outputs(self) -> Params:
        names = [f.output.lower() for f in self.functions]
        dup = next((f.output for f in self.functions if names.count(f.output.lower()) > 1), None)
        if dup is not None:
            raise ValueError(f"two functions would both add the column '{dup}'; give one "
                             "another name with 'as'")
        return self



def _frame(f: WindowFunction, has_order: bool) -> exp.WindowSpec | None:
    frame = f.frame if f.frame is not None else ("running" if has_order else "whole")
    if frame == "whole":
        if not has_order:
            return None  # without ORDER BY the default frame is the whole partition
        return exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                              end="UNBOUNDED", end_side="FOLLOWING")
    start: str | exp.Expr = "UNBOUNDED" if frame == "running" else \
        literal(frame.preceding) if isinstance(frame, Preceding) else "UNBOUNDED"
    return exp.WindowSpec(kind="ROWS", start=start, start_side="PRECEDING", end="CURRENT ROW")


def _function(f: WindowFunction) -> exp.Expr:
    c = col(f.column) if f.column is not None else None
    name = f.function
    if name == "row_number":
        return exp.RowNumber()
    if name == "rank":
        return exp.Rank()
    if name == "dense_rank":
        return exp.DenseRank()
    assert c is not None or name == "count"
    if name in _OFFSET:
        cls = exp.Lag if name == "lag" else exp.Lead
        return cls(this=c, offset=literal(f.offset or 1))
    return simple_aggregate(name, c)


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    specs = order_specs(p.order_by)
    taken = {c.lower() for c in rel.column_names}
    user_order = [ordered(s) for s in specs]
    full_order = user_order + tie_breakers(rel, p.partition_by + [s.column for s in specs])
    partition = [col(c) for c in p.partition_by]
    projections: list[exp.Expr] = [exp.Star()]
    for i, f in enumerate(p.functions):
        where = f"functions[{i}]"
        if f.column is not None:  # the input's spelling (names match ignoring case)
            f = p.functions[i] = f.model_copy(update={"column": ctx.check_column(
                f.column, f"{where}.column")})
        if f.output.lower() in taken:
            raise ParamError(f"{where}.as", f"the input already has a column '{f.output}'; "
                             "choose another name with 'as'.")
        needs_order = f.function in _RANKING or f.function in _OFFSET or \
            isinstance(f.frame, Preceding) or f.frame == "running"
        if needs_order and not specs:
            if f.frame is None:
                raise ParamError(f"{where}.function", f"function '{f.function}' needs "
                                 "'order_by' to know the row order.")
            what = f"'{f.frame}'" if isinstance(f.frame, str) else "a {preceding: n}"
            raise ParamError(f"{where}.frame", f"{what} frame needs 'order_by' to know the row "
                             "order (or use frame: whole).")
        value = _function(f)
        if f.function == "sum" and f.column is not None and \
                is_integer_type(rel.type_of(f.column)):
            cast_to = exp.DataType.build("BIGINT")
        else:
            cast_to = None
        if f.function in ("rank", "dense_rank"):
            order = user_order  # ties must share a rank: no tie-breakers
        else:
            order = full_order if specs else []
        spec = _frame(f, bool(specs)) if f.function in _AGGREGATES else None
        window: exp.Expr = exp.Window(this=value, partition_by=partition or None,
                                      order=exp.Order(expressions=order) if order else None,
                                      spec=spec)
        if cast_to is not None:
            # DuckDB sums integers into HUGEINT, Spark into BIGINT: settle on BIGINT everywhere.
            window = exp.Cast(this=window, to=cast_to)
        projections.append(alias(window, f.output))
    return exp.select(*projections).from_(rel.table())


PATTERN = Pattern(
    name="window", category="Aggregate & window", arity=1, params=Params, build=build,
    doc=__doc__,
    example={"partition_by": ["user_id"], "order_by": ["ts"],
             "functions": [{"function": "row_number", "as": "event_no"},
                           {"function": "lag", "column": "ts", "as": "previous_ts"},
                           {"function": "sum", "column": "amount", "as": "running_amount"}]},
    keywords=("running total", "cumulative", "lag", "lead", "rank", "row number", "moving average",
              "previous row"),
)
