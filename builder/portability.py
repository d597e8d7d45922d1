"""Refuse SQL that would not mean the same on another engine (before anything runs there).

sqlglot translates DuckDB SQL to other dialects, but some constructs pass through untranslated
or are rewritten with different results. A silent difference in results is the worst failure, so
those constructs are errors that name the step and the construct.
"""

from __future__ import annotations

from sqlglot import exp

from builder.compiler import Plan
from builder.errors import CompileError, Problem

# DuckDB functions with no faithful Spark translation in sqlglot.
DUCKDB_ONLY_FUNCTIONS = frozenset({
    "list_aggregate", "array_aggregate", "list_apply", "array_apply", "list_transform",
    "list_filter", "array_filter", "list_reduce", "list_sort", "array_sort",
    "list_reverse_sort", "list_distinct", "array_distinct", "list_unique", "list_slice",
    "struct_pack", "struct_extract", "map_extract", "regexp_split_to_array",
    "string_split_regex", "str_split_regex", "strptime", "strftime", "epoch_ms",
    "make_timestamp", "time_bucket", "list_value", "list_pack", "columns", "unnest",
})


def portability_issues(query: exp.Query, dialect: str) -> list[str]:
    """Constructs in ``query`` that ``dialect`` cannot run with the same results."""
    issues: list[str] = []
    if dialect == "duckdb":
        return issues
    for node in query.walk():
        if isinstance(node, exp.Select) and node.args.get("qualify") is not None and (
                node.args.get("order") is not None or node.args.get("limit") is not None):
            issues.append("QUALIFY combined with ORDER BY/LIMIT (sqlglot rewrites it into a "
                          "query with different results; filter a ROW_NUMBER column in a "
                          "subquery instead)")
        elif isinstance(node, exp.Pivot) or node.key in ("pivot", "unpivot"):
            issues.append("DuckDB PIVOT/UNPIVOT syntax (use the 'pivot' or 'unpivot' pattern)")
        elif isinstance(node, exp.Columns) if hasattr(exp, "Columns") else False:
            issues.append("COLUMNS(...) expressions")
        elif isinstance(node, exp.Star) and (node.args.get("except") or node.args.get("replace")
                                             or node.args.get("rename")):
            issues.append("SELECT * EXCLUDE/REPLACE (list the columns instead)")
        elif isinstance(node, exp.Anonymous) and str(node.this).lower() in DUCKDB_ONLY_FUNCTIONS:
            issues.append(f"the DuckDB-only function '{str(node.this).lower()}'")
        elif isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous) and \
                node.sql_name().lower() in DUCKDB_ONLY_FUNCTIONS and dialect == "spark":
            issues.append(f"the DuckDB-only function '{node.sql_name().lower()}'")
        elif isinstance(node, exp.Group) and node.args.get("all"):
            pass  # GROUP BY ALL is translated by sqlglot for Spark
    seen: list[str] = []
    for i in issues:
        if i not in seen:
            seen.append(i)
    return seen


def check_portable(plan: Plan, targets: list[str], dialect: str) -> None:
    """Raise a :class:`CompileError` naming each step that uses a non-portable construct."""
    problems = []
    for node in plan.needed_for(targets):
        if node not in plan.steps:
            continue
        query = plan.steps[node].query
        if query is None:
            continue
        for issue in portability_issues(query, dialect):
            problems.append(Problem(f"uses {issue}, which cannot run on {dialect} with the same "
                                    "results.", file=plan.pipeline.file,
                                    line=plan.steps[node].step.line, step=node, kind="compile"))
    if problems:
        raise CompileError(problems)
