"""What the pipeline layer reads from a SQL step's text: the tables it names, and whether it
is too deeply nested for sqlglot to parse.

The app's edits (renaming a node, listing what a step reads) need both without compiling; the
full checks on a SQL step (one SELECT, no file access, line:column of each problem) are in
:mod:`builder.plan.sqlcheck`, which builds on these.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

# sqlglot parses, prints and optimises a query recursively, ~25 Python frames per level of
# parentheses: past about 40 levels it exhausts Python's stack (RecursionError). Queries people
# write nest a handful of levels; deeper text is refused before parsing, with its position.
MAX_SQL_DEPTH = 32


def too_deep_at(sql: str) -> tuple[int, int] | None:
    """(line, column) of the first parenthesis nested deeper than :data:`MAX_SQL_DEPTH`.

    Counted on sqlglot's tokens, so parentheses in strings and comments do not count. None
    when the text is shallow enough, or cannot be tokenized (the parser reports that).
    """
    if sql.count("(") <= MAX_SQL_DEPTH:
        return None  # cannot be deeper: skip tokenizing
    try:
        tokens = sqlglot.tokenize(sql, read="duckdb")
    except (TokenError, ParseError):
        return None  # the parser reports it
    depth = 0
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_SQL_DEPTH:
                return tok.line, tok.col
        elif tok.token_type == TokenType.R_PAREN:
            depth = max(0, depth - 1)
    return None


def referenced_tables(query: exp.Expr) -> list[exp.Table]:
    """Tables the query reads from outside itself (CTE names it defines are excluded)."""
    cte_names: set[str] = set()
    for cte in query.find_all(exp.CTE):
        cte_names.add(cte.alias_or_name)
    seen: list[exp.Table] = []
    for table in query.find_all(exp.Table):
        if isinstance(table.this, exp.Func) or isinstance(table.this, exp.Anonymous):
            continue
        if not table.name or (not table.args.get("db") and table.name in cte_names):
            continue
        seen.append(table)
    return seen
