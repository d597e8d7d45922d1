"""``{{ name }}`` pipeline params, inserted into parsed SQL as literal nodes, never as text.

A SQL text is parsed with each ``{{ name }}`` masked as a placeholder name (:func:`mask_params`);
each placeholder must then stand where a value goes, and is replaced by the param's value as a
literal node (:func:`bind_params`). A value can therefore never end a comment, a string or a
quoted name, and ``{{ }}`` written inside one of those is refused with its line:column.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

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


def literal_node(value: Any) -> exp.Expr:
    """A param value as a SQL literal node: strings quoted, dates typed, numbers as numbers."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, decimal.Decimal)):
        special = non_finite_literal(value)  # inf/nan: never bare words (column names)
        return special if special is not None else exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def literal_sql(value: Any, dialect: str = "duckdb") -> str:
    """A param value as SQL literal text (see :func:`literal_node`).

    >>> literal_sql("O'Brien")
    "'O''Brien'"
    >>> literal_sql(dt.date(2024, 1, 1))
    "CAST('2024-01-01' AS DATE)"
    """
    return literal_node(value).sql(dialect=dialect)


def param_names(text: str) -> list[str]:
    """Names used as ``{{ name }}`` in a text."""
    return PARAM_RE.findall(text)


@dataclass(frozen=True)
class ParamRef:
    """One ``{{ name }}`` in a SQL text: its placeholder and where it was written (1-based)."""

    name: str
    written: str
    placeholder: str
    line: int
    col: int

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.col}"


@dataclass
class Masked:
    """A SQL text with every ``{{ name }}`` replaced by a placeholder name."""

    text: str
    refs: list[ParamRef] = field(default_factory=list)
    # Per SQL line: (column in the masked text after which, characters added there).
    _shifts: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def position(self, line: int | None, col: int | None) -> tuple[int | None, int | None]:
        """A line:column of the masked text as a line:column of the text as written."""
        if line is None or col is None:
            return line, col
        back = sum(d for at, d in self._shifts.get(line, []) if at < col)
        return line, max(1, col - back)

    def unmask(self, message: str) -> str:
        """A message about the masked text, with each placeholder written back as ``{{ }}``."""
        for ref in self.refs:
            message = message.replace(ref.placeholder, ref.written)
        return message


_PLACEHOLDER = "__dy_param_{}__"


def mask_params(text: str) -> Masked:
    """Replace each ``{{ name }}`` with a placeholder name, so the text can be parsed.

    Raises :class:`CompileError` for a malformed ``{{ ... }}``.
    """
    if "{{" not in text:
        return Masked(text)
    for m in _ANY_BRACES_RE.finditer(text):
        if not PARAM_RE.fullmatch(m.group(0)):
            raise CompileError(f"'{m.group(0)}' is not a param reference: write {{{{ name }}}} "
                               "with a param name declared under 'params:'.")
    out: list[str] = []
    refs: list[ParamRef] = []
    shifts: dict[int, list[tuple[int, int]]] = {}
    last = 0
    for i, m in enumerate(PARAM_RE.finditer(text)):
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        placeholder = _PLACEHOLDER.format(i)
        refs.append(ParamRef(m.group(1), m.group(0), placeholder, line, col))
        # Columns after this one on its line move by the difference in length.
        masked_col = col + sum(d for _at, d in shifts.get(line, []))
        shifts.setdefault(line, []).append((masked_col, len(placeholder) - len(m.group(0))))
        out.append(text[last:m.start()])
        out.append(placeholder)
        last = m.end()
    out.append(text[last:])
    return Masked("".join(out), refs, shifts)


def check_param_names(masked: Masked, params: dict[str, Any]) -> None:
    """Raise :class:`CompileError` for a ``{{ name }}`` naming no declared param."""
    for ref in masked.refs:
        if ref.name not in params:
            raise CompileError(f"unknown param '{ref.name}' in '{{{{ {ref.name} }}}}'."
                               + (did_you_mean(ref.name, params) or
                                  " Declare it under 'params:' at the top of the pipeline."))


def misplaced_param(masked: Masked, tree: exp.Expr) -> tuple[str, ParamRef] | None:
    """The first ``{{ name }}`` that does not stand where a value goes, with why, or None.

    Inside a comment, a string literal or a quoted name the text around it would change
    meaning with its value; as a table, alias or function name it would be SQL, not a value.
    """
    values = {c.name for c in tree.find_all(exp.Column)
              if not c.table and not c.this.quoted and c.name.startswith("__dy_param_")}
    for ref in masked.refs:
        if ref.placeholder in values:
            continue
        return _inside(masked.text, ref.placeholder), ref
    return None


def _inside(text: str, placeholder: str) -> str:
    try:
        tokens = sqlglot.tokenize(text, read="duckdb")
    except (TokenError, ParseError):
        return "inside a comment, a string or a quoted name"
    for tok in tokens:
        if placeholder in tok.text:
            if tok.token_type == sqlglot.TokenType.STRING:
                return "inside a string literal"
            if tok.token_type == sqlglot.TokenType.IDENTIFIER:
                return "inside a quoted name"
            return "used as a name (of a table, column alias or function)"
        if any(placeholder in c for c in tok.comments):
            return "inside a comment"
    return "inside a comment"


def misplaced_message(why: str, ref: ParamRef, position: bool = False) -> str:
    """The one-line error for a ``{{ name }}`` that :func:`misplaced_param` found
    (``position``: say its line:column, for texts whose errors carry none)."""
    at = f" at {ref.where}" if position else ""
    return (f"'{ref.written}'{at} is {why}: a param can stand only where a value goes, "
            f"e.g. WHERE day >= {ref.written}. Move it there.")


def bind_params(tree: exp.Expr, masked: Masked, params: dict[str, Any]) -> exp.Expr:
    """Replace each placeholder of a tree parsed from ``masked.text`` by its value's literal.

    The tree is changed in place (pass a copy of a shared tree) and returned. Raises
    :class:`CompileError` (with the SQL line:column) for an unknown name or a ``{{ }}`` that
    is not where a value goes.
    """
    if not masked.refs:
        return tree
    check_param_names(masked, params)
    bad = misplaced_param(masked, tree)
    if bad is not None:
        why, ref = bad
        raise CompileError(misplaced_message(why, ref), sql_line=ref.line, sql_col=ref.col)
    by_placeholder = {ref.placeholder: ref.name for ref in masked.refs}
    for column in list(tree.find_all(exp.Column)):
        name = by_placeholder.get(column.name)
        if name is not None and not column.table and not column.this.quoted:
            node = literal_node(params[name])
            if column is tree:
                return node
            column.replace(node)
    return tree


def render_params(text: str, params: dict[str, Any], dialect: str = "duckdb") -> str:
    """A SQL text with each ``{{ name }}`` replaced by the param's value as a quoted literal.

    The text is parsed and the values put in the tree (:func:`bind_params`), so a value never
    becomes SQL. Raises :class:`CompileError` for an unknown name, a malformed ``{{ ... }}`` or
    one written where no value goes.
    """
    masked = mask_params(text)
    if not masked.refs:
        return text
    check_param_names(masked, params)
    try:
        tree = sqlglot.parse_one(masked.text, dialect="duckdb")
    except (ParseError, TokenError) as e:
        raise CompileError(masked.unmask(f"SQL does not parse: {str(e).splitlines()[0]}")) \
            from None
    return bind_params(tree, masked, params).sql(dialect=dialect)
