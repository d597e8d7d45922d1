"""Checks on a user's SQL step before anything runs, and the tables it reads.

A SQL step must be exactly one SELECT (or WITH ... SELECT) query that reads only the pipeline's
sources and steps. Statements that change state or reach outside the pipeline (DDL, DML, COPY,
ATTACH, INSTALL, LOAD, PRAGMA, SET, CALL, several statements) and table functions that read
files directly are refused here, with the step and the SQL line:column.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from builder.errors import did_you_mean
from builder.pipeline.sqltext import MAX_SQL_DEPTH, referenced_tables, too_deep_at

# Table-valued functions that only generate values; anything else in FROM (read_csv, glob, ...)
# would bypass the declared sources and the sandbox.
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
_FORBIDDEN_KEYWORDS = ("ATTACH", "DETACH", "INSTALL", "LOAD", "PRAGMA", "SET", "RESET", "CALL",
                       "COPY", "EXPORT", "IMPORT", "CHECKPOINT", "VACUUM", "USE", "CREATE",
                       "DROP", "ALTER", "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE",
                       "GRANT", "BEGIN", "COMMIT", "ROLLBACK", "DESCRIBE", "SHOW", "SUMMARIZE",
                       "EXPLAIN")
# Scalar functions that read files or the environment, refused in SQL steps and expressions.
FORBIDDEN_FUNCTIONS = frozenset({
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
    "read_ndjson", "read_ndjson_auto", "read_json_objects", "read_text", "read_blob", "glob",
    "sniff_csv", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
    "parquet_kv_metadata", "getenv", "current_setting", "duckdb_settings", "duckdb_extensions",
    "duckdb_secrets", "query", "query_table", "iceberg_scan", "delta_scan", "read_xlsx",
    "sqlite_scan", "postgres_scan", "mysql_scan", "load_extension",
})


NESTED_TOO_DEEP = f"nested more than {MAX_SQL_DEPTH} levels deep (parentheses or subqueries)"
TOO_DEEP = f"the SQL is {NESTED_TOO_DEEP}. Move inner parts into CTEs (WITH) or earlier steps."
_TOO_DEEP_TO_PARSE = "the SQL is nested too deeply to parse. Simplify it or split it into steps."


@dataclass
class SqlIssue:
    """A problem in a SQL text, with its position (1-based) when known."""

    message: str
    line: int | None = None
    col: int | None = None


def nesting_issue(sql: str) -> SqlIssue | None:
    """An issue at the first parenthesis nested deeper than :data:`MAX_SQL_DEPTH`, else None.

    Counted on sqlglot's tokens, so parentheses in strings and comments do not count.
    """
    at = too_deep_at(sql)
    return SqlIssue(TOO_DEEP, *at) if at else None


def parse_query(sql: str) -> tuple[exp.Query | None, SqlIssue | None]:
    """Parse a SQL step: one SELECT/WITH query, or an issue saying why not."""
    stripped = sql.strip().rstrip(";").strip()
    if not stripped:
        return None, SqlIssue("the SQL is empty. Write a SELECT query over the step's inputs.")
    too_deep = nesting_issue(sql)
    if too_deep:
        return None, too_deep
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except RecursionError:
        # Nesting the depth bound lets through but sqlglot cannot follow (NOT NOT NOT ...).
        return None, SqlIssue(_TOO_DEEP_TO_PARSE)
    except ParseError as e:
        first = stripped.split(None, 1)[0].upper()
        if first in _FORBIDDEN_KEYWORDS:
            # e.g. EXPORT/IMPORT DATABASE, which sqlglot cannot parse: say why it is refused.
            return None, SqlIssue(f"a SQL step must be a SELECT query; {first} statements are "
                                  "not allowed. Sources and outputs are declared in the "
                                  "pipeline, not in SQL.", *_pos_of_first_token(sql))
        err = e.errors[0] if e.errors else {}
        desc = str(err.get("description") or "cannot parse").rstrip(".")
        token = err.get("highlight")
        where = f" near '{token}'" if token else ""
        col = err.get("col")
        if col and token:
            col = max(1, col - len(token) + 1)  # sqlglot points at the token's last character
        return None, SqlIssue(f"SQL does not parse: {desc}{where}.", err.get("line"), col)
    except TokenError as e:
        return None, SqlIssue(f"SQL does not parse: {e}.")
    if len(statements) != 1:
        return None, SqlIssue(f"a SQL step must be one SELECT query; found {len(statements)} "
                              "statements. Split them into separate steps.")
    stmt = statements[0]
    if not isinstance(stmt, exp.Query):
        kind = _statement_kind(stmt, sql)
        return None, SqlIssue(f"a SQL step must be a SELECT query; {kind} statements are not "
                              "allowed. Sources and outputs are declared in the pipeline, "
                              "not in SQL.", *_pos_of_first_token(sql))
    issue = check_expression_tree(stmt)
    if issue:
        return None, issue
    return stmt, None


def check_expression_tree(tree: exp.Expr) -> SqlIssue | None:
    """Refuse nested statements and file-reading functions anywhere in a parsed tree."""
    for node in tree.walk():
        if isinstance(node, (exp.Create, exp.Drop, exp.Insert, exp.Update, exp.Delete,
                             exp.Command, exp.Set, exp.Copy, exp.Pragma, exp.Use,
                             exp.Merge, exp.Alter)):
            return SqlIssue(f"{_statement_kind(node, node.sql())} is not allowed inside a query.")
        if isinstance(node, exp.Table) and isinstance(node.this, (exp.Func, exp.Anonymous)):
            fn = node.this
            fname = str(fn.this) if isinstance(fn, exp.Anonymous) else fn.sql_name()
            if fname.lower() not in SAFE_TABLE_FUNCTIONS | FORBIDDEN_FUNCTIONS:
                # Table functions in expression params too (pragma_*, which_secret, ...).
                line, col = _meta_pos(fn)
                return SqlIssue(f"table function '{fname}' is not allowed: a step reads only "
                                "the pipeline's sources and steps. Declare files under "
                                "'sources:'.", line, col)
        name = _function_name(node)
        if name and name.lower() in FORBIDDEN_FUNCTIONS:
            line, col = _meta_pos(node)
            return SqlIssue(f"function '{name.lower()}' is not allowed: a step reads only the "
                            "pipeline's sources and steps. Declare the file under 'sources:'.",
                            line, col)
    return None


def check_expression(tree: exp.Expr, inputs: list[str]) -> SqlIssue | None:
    """The statement check of SQL steps, for a SQL expression param of a pattern step.

    Besides :func:`check_expression_tree`, every table the expression reads (a subquery's
    FROM) must be one of the step's ``inputs``: a quoted or string name (``'x.csv'``,
    ``"x.csv"``) would otherwise make DuckDB read that file.
    """
    issue = check_expression_tree(tree)
    if issue:
        return issue
    for table in referenced_tables(tree):
        if table.name in inputs and not table.args.get("db") and not table.args.get("catalog"):
            continue
        line, col = _meta_pos(table.this) if table.this else (None, None)
        shown = ", ".join(f"'{i}'" for i in inputs) or "none"
        shown_name = table.sql(dialect="duckdb") if table.args.get("db") else table.name
        return SqlIssue(f"table '{shown_name}' is not an input of this step "
                        f"(inputs: {shown}): an expression reads only the step's inputs. "
                        "Declare files under 'sources:' and join them in.", line, col)
    for name, fn in table_functions(tree):
        if name.lower() not in SAFE_TABLE_FUNCTIONS:
            line, col = _meta_pos(fn)
            return SqlIssue(f"table function '{name}' is not allowed: a step reads only the "
                            "pipeline's sources and steps. Declare files under 'sources:'.",
                            line, col)
    return None


def _function_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Anonymous):
        return str(node.this)
    if isinstance(node, exp.Func):
        if isinstance(node, (exp.ReadCSV, exp.ReadParquet)):
            return node.sql_name()
        return node.sql_name() if node.sql_name().lower() in FORBIDDEN_FUNCTIONS else None
    return None


def _meta_pos(node: exp.Expr) -> tuple[int | None, int | None]:
    """Line and start column (1-based) of a parsed node; sqlglot records the token's end."""
    meta = node.meta if hasattr(node, "meta") else {}
    this = node.args.get("this")
    if not meta and isinstance(this, exp.Expr):
        meta = this.meta
    line, col = meta.get("line"), meta.get("col")
    if col is not None:
        text = node.name if isinstance(node, exp.Identifier) else (
            str(node.this) if isinstance(node, exp.Anonymous) else
            node.sql_name() if isinstance(node, exp.Func) else node.name)
        col = max(1, col - len(text or "") + 1)
    return line, col


def _statement_kind(stmt: exp.Expr, sql: str) -> str:
    if isinstance(stmt, exp.Command):
        return str(stmt.this).upper()
    first = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
    if first in _FORBIDDEN_KEYWORDS:
        return first
    return stmt.key.upper()


def _pos_of_first_token(sql: str) -> tuple[int, int]:
    for i, line in enumerate(sql.splitlines(), start=1):
        if line.strip():
            return i, len(line) - len(line.lstrip()) + 1
    return 1, 1


def table_functions(query: exp.Expr) -> list[tuple[str, exp.Expr]]:
    """Table-valued function calls in FROM/JOIN positions (e.g. ``read_csv(...)``)."""
    out: list[tuple[str, exp.Expr]] = []
    for table in query.find_all(exp.Table):
        if isinstance(table.this, (exp.Func, exp.Anonymous)):
            fn = table.this
            name = str(fn.this) if isinstance(fn, exp.Anonymous) else fn.sql_name()
            out.append((name, fn))
    return out


def infer_inputs(query: exp.Query, known: list[str]) -> tuple[list[str], list[SqlIssue]]:
    """The pipeline ids a SQL query reads, in order of first use; unknown tables are issues."""
    names: list[str] = []
    issues: list[SqlIssue] = []
    for table in referenced_tables(query):
        if table.args.get("db") or table.args.get("catalog"):
            line, col = _meta_pos(table.this) if table.this else (None, None)
            issues.append(SqlIssue(f"table '{table.sql(dialect='duckdb')}' is not a source or "
                                   "step of this pipeline. Read sources by their id.", line, col))
            continue
        name = table.name
        if name in known:
            if name not in names:
                names.append(name)
        else:
            line, col = _meta_pos(table.this) if table.this else (None, None)
            issues.append(SqlIssue(f"table '{name}' is not a source or step of this pipeline."
                                   + (did_you_mean(name, known) or
                                      " Known ids: " + ", ".join(known[:12]) + "."), line, col))
    for name, fn in table_functions(query):
        if name.lower() not in SAFE_TABLE_FUNCTIONS:
            line, col = _meta_pos(fn)
            issues.append(SqlIssue(f"table function '{name}' is not allowed: a step reads only "
                                   "the pipeline's sources and steps. Declare files under "
                                   "'sources:'.", line, col))
    return names, issues


def find_token(sql: str, name: str) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the first identifier token ``name`` in ``sql``."""
    try:
        tokens = sqlglot.tokenize(sql, read="duckdb")
    except (TokenError, ParseError):
        return None, None
    for tok in tokens:
        if tok.text == name or tok.text.strip('"') == name:
            return tok.line, max(1, tok.col - len(tok.text) + 1)
    return None, None
