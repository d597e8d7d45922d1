"""Check the data against expectations: stop the run, warn, or set the failing rows aside.

`checks` is a list of one-key mappings: `not_null: [cols]` (each column has no NULL; one check
per column, named `not_null(col)`), `unique: [cols]` (no two rows share the combination of these
columns; named `unique(a, b)`), `accepted_values: {column, values}`, `range: {column, min, max}`
(bounds inclusive, either may be left out), `row_count: {min, max}` and `expression: <SQL
boolean>` (named `expression(<the SQL>)`). As in dbt's tests, NULL passes `accepted_values`,
`range` and `expression` (an expression that is NULL passes), and `unique` ignores rows with a
NULL in any of its columns: use `not_null` to catch those.

`on_fail` says what a failure does. `error` (the default) stops the run, naming the step, the
check and up to 5 offending rows. `warn` reports each failing check and passes every row on.
`quarantine` passes on only the rows that fail no check and makes the others readable as
`<step id>.rejected`, with a `_failed_checks` column listing the checks each row failed; for
`unique` every row of a duplicated combination is set aside (none is picked as the good one).
`row_count` is about the whole table, so it cannot set rows aside: under `quarantine` it stops
the run like `error` (use a separate `expect` step with `on_fail: warn` to only warn). Either
way the step's rows keep the input's columns and order of columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator
from sqlglot import exp

from builder.errors import did_you_mean
from patterns.base import (
    BuildContext,
    Built,
    Check,
    ParamError,
    Pattern,
    PatternParams,
    alias,
    col,
    ident,
    literal,
)

KINDS = ("not_null", "unique", "accepted_values", "range", "row_count", "expression")
FAILED_CHECKS = "_failed_checks"
_CHECKED, _DUPES, _COUNT = "__dy_checked", "__dy_dupes", "__dy_count"
_FLAG = "__dy_check_{}"
_STRING_TYPES = ("VARCHAR", "JSON")
_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")


@dataclass
class _Spec:
    """One parsed check (one item of ``checks``, or one column of a not_null item)."""

    kind: str
    param: str
    columns: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    min: Any = None
    max: Any = None
    sql: str = ""

    @property
    def name(self) -> str:
        if self.kind == "row_count":
            return "row_count"
        if self.kind == "expression":
            return f"expression({self.sql.strip()})"
        return f"{self.kind}({', '.join(self.columns)})"


def _column_list(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(
            isinstance(c, str) and c for c in items):
        raise ValueError(f"{where} takes a list of column names, e.g. [email]")
    return list(items)


def _mapping(value: Any, where: str, keys: tuple[str, ...], example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} takes a mapping, e.g. {example}")
    for k in value:
        if k not in keys:
            raise ValueError(f"{where} has an unknown key '{k}'." + did_you_mean(str(k), keys)
                             + f" Valid keys: {', '.join(keys)}")
    return value


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (dict, list)):
        raise ValueError(f"{where} must be a single value (a number, text or date), not "
                         f"{'null' if value is None else type(value).__name__}")
    return value


def parse_checks(raw: list[Any]) -> list[_Spec]:
    """The checks of a ``checks`` list; raises ValueError naming the bad item."""
    if not raw:
        raise ValueError("list at least one check, e.g. - not_null: [id]")
    specs: list[_Spec] = []
    for i, item in enumerate(raw):
        where = f"checks[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(f"{where} must be a mapping with exactly one check, e.g. "
                             "'- not_null: [email]'")
        kind, value = next(iter(item.items()))
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown check '{kind}'." + (
                did_you_mean(str(kind), KINDS) or "") + f" Valid checks: {', '.join(KINDS)}")
        where = f"{where}.{kind}"
        if kind == "not_null":
            specs += [_Spec(kind, f"{where}[{j}]", [c])
                      for j, c in enumerate(_column_list(value, where))]
        elif kind == "unique":
            columns = _column_list(value, where)
            dup = next((c for c in columns if columns.count(c) > 1), None)
            if dup:
                raise ValueError(f"{where}: column '{dup}' is listed twice")
            specs.append(_Spec(kind, where, columns))
        elif kind == "accepted_values":
            m = _mapping(value, where, ("column", "values"),
                         "{column: status, values: [active, closed]}")
            if not isinstance(m.get("column"), str) or not m.get("column"):
                raise ValueError(f"{where} needs 'column', the column to check")
            values = m.get("values")
            if not isinstance(values, list) or not values:
                raise ValueError(f"{where} needs 'values', a non-empty list of accepted values")
            specs.append(_Spec(kind, where, [m["column"]],
                               values=[_scalar(v, f"{where}.values[{j}]")
                                       for j, v in enumerate(values)]))
        elif kind == "range":
            m = _mapping(value, where, ("column", "min", "max"), "{column: age, min: 0}")
            if not isinstance(m.get("column"), str) or not m.get("column"):
                raise ValueError(f"{where} needs 'column', the column to check")
            if m.get("min") is None and m.get("max") is None:
                raise ValueError(f"{where} needs 'min', 'max' or both")
            lo = None if m.get("min") is None else _scalar(m["min"], f"{where}.min")
            hi = None if m.get("max") is None else _scalar(m["max"], f"{where}.max")
            specs.append(_Spec(kind, where, [m["column"]], min=lo, max=hi))
        elif kind == "row_count":
            m = _mapping(value, where, ("min", "max"), "{min: 1}")
            bounds = {k: m.get(k) for k in ("min", "max")}
            for k, v in bounds.items():
                if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                    raise ValueError(f"{where}.{k} must be a whole number >= 0, got {v!r}")
            if bounds["min"] is None and bounds["max"] is None:
                raise ValueError(f"{where} needs 'min', 'max' or both")
            if bounds["min"] is not None and bounds["max"] is not None and \
                    bounds["min"] > bounds["max"]:
                raise ValueError(f"{where}: min {bounds['min']} is above max {bounds['max']}")
            specs.append(_Spec(kind, where, min=bounds["min"], max=bounds["max"]))
        else:
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where} takes a SQL boolean expression, e.g. 'amount >= 0'")
            specs.append(_Spec(kind, where, sql=value))
    names = [s.name for s in specs]
    dup_name = next((n for n in names if names.count(n) > 1), None)
    if dup_name:
        raise ValueError(f"check '{dup_name}' is listed twice")
    return specs


class Params(PatternParams):
    checks: list[dict[str, Any]] = Field(
        description="Checks, each a one-key mapping: not_null: [cols], unique: [cols], "
                    "accepted_values: {column, values}, range: {column, min, max}, "
                    "row_count: {min, max}, expression: SQL boolean.")
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


# ---- building ----------------------------------------------------------------------------

def _is_null(e: exp.Expr) -> exp.Expr:
    return exp.Is(this=e, expression=exp.Null())


def _not_null(e: exp.Expr) -> exp.Expr:
    return exp.Not(this=_is_null(e))


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


def _condition(spec: _Spec, ctx: BuildContext) -> exp.Expr:
    """A row-level check's failure condition; TRUE or FALSE, never NULL."""
    rel = ctx.input
    if spec.kind == "not_null":
        return _is_null(col(spec.columns[0]))
    if spec.kind == "accepted_values":
        c = spec.columns[0]
        values = [_value(v, rel.type_of(c), f"{spec.param}.values[{j}]", ctx)
                  for j, v in enumerate(spec.values)]
        return exp.and_(_not_null(col(c)),
                        exp.Not(this=exp.In(this=col(c), expressions=values)))
    if spec.kind == "range":
        c = spec.columns[0]
        outside: list[exp.Expr] = []
        if spec.min is not None:
            outside.append(exp.LT(this=col(c), expression=_value(
                spec.min, rel.type_of(c), f"{spec.param}.min", ctx)))
        if spec.max is not None:
            outside.append(exp.GT(this=col(c), expression=_value(
                spec.max, rel.type_of(c), f"{spec.param}.max", ctx)))
        either = outside[0] if len(outside) == 1 else exp.paren(exp.or_(*outside), copy=False)
        return exp.and_(_not_null(col(c)), either)
    assert spec.kind == "expression"
    tree = ctx.expr(spec.sql, spec.param)
    _check_expression_columns(tree, spec.param, ctx)
    return exp.Not(this=exp.Coalesce(this=tree, expressions=[exp.true()]))


def _duplicated(spec: _Spec) -> exp.Expr:
    """TRUE on every row whose (non-NULL) key occurs more than once."""
    count = exp.Window(this=exp.Count(this=exp.Star()),
                       partition_by=[col(c) for c in spec.columns])
    return exp.and_(*(_not_null(col(c)) for c in spec.columns),
                    exp.GT(this=count, expression=exp.Literal.number(1)))


def _failing(spec: _Spec, ctx: BuildContext) -> exp.Query:
    """The rows (or, for row_count, the count) that fail one check, read from the input."""
    rel = ctx.input
    if spec.kind == "row_count":
        n = exp.Count(this=exp.Star())
        bad: list[exp.Expr] = []
        if spec.min is not None:
            bad.append(exp.LT(this=n.copy(), expression=literal(spec.min)))
        if spec.max is not None:
            bad.append(exp.GT(this=n.copy(), expression=literal(spec.max)))
        return exp.select(alias(n, "row_count")).from_(rel.table()).having(exp.or_(*bad))
    if spec.kind == "unique":
        count = exp.Window(this=exp.Count(this=exp.Star()),
                           partition_by=[col(c) for c in spec.columns])
        inner = exp.select(exp.Star(), alias(count, _COUNT)).from_(rel.table()).where(
            exp.and_(*(_not_null(col(c)) for c in spec.columns)))
        return exp.select(*(col(c) for c in rel.column_names)).from_(
            inner.subquery(ident(_DUPES))).where(
            exp.GT(this=col(_COUNT), expression=exp.Literal.number(1)))
    return exp.select(exp.Star()).from_(rel.table()).where(_condition(spec, ctx))


def build(p: Params, ctx: BuildContext) -> Built:
    rel = ctx.input
    specs = parse_checks(p.checks)
    for spec in specs:
        for j, c in enumerate(spec.columns):
            where = {"unique": f"{spec.param}[{j}]", "accepted_values": f"{spec.param}.column",
                     "range": f"{spec.param}.column"}.get(spec.kind, spec.param)
            ctx.check_column(c, where)
    checks: list[Check] = []
    for spec in specs:
        on_fail = p.on_fail
        if on_fail == "quarantine" and spec.kind == "row_count":
            on_fail = "error"  # a row count cannot set rows aside
        checks.append(Check(name=spec.name, failing=_failing(spec, ctx), on_fail=on_fail))
    if p.on_fail != "quarantine":
        return Built(query=exp.select(exp.Star()).from_(rel.table()), checks=checks)

    if rel.has(FAILED_CHECKS):
        raise ParamError("on_fail", f"the input already has a column '{FAILED_CHECKS}', which "
                         "quarantine adds to the rejected rows. Rename it first.")
    row_specs = [s for s in specs if s.kind != "row_count"]
    columns = [col(c) for c in rel.column_names]
    if not row_specs:
        rejected = exp.select(*columns, alias(exp.cast(exp.Null(), exp.DataType.build(
            "VARCHAR")), FAILED_CHECKS)).from_(rel.table()).where(exp.false())
        return Built(query=exp.select(exp.Star()).from_(rel.table()), checks=checks,
                     rejected=rejected)
    flags = [_FLAG.format(i + 1) for i in range(len(row_specs))]
    checked = exp.select(exp.Star(), *(
        alias(_duplicated(s) if s.kind == "unique" else _condition(s, ctx), f)
        for s, f in zip(row_specs, flags))).from_(rel.table())
    any_failed = exp.or_(*(col(f) for f in flags))
    good = exp.select(*columns).from_(checked.subquery(ident(_CHECKED))).where(
        exp.Not(this=exp.paren(any_failed.copy(), copy=False)))
    # CONCAT_WS skips NULLs on every engine: the names of the checks the row failed.
    reasons = exp.ConcatWs(expressions=[literal(", "), *(
        exp.Case(ifs=[exp.If(this=col(f), true=literal(s.name))])
        for s, f in zip(row_specs, flags))], safe=True, coalesce=True)
    rejected = exp.select(*(c.copy() for c in columns), alias(reasons, FAILED_CHECKS)).from_(
        checked.subquery(ident(_CHECKED))).where(any_failed)
    return Built(query=good, checks=checks, rejected=rejected)


PATTERN = Pattern(
    name="expect", category="Quality", arity=1, params=Params, build=build, doc=__doc__,
    example={"checks": [{"not_null": ["user_id", "email"]}, {"unique": ["user_id"]},
                        {"accepted_values": {"column": "status",
                                             "values": ["active", "churned"]}},
                        {"range": {"column": "age", "min": 0, "max": 130}},
                        {"row_count": {"min": 1}},
                        {"expression": "signup_date <= last_seen"}],
             "on_fail": "error"},
    keywords=("test", "assert", "data quality", "validate", "check", "constraint", "not null",
              "unique"),
)
