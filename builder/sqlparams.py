"""``{{ name }}`` pipeline params, inserted into SQL as quoted literals, never as raw text."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import Any

from sqlglot import exp

from builder.errors import CompileError, did_you_mean

PARAM_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ANY_BRACES_RE = re.compile(r"\{\{(.*?)\}\}", re.S)


def non_finite_literal(value: Any) -> exp.Expr | None:
    """``CAST('inf' AS DOUBLE)`` for an infinite or NaN number, else None.

    Written as bare words (``inf``, ``nan``, ``-Infinity``) they would be read as column names.
    """
    if isinstance(value, bool) or not isinstance(value, (float, decimal.Decimal)):
        return None
    if isinstance(value, decimal.Decimal):
        if value.is_finite():
            return None
        text = "nan" if value.is_nan() else "-inf" if value.is_signed() else "inf"
    elif math.isfinite(value):
        return None
    else:
        text = "nan" if math.isnan(value) else "-inf" if value < 0 else "inf"
    return exp.cast(exp.Literal.string(text), "DOUBLE")


def literal_sql(value: Any, dialect: str = "duckdb") -> str:
    """A param value as a SQL literal: strings quoted, dates typed, numbers as numbers.

    >>> literal_sql("O'Brien")
    "'O''Brien'"
    >>> literal_sql(dt.date(2024, 1, 1))
    "CAST('2024-01-01' AS DATE)"
    """
    node: exp.Expr
    if value is None:
        node = exp.Null()
    elif isinstance(value, bool):
        node = exp.Boolean(this=value)
    elif isinstance(value, (int, float, decimal.Decimal)):
        special = non_finite_literal(value)  # inf/nan: never bare words (column names)
        node = special if special is not None else exp.Literal.number(value)
    elif isinstance(value, dt.datetime):
        node = exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    elif isinstance(value, dt.date):
        node = exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    else:
        node = exp.Literal.string(str(value))
    return node.sql(dialect=dialect)


def param_names(text: str) -> list[str]:
    """Names used as ``{{ name }}`` in a text."""
    return PARAM_RE.findall(text)


def render_params(text: str, params: dict[str, Any], dialect: str = "duckdb") -> str:
    """Replace each ``{{ name }}`` with the param's value as a quoted SQL literal.

    Raises :class:`CompileError` for an unknown name or a malformed ``{{ ... }}``.
    """
    for m in _ANY_BRACES_RE.finditer(text):
        if not PARAM_RE.fullmatch(m.group(0)):
            raise CompileError(f"'{m.group(0)}' is not a param reference: write {{{{ name }}}} "
                               "with a param name declared under 'params:'.")

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in params:
            raise CompileError(f"unknown param '{name}' in '{{{{ {name} }}}}'."
                               + (did_you_mean(name, params) or
                                  " Declare it under 'params:' at the top of the pipeline."))
        return literal_sql(params[name], dialect)

    return PARAM_RE.sub(sub, text)
