"""Check the data against expectations: stop the run, warn, or set the failing rows aside.

`checks` is a list of one-key mappings, dbt's and dbt_utils' data tests:

- `not_null: [cols]`: no NULL (one check per column, named `not_null(col)`).
- `unique: [cols]`: no two rows share the combination of these columns.
- `accepted_values: {column, values}` / `not_accepted_values: {column, values}`: every value is
  (is not) one of `values`.
- `range: {column, min, max, inclusive}`: values between the bounds (either may be left out;
  `inclusive: false` makes both bounds exclusive, as dbt_utils' accepted_range).
- `expression: <SQL boolean>`: true on every row (named `expression(<the SQL>)`).
- `relationships: {column, to, field}`: every value of `column` is a value of `field` (default:
  the same name) in the input `to`: the step's further inputs are what `relationships` and
  `equality` compare with (`to` may be left out when there is one such input).
- `sequential_values: {column, interval, datepart, group_by}`: sorted, each value is the one
  before plus `interval` (default 1; with `datepart`, e.g. `day`, a date or timestamp step).
- `mutually_exclusive_ranges: {lower_bound_column, upper_bound_column, partition_by, gaps,
  zero_length_range_allowed}`: the ranges (per partition) do not overlap; `gaps` is `allowed`
  (default), `not_allowed` (each range starts where the last ended) or `required`; each range
  must end after it starts (or where it starts, with `zero_length_range_allowed: true`), and a
  NULL bound fails.
- `row_count: {min, max}`: the number of rows.
- `recency: {column, datepart, interval, group_by, ignore_time_component}`: the newest value
  (per group) is at most `interval` `datepart`s old (e.g. `{datepart: day, interval: 1}`);
  an empty table, or a group with only NULLs, fails (as in dbt_utils 1.4).
- `not_null_proportion: {column, at_least, at_most, group_by}`: the share of non-NULL values
  (per group) lies between `at_least` and `at_most` (default 1).
- `at_least_one: {column, group_by}`: at least one non-NULL value (per group); `not_constant:
  {column, group_by}`: at least two different non-NULL values (per group). Both take a column
  name alone too.
- `equality: {to, compare_columns}`: the step's rows and the input `to`'s have the same
  distinct rows (over `compare_columns`, default all), failures named by the input they are
  only in (`_only_in`).

Any check takes `where: <SQL condition>` next to it (dbt's `config: where`): it then checks
only the rows where the condition is true, e.g. `- {not_null: [email], where: "status =
'active'"}`. As in dbt's tests, NULL passes `accepted_values`, `not_accepted_values`, `range`,
`relationships`, `sequential_values` and `expression` (an expression that is NULL passes), and
`unique` ignores rows with a NULL in any of its columns: use `not_null` to catch those.

`on_fail` says what a failure does. `error` (the default) stops the run, naming the step, the
check and up to 5 offending rows. `warn` reports each failing check and passes every row on.
`quarantine` passes on only the rows that fail no check and makes the others readable as
`<step id>.rejected`, with a `_failed_checks` column listing the checks each row failed; for
`unique` every row of a duplicated combination is set aside (none is picked as the good one).
`row_count`, `recency`, `not_null_proportion`, `at_least_one`, `not_constant` and `equality`
are about the whole table, so they cannot set rows aside: under `quarantine` they stop the run
like `error` (use a separate `expect` step with `on_fail: warn` to only warn). Either way the
step's rows are the first input's, with its columns in their order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError, Relation
from patterns._checks import Spec, parse_checks
from patterns.base import BuildContext, Built, Check, Pattern, RejectedRows
from patterns.fields import PatternParams
from patterns.sql import alias, col, ident, literal

__all__ = ["FAILED_CHECKS", "PATTERN", "Params", "build", "parse_checks"]

FAILED_CHECKS = "_failed_checks"
ONLY_IN = "_only_in"
_CHECKED, _ROWS, _FAIL = "__dy_checked", "__dy_rows", "__dy_fail"
_FLAG = "__dy_check_{}"
_REF, _KEY = "__dy_ref_{}", "__dy_key_{}"
_STRING_TYPES = ("VARCHAR", "JSON")
_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
# What makes two types comparable (a relationships key, an equality column): same family.
_FAMILIES = {"number": _NUMBER_TYPES + ("DECIMAL",), "text": _STRING_TYPES,
             "time": ("DATE", "TIMESTAMP"), "boolean": ("BOOLEAN",)}


class Params(PatternParams):
    checks: list[dict[str, Any]] = Field(
        description="Checks, each a one-key mapping (optionally with 'where: SQL'): not_null: "
                    "[cols], unique: [cols], accepted_values / not_accepted_values: {column, "
                    "values}, range: {column, min, max, inclusive}, expression: SQL boolean, "
                    "relationships: {column, to, field}, sequential_values: {column, interval, "
                    "datepart, group_by}, mutually_exclusive_ranges: {lower_bound_column, "
                    "upper_bound_column, partition_by, gaps, zero_length_range_allowed}, "
                    "row_count: {min, max}, recency: {column, datepart, interval, group_by}, "
                    "not_null_proportion: {column, at_least, at_most, group_by}, at_least_one: "
                    "column, not_constant: column, equality: {to, compare_columns}.")
    on_fail: Literal["error", "warn", "quarantine"] = Field(
        "error", description="What a failure does: error stops the run, warn reports and "
                             "passes every row, quarantine passes the good rows and sets the "
                             "others aside as '<step>.rejected'.")

    @field_validator("checks", mode="before")
    @classmethod
    def _checks_ok(cls, v: Any) -> Any:
        if isinstance(v, list):
            parse_checks(v)
        return v


# ---- small SQL helpers -------------------------------------------------------------------

def _is_null(e: exp.Expr) -> exp.Expr:
    return exp.Is(this=e, expression=exp.Null())


def _not_null(e: exp.Expr) -> exp.Expr:
    return exp.Not(this=_is_null(e))


def _family(type_: str) -> str | None:
    t = type_.upper()
    for name, prefixes in _FAMILIES.items():
        if t.startswith(prefixes):
            return name
    return None


def _sql_type(name: str) -> exp.DataType:
    return exp.DataType.build(name, dialect="duckdb")


def _value(v: Any, type_: str, param: str, ctx: BuildContext) -> exp.Expr:
    """A check value as a literal of the column's kind; refuses values that cannot compare."""
    t = type_.upper()
    if t in _STRING_TYPES:
        if isinstance(v, bool):
            return literal("true" if v else "false")
        return literal(v.isoformat() if isinstance(v, dt.date) else str(v))
    if t in _NUMBER_TYPES or t.startswith("DECIMAL"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParamError(param, f"{v!r} is not a number, but the column is {type_}.")
        return literal(v)
    if t == "BOOLEAN":
        if not isinstance(v, bool):
            raise ParamError(param, f"{v!r} is not true or false, but the column is BOOLEAN.")
        return literal(v)
    if t.startswith(("DATE", "TIMESTAMP")):
        if isinstance(v, dt.date):
            return literal(v)
        text = str(v)
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            raise ParamError(param, f"{v!r} is not a date or timestamp (write 2024-01-31 or "
                                    f"'2024-01-31 12:00:00'), but the column is {type_}.") \
                from None
        return exp.cast(literal(text), ctx.data_type(type_))
    if isinstance(v, str):
        return exp.cast(literal(v), ctx.data_type(type_))
    return literal(v)


def _check_expression_columns(tree: exp.Expr, param: str, ctx: BuildContext) -> None:
    names = ctx.input.column_names
    lowered = {c.lower() for c in names}
    for column in tree.find_all(exp.Column):
        name = column.name
        if not name or column.table or name in names:
            continue
        if not column.this.quoted and name.lower() in lowered:
            continue  # DuckDB resolves unquoted names case-insensitively
        if column.find_ancestor(exp.Lambda):
            continue
        ctx.check_column(name, param)


def _user_sql(text: str, param: str, ctx: BuildContext) -> exp.Expr:
    tree = ctx.expr(text, param)
    _check_expression_columns(tree, param, ctx)
    return tree


def _where(spec: Spec, ctx: BuildContext) -> exp.Expr | None:
    """The check's ``where`` as TRUE/FALSE (NULL counts as false: the row is not checked)."""
    if spec.where is None:
        return None
    tree = _user_sql(spec.where, spec.param.rsplit(".", 1)[0] + ".where", ctx)
    return exp.Coalesce(this=tree, expressions=[exp.false()])


def _rows(rel: Relation, where: exp.Expr | None) -> exp.Expr:
    """What a check reads: the input, or only its rows that meet the check's ``where``."""
    if where is None:
        return rel.table()
    return exp.select(exp.Star()).from_(rel.table()).where(where.copy()).subquery(ident(_ROWS))


def _window(func: exp.Expr, partition: list[exp.Expr],
            order: list[exp.Expr] | None = None) -> exp.Window:
    return exp.Window(this=func, partition_by=partition or None,
                      order=exp.Order(expressions=order) if order else None)


def _asc(e: exp.Expr) -> exp.Ordered:
    return exp.Ordered(this=e, desc=False, nulls_first=False)


def _reference(spec: Spec, ctx: BuildContext) -> Relation:
    """The input a relationships or equality check compares with (resolves ``to``)."""
    others = ctx.inputs[1:]
    to = spec.options.get("to")
    if to is None:
        if len(others) != 1:
            hint = "add the table to compare with under the step's 'inputs' (after the " \
                "checked one)" if not others else "name one of " + ", ".join(
                    f"'{r.name}'" for r in others) + " in 'to'"
            raise ParamError(spec.param, f"{spec.kind} compares with another input: {hint}.")
        spec.options["to"] = others[0].name
        return others[0]
    for rel in ctx.inputs:
        if rel.name == to:
            return rel
    raise ParamError(spec.param + ".to", f"'{to}' is not an input of this step. Add it under "
                     "'inputs' (after the checked one); inputs: "
                     + ", ".join(f"'{r.name}'" for r in ctx.inputs) + ".")


def _same_family(a: str, b: str, what: str, param: str) -> None:
    fa, fb = _family(a), _family(b)
    if fa != fb or fa is None and a.upper() != b.upper():
        raise ParamError(param, f"{what}: {a} and {b} do not compare. Cast one of them first.")


# ---- row-level checks: a flag per row ----------------------------------------------------

@dataclass
class _RowCheck:
    """A row-level check as SQL over the first input: ``flag`` is TRUE on each failing row."""

    flag: exp.Expr
    joins: list[tuple[exp.Expr, exp.Expr]] = field(default_factory=list)  # (table, on)
    extras: list[exp.Expr] = field(default_factory=list)  # shown with the failing rows


def _comparison(spec: Spec, ctx: BuildContext) -> exp.Expr:
    """accepted_values, not_accepted_values, range, not_null, expression: a row's failure."""
    rel = ctx.input
    c = spec.columns[0] if spec.columns else ""
    if spec.kind == "not_null":
        return _is_null(col(c))
    if spec.kind in ("accepted_values", "not_accepted_values"):
        values = [_value(v, rel.type_of(c), f"{spec.param}.values[{j}]", ctx)
                  for j, v in enumerate(spec.values)]
        found: exp.Expr = exp.In(this=col(c), expressions=values)
        return exp.and_(_not_null(col(c)), exp.Not(this=found) if spec.kind ==
                        "accepted_values" else found)
    if spec.kind == "range":
        inclusive = spec.options.get("inclusive", True)
        outside: list[exp.Expr] = []
        if spec.min is not None:
            low = _value(spec.min, rel.type_of(c), f"{spec.param}.min", ctx)
            outside.append(exp.LT(this=col(c), expression=low) if inclusive
                           else exp.LTE(this=col(c), expression=low))
        if spec.max is not None:
            high = _value(spec.max, rel.type_of(c), f"{spec.param}.max", ctx)
            outside.append(exp.GT(this=col(c), expression=high) if inclusive
                           else exp.GTE(this=col(c), expression=high))
        either = outside[0] if len(outside) == 1 else exp.paren(exp.or_(*outside), copy=False)
        return exp.and_(_not_null(col(c)), either)
    assert spec.kind == "expression"
    tree = _user_sql(spec.sql, spec.param, ctx)
    return exp.Not(this=exp.Coalesce(this=tree, expressions=[exp.true()]))


def _sequential(spec: Spec, where: exp.Expr | None, ctx: BuildContext) -> _RowCheck:
    c = spec.columns[0]
    type_ = ctx.input.type_of(c)
    datepart, step = spec.options["datepart"], spec.options["interval"]
    family = _family(type_)
    if datepart is None and family != "number":
        raise ParamError(spec.param + ".column", f"column '{c}' is {type_}: sequential_values "
                         "steps by a number there, so give 'datepart' (e.g. day) for dates.")
    if datepart is not None and family != "time":
        raise ParamError(spec.param + ".datepart", f"column '{c}' is {type_}, not a date or "
                         "timestamp: leave 'datepart' out to step by a number.")
    partition = [col(g) for g in spec.options["group_by"]] + ([where.copy()] if where else [])
    previous = _window(exp.Lag(this=col(c)), partition, [_asc(col(c))])
    if datepart is None:
        same: exp.Expr = exp.EQ(this=col(c), expression=exp.Add(this=previous.copy(),
                                                                 expression=literal(step)))
    else:
        unit, n = ("day", 7 * step) if datepart == "week" else (datepart, step)
        expected = exp.TimestampAdd(this=previous.copy(), expression=literal(n),
                                    unit=exp.var(unit.upper()))
        same = exp.EQ(this=exp.cast(col(c), _sql_type("TIMESTAMP")),
                      expression=exp.cast(expected, _sql_type("TIMESTAMP")))
    flag = exp.Not(this=exp.Coalesce(this=same, expressions=[exp.true()]))
    return _RowCheck(flag, extras=[alias(previous, f"previous_{c}")])


def _ranges(spec: Spec, where: exp.Expr | None, ctx: BuildContext) -> _RowCheck:
    lower, upper = (col(c) for c in spec.columns)
    lt, ut = (ctx.input.type_of(c) for c in spec.columns)
    _same_family(lt, ut, f"'{spec.columns[0]}' and '{spec.columns[1]}'", spec.param)
    partition = [col(g) for g in spec.options["partition_by"]] + ([where.copy()] if where else [])
    # dbt_utils orders by lower then upper bound; NULLs last on every engine.
    next_lower = _window(exp.Lead(this=lower.copy()), partition,
                         [_asc(lower.copy()), _asc(upper.copy())])
    starts_before_end = (exp.LTE if spec.options["zero_length_range_allowed"] else exp.LT)(
        this=lower.copy(), expression=upper.copy())
    meets_next = {"allowed": exp.LTE, "not_allowed": exp.EQ, "required": exp.LT}[
        spec.options["gaps"]](this=upper.copy(), expression=next_lower.copy())
    ok = exp.and_(exp.Coalesce(this=starts_before_end, expressions=[exp.false()]),
                  exp.Coalesce(this=meets_next, expressions=[_is_null(next_lower.copy())]))
    return _RowCheck(exp.Not(this=exp.paren(ok, copy=False)),
                     extras=[alias(next_lower, f"next_{spec.columns[0]}")])


def _relationship(spec: Spec, i: int, ctx: BuildContext) -> _RowCheck:
    c, ref_field = spec.columns[0], spec.options["field"]
    ref = _reference(spec, ctx)
    ref_index = ctx.inputs.index(ref)
    ctx.check_column(ref_field, spec.param + ".field", input=ref_index)
    _same_family(ctx.input.type_of(c), ref.type_of(ref_field),
                 f"'{c}' and '{ref.name}.{ref_field}'", spec.param)
    key, ref_alias = _KEY.format(i), _REF.format(i)
    keys = exp.select(alias(col(ref_field), key)).distinct().from_(ref.table()).where(
        _not_null(col(ref_field)))
    table = keys.subquery(ident(ref_alias))
    on = exp.EQ(this=col(c), expression=col(key, ref_alias))
    return _RowCheck(exp.and_(_not_null(col(c)), _is_null(col(key, ref_alias))),
                     joins=[(table, on)])


def _row_check(spec: Spec, i: int, ctx: BuildContext) -> _RowCheck:
    """The flag (and joins) of a row-level check, its ``where`` applied."""
    where = _where(spec, ctx)
    if spec.kind == "unique":
        partition = [col(c) for c in spec.columns] + ([where.copy()] if where else [])
        count = _window(exp.Count(this=exp.Star()), partition)
        check = _RowCheck(exp.and_(*(_not_null(col(c)) for c in spec.columns),
                                   exp.GT(this=count, expression=exp.Literal.number(1))))
    elif spec.kind == "sequential_values":
        check = _sequential(spec, where, ctx)
    elif spec.kind == "mutually_exclusive_ranges":
        check = _ranges(spec, where, ctx)
    elif spec.kind == "relationships":
        check = _relationship(spec, i, ctx)
    else:
        check = _RowCheck(_comparison(spec, ctx))
    if where is not None:
        check.flag = exp.and_(where, check.flag)
    return check


def _from_with_joins(rel: Relation, checks: list[_RowCheck], *columns: exp.Expr) -> exp.Select:
    query = exp.select(*columns).from_(rel.table())
    for check in checks:
        for table, on in check.joins:
            query = query.join(table.copy(), on=on.copy(), join_type="left")
    return query


def _row_failing(rel: Relation, check: _RowCheck) -> exp.Query:
    """The input rows a row-level check fails on (with its extra columns, if any)."""
    if not check.extras and not check.flag.find(exp.Window):
        if not check.joins:
            return exp.select(exp.Star()).from_(rel.table()).where(check.flag)
        return _from_with_joins(rel, [check], *(col(c) for c in rel.column_names)).where(
            check.flag)
    inner = _from_with_joins(rel, [check], exp.Star(), alias(check.flag, _FAIL),
                             *check.extras)
    names = rel.column_names + [e.alias for e in check.extras]
    return exp.select(*(col(c) for c in names)).from_(inner.subquery(ident(_CHECKED))).where(
        col(_FAIL))


# ---- table-level checks: one failing row per table or group ------------------------------

def _grouped(rel: Relation, where: exp.Expr | None, group_by: list[str],
             *values: exp.Expr) -> exp.Select:
    query = exp.select(*(col(g) for g in group_by), *values).from_(_rows(rel, where))
    return query.group_by(*(col(g) for g in group_by)) if group_by else query


def _recency(spec: Spec, rel: Relation, where: exp.Expr | None) -> exp.Query:
    c, o = spec.columns[0], spec.options
    if _family(rel.type_of(c)) != "time":
        raise ParamError(spec.param + ".column", f"column '{c}' is {rel.type_of(c)}, not a "
                         "date or timestamp: recency needs one.")
    unit, n = ("day", 7 * o["interval"]) if o["datepart"] == "week" else \
        (o["datepart"], o["interval"])
    as_type = _sql_type("DATE" if o["ignore_time_component"] else "TIMESTAMP")
    threshold = exp.cast(exp.Sub(this=exp.CurrentTimestamp(), expression=exp.Interval(
        this=exp.Literal.string(str(n)), unit=exp.var(unit.upper()))), as_type)
    newest = exp.Max(this=col(c))
    stale = exp.or_(_is_null(newest.copy()),
                    exp.LT(this=exp.cast(newest.copy(), as_type), expression=threshold.copy()))
    return _grouped(rel, where, o["group_by"], alias(newest, "most_recent"),
                    alias(threshold, "threshold")).having(stale)


def _proportion(spec: Spec, rel: Relation, where: exp.Expr | None) -> exp.Query:
    c = spec.columns[0]
    share = exp.Avg(this=exp.Case(ifs=[exp.If(this=_is_null(col(c)), true=literal(0))],
                                  default=literal(1)))
    outside = exp.or_(exp.LT(this=share.copy(), expression=literal(spec.min)),
                      exp.GT(this=share.copy(), expression=literal(spec.max)))
    return _grouped(rel, where, spec.options["group_by"],
                    alias(share, "not_null_proportion")).having(outside)


def _equality(spec: Spec, ctx: BuildContext, where: exp.Expr | None) -> exp.Query:
    rel = ctx.input
    ref = _reference(spec, ctx)
    ref_index = ctx.inputs.index(ref)
    columns = spec.columns or rel.column_names
    if spec.columns:
        for j, c in enumerate(spec.columns):
            ctx.check_column(c, f"{spec.param}.compare_columns[{j}]")
    for c in columns:
        if not ref.has(c):
            raise ParamError(spec.param, f"column '{c}' is not in input '{ref.name}', which "
                             "equality compares with. List the columns to compare in "
                             "'compare_columns'.")
        _same_family(rel.type_of(c), ref.type_of(c), f"column '{c}' of '{rel.name}' and "
                     f"'{ref.name}'", spec.param)
        ctx.check_column(c, spec.param, input=ref_index)

    def side(source: exp.Expr, other: exp.Expr) -> exp.Query:
        keep = exp.select(*(col(c) for c in columns)).from_(source)
        drop = exp.select(*(col(c) for c in columns)).from_(other)
        return exp.Except(this=keep, expression=drop, distinct=True)

    def labelled(diff: exp.Query, name: str) -> exp.Select:
        return exp.select(alias(literal(name), ONLY_IN), *(col(c) for c in columns)).from_(
            diff.subquery(ident(_ROWS)))

    a, b = _rows(rel, where), ref.table()
    return exp.union(labelled(side(a, b), rel.name), labelled(side(b.copy(), a.copy()),
                                                              ref.name), distinct=False)


def _table_failing(spec: Spec, ctx: BuildContext) -> exp.Query:
    """The row(s) saying why a table-level check fails (none when it passes)."""
    rel, where = ctx.input, _where(spec, ctx)
    if spec.kind == "row_count":
        n = exp.Count(this=exp.Star())
        bad: list[exp.Expr] = []
        if spec.min is not None:
            bad.append(exp.LT(this=n.copy(), expression=literal(spec.min)))
        if spec.max is not None:
            bad.append(exp.GT(this=n.copy(), expression=literal(spec.max)))
        return exp.select(alias(n, "row_count")).from_(_rows(rel, where)).having(
            exp.or_(*bad))
    if spec.kind == "recency":
        return _recency(spec, rel, where)
    if spec.kind == "not_null_proportion":
        return _proportion(spec, rel, where)
    if spec.kind == "equality":
        return _equality(spec, ctx, where)
    c, group_by = spec.columns[0], spec.options["group_by"]
    if spec.kind == "at_least_one":
        count = exp.Count(this=col(c))
        return _grouped(rel, where, group_by, alias(count, "non_null_values")).having(
            exp.EQ(this=count.copy(), expression=literal(0)))
    assert spec.kind == "not_constant"
    distinct = exp.Count(this=exp.Distinct(expressions=[col(c)]))
    return _grouped(rel, where, group_by, alias(exp.Min(this=col(c)), c)).having(
        exp.EQ(this=distinct, expression=literal(1)))


# ---- the step ----------------------------------------------------------------------------

_COLUMN_PARAMS = {"accepted_values": ".column", "not_accepted_values": ".column",
                  "range": ".column", "relationships": ".column", "recency": ".column",
                  "sequential_values": ".column", "not_null_proportion": ".column",
                  "at_least_one": ".column", "not_constant": ".column"}


def _check_columns(spec: Spec, ctx: BuildContext) -> None:
    """Every column a check names (group_by and partition_by too) exists in the first input."""
    if spec.kind == "equality":
        return  # compare_columns are checked against both inputs by _equality
    for j, c in enumerate(spec.columns):
        if spec.kind == "unique":
            where = f"{spec.param}[{j}]"
        elif spec.kind == "mutually_exclusive_ranges":
            where = spec.param + (".lower_bound_column", ".upper_bound_column")[j]
        else:
            where = spec.param + _COLUMN_PARAMS.get(spec.kind, "")
        ctx.check_column(c, where)
    for key in ("group_by", "partition_by"):
        for j, c in enumerate(spec.options.get(key, [])):
            ctx.check_column(c, f"{spec.param}.{key}[{j}]")


def build(p: Params, ctx: BuildContext) -> Built:
    rel = ctx.input
    specs = parse_checks(p.checks)
    for spec in specs:
        _check_columns(spec, ctx)
    row_checks: dict[int, _RowCheck] = {}
    failing: list[exp.Query] = []
    for i, spec in enumerate(specs):
        if spec.row_level:
            row_checks[i] = _row_check(spec, i + 1, ctx)
            failing.append(_row_failing(rel, row_checks[i]))
        else:
            failing.append(_table_failing(spec, ctx))
    used = {rel.name} | {s.options["to"] for s in specs if s.options.get("to")}
    unused = [r.name for r in ctx.inputs[1:] if r.name not in used]
    if unused:
        raise ParamError("checks", f"input '{unused[0]}' is not used by any check: the inputs "
                         "after the first are what 'relationships' and 'equality' compare "
                         "with. Name it in a check's 'to', or remove it from 'inputs'.")
    checks: list[Check] = []
    for spec, query in zip(specs, failing):
        on_fail = p.on_fail
        if on_fail == "quarantine" and not spec.row_level:
            on_fail = "error"  # a table-level check cannot set rows aside
        checks.append(Check(name=spec.name, failing=query, on_fail=on_fail))
    if p.on_fail != "quarantine":
        return Built(query=exp.select(exp.Star()).from_(rel.table()), checks=checks)

    if rel.has(FAILED_CHECKS):
        raise ParamError("on_fail", f"the input already has a column '{FAILED_CHECKS}', which "
                         "quarantine adds to the rejected rows. Rename it first.")
    columns = [col(c) for c in rel.column_names]
    if not row_checks:
        rejected = exp.select(*columns, alias(exp.cast(exp.Null(), exp.DataType.build(
            "VARCHAR")), FAILED_CHECKS)).from_(rel.table()).where(exp.false())
        return Built(query=exp.select(exp.Star()).from_(rel.table()), checks=checks,
                     rejected=rejected)
    flags = {i: _FLAG.format(n + 1) for n, i in enumerate(row_checks)}
    checked = _from_with_joins(rel, list(row_checks.values()), exp.Star(), *(
        alias(row_checks[i].flag, flags[i]) for i in row_checks))
    any_failed = exp.or_(*(col(f) for f in flags.values()))
    good = exp.select(*columns).from_(checked.subquery(ident(_CHECKED))).where(
        exp.Not(this=exp.paren(any_failed.copy(), copy=False)))
    # CONCAT_WS skips NULLs on every engine: the names of the checks the row failed.
    reasons = exp.ConcatWs(expressions=[literal(", "), *(
        exp.Case(ifs=[exp.If(this=col(flags[i]), true=literal(specs[i].name))])
        for i in row_checks)], safe=True, coalesce=True)
    rejected = exp.select(*(c.copy() for c in columns), alias(reasons, FAILED_CHECKS)).from_(
        checked.subquery(ident(_CHECKED))).where(any_failed)
    return Built(query=good, checks=checks, rejected=rejected)


PATTERN = Pattern(
    name="expect", category="Quality", arity="n", params=Params, build=build, doc=__doc__,
    example={"checks": [{"not_null": ["user_id", "email"]}, {"unique": ["user_id"]},
                        {"accepted_values": {"column": "status",
                                             "values": ["active", "churned"]}},
                        {"range": {"column": "age", "min": 0, "max": 130}},
                        {"relationships": {"column": "country", "to": "input_b",
                                           "field": "code"}},
                        {"not_null": ["phone"], "where": "status = 'active'"},
                        {"row_count": {"min": 1}},
                        {"expression": "signup_date <= last_seen"}],
             "on_fail": "error"},
    keywords=("test", "assert", "data quality", "validate", "check", "constraint", "not null",
              "unique"),
    rejected_rows=RejectedRows(param="on_fail", value="quarantine"),
    provides=("checks",),
)
