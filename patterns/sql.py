"""sqlglot helpers for build functions: parse and check users' expressions, quote names, build
ORDER BY items, literals and aggregates.

Every column or alias a pattern writes goes through :func:`ident` (quoted), every user's SQL
expression through :func:`checked_expression` (the statement check of SQL steps).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from builder.errors import CompileError
from builder.pipeline.params import (
    Masked,
    mask_params,
    misplaced_message,
    misplaced_param,
    non_finite_literal,
)
from builder.plan import sqlcheck
from builder.plan.types import ParamError, Relation
from patterns.fields import OrderSpec


@lru_cache(maxsize=4096)
def _parsed(sql: str) -> exp.Expr:
    # Too deep a text is a parse error like any other (callers name the step and param).
    issue = sqlcheck.nesting_issue(sql)
    if issue is not None:
        raise ParseError.new(issue.message, description=sqlcheck.NESTED_TOO_DEEP,
                             line=issue.line, col=issue.col, highlight="(")
    try:
        return sqlglot.parse_one(sql, dialect="duckdb")
    except RecursionError:  # NOT NOT NOT ...: no parentheses, still too deep for sqlglot
        raise ParseError.new("nested too deeply", description="nested too deeply to parse",
                             highlight=sql[:20]) from None


def parse_expression(sql: str, *, copy: bool = True) -> exp.Expr:
    """Parse SQL text (DuckDB dialect). Parsed once per text: validation and build both read an
    expression, and the app re-plans on every edit. ``copy=False`` returns the shared tree,
    which the caller must only read."""
    tree = _parsed(sql)
    return tree.copy() if copy else tree


def checked_expression(text: str, inputs: list[str],
                       param: str | None = None) -> tuple[exp.Expr, Masked]:
    """A SQL expression param parsed (a copy) with its ``{{ name }}`` masked, and checked.

    Every expression param of every pattern comes through here (``BuildContext.expr``, and
    validation of ``sql_field``/``sql_map_field`` params): it gets the statement check of SQL
    steps (no statements, no file or environment functions, no table functions) and may read
    only ``inputs``; each ``{{ name }}`` must stand where a value goes. Raises
    :class:`ParamError` naming ``param``.
    """
    try:
        masked = mask_params(text)
        tree = parse_expression(masked.text)
    except CompileError as e:
        raise ParamError(param, e.problems[0].message) from None
    except (ParseError, TokenError) as e:
        what = f"param '{param}'" if param else "the expression"
        raise ParamError(param, masked.unmask(f"{what} is not a valid SQL expression: "
                                              f"{parse_error_text(e)}")) from None
    issue = sqlcheck.check_expression(tree, inputs)
    if issue:
        raise ParamError(param, masked.unmask(issue.message))
    bad = misplaced_param(masked, tree)
    if bad:
        why, ref = bad
        raise ParamError(param, misplaced_message(why, ref, position=True))
    return tree, masked


def parse_error_text(e: Exception) -> str:
    """The first parse error of sqlglot in one line: what and near which token."""
    if isinstance(e, ParseError) and e.errors:
        err = e.errors[0]
        return f"{str(err.get('description', 'cannot parse')).rstrip('.')} near " \
               f"'{err.get('highlight', '')}'."
    return str(e).splitlines()[0]


def clear_parse_cache() -> None:
    """Forget parsed expressions (the benchmark times planning as a new process would)."""
    _parsed.cache_clear()


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: every column or alias a pattern writes goes through this."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, optionally qualified by a (quoted) table alias."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def alias(expression: exp.Expr, name: str) -> exp.Alias:
    """``expression AS "name"`` with the alias quoted."""
    return exp.Alias(this=expression, alias=ident(name))


def ordered(spec: OrderSpec, table: str | None = None) -> exp.Ordered:
    """An ORDER BY item with explicit NULLS placement (engines differ in their defaults)."""
    return exp.Ordered(this=col(spec.column, table), desc=spec.descending,
                       nulls_first=not spec.nulls_last)

INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                           "USMALLINT", "UINTEGER", "UBIGINT"})


# Prefixes of DuckDB's number types (DECIMAL(18,3) starts with DECIMAL).
NUMBER_TYPES = (*sorted(INTEGER_TYPES), "FLOAT", "DOUBLE", "REAL", "DECIMAL")


def is_number_type(type_name: str | None) -> bool:
    """True for DuckDB's integer, floating-point and decimal types."""
    return bool(type_name) and str(type_name).upper().startswith(NUMBER_TYPES)


def is_integer_type(type_name: str | None) -> bool:
    """True for DuckDB integer types. Their sums differ in type between engines (DuckDB:
    HUGEINT, Spark: BIGINT), so patterns cast integer sums to BIGINT."""
    return (type_name or "").split("(")[0].strip().upper() in INTEGER_TYPES


_SIMPLE_AGGREGATES: dict[str, type[exp.AggFunc]] = {
    "sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "median": exp.Median}


def simple_aggregate(function: str, arg: exp.Expr | None) -> exp.Expr:
    """count (``arg`` None: count(*)), count_distinct, sum, avg, min, max or median of ``arg``.

    One place for the mapping the aggregate, pivot and window patterns share.
    """
    if function == "count":
        return exp.Count(this=arg if arg is not None else exp.Star())
    if arg is None:
        raise ValueError(f"function '{function}' needs a column")
    if function == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[arg]))
    return _SIMPLE_AGGREGATES[function](this=arg)


def fresh_name(base: str, taken: Iterable[str]) -> str:
    """A helper column name that no input column uses (compared case-insensitively)."""
    lowered = {t.lower() for t in taken}
    name = base
    while name.lower() in lowered:
        name = "_" + name
    return name


def tie_breakers(rel: Relation, used: Iterable[str]) -> list[exp.Ordered]:
    """The columns not in ``used``, ascending NULLs last: makes a row order deterministic.

    MAP columns are skipped: Spark cannot sort by them.
    """
    skip = set(used)
    return [ordered(OrderSpec(column=c.name)) for c in rel.columns
            if c.name not in skip and not c.type.upper().startswith("MAP")]


def literal(value: Any) -> exp.Expr:
    """A Python value as a SQL literal expression (strings quoted by sqlglot)."""
    special = non_finite_literal(value)  # inf/nan: never bare words (column names)
    return special if special is not None else exp.convert(value)

