"""Refuse SQL that would not mean the same on another engine (before anything runs there).

sqlglot translates DuckDB SQL to other dialects, but some constructs pass through untranslated
or are rewritten with different results. A silent difference in results is the worst failure, so
those constructs are errors that name the step and the construct.
"""

from __future__ import annotations

from sqlglot import exp

from builder.errors import CompileError, Problem
from builder.plan.plans import Plan
from builder.plan.schema import Typer
from builder.plan.types import Schema

# DuckDB functions with no faithful Spark translation in sqlglot.
DUCKDB_ONLY_FUNCTIONS = frozenset({
    "list_aggregate", "array_aggregate", "list_apply", "array_apply", "list_transform",
    "list_filter", "array_filter", "list_reduce", "list_sort", "array_sort",
    "list_reverse_sort", "list_distinct", "array_distinct", "list_unique", "list_slice",
    "struct_pack", "struct_extract", "map_extract", "regexp_split_to_array",
    "string_split_regex", "str_split_regex", "strptime", "strftime", "epoch_ms",
    "make_timestamp", "time_bucket", "list_value", "list_pack", "columns", "unnest",
    # Found by running both engines on the same rows (different results, no error):
    "hash",                      # DuckDB's 64-bit hash vs Spark's 32-bit murmur3
    "weekday", "yearweek",       # day/week numbering differs
    "kurtosis", "skewness",      # sample vs population formulas
})
# date_diff units whose count is the same on both engines once both ends are truncated.
DATE_DIFF_UNITS = frozenset({"YEAR", "QUARTER", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND",
                             "MILLISECOND", "MICROSECOND"})
_DOW_PARTS = frozenset({"dow", "isodow", "dayofweek", "weekday", "week", "yearweek",
                        "isoyear", "weekofyear", "weeks", "w"})
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")


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
        elif isinstance(node, exp.Star) and any(node.args.get(k) for k in (
                "except", "except_", "replace", "replace_", "rename", "rename_")):
            issues.append("SELECT * EXCLUDE/REPLACE (list the columns instead)")
        elif isinstance(node, exp.Anonymous) and str(node.this).lower() in DUCKDB_ONLY_FUNCTIONS:
            issues.append(f"the DuckDB-only function '{str(node.this).lower()}'")
        elif isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous) and \
                node.sql_name().lower() in DUCKDB_ONLY_FUNCTIONS and dialect == "spark":
            issues.append(f"the DuckDB-only function '{node.sql_name().lower()}'")
        elif dialect == "spark":
            issue = _spark_issue(node)
            if issue:
                issues.append(issue)
    seen: list[str] = []
    for i in issues:
        if i not in seen:
            seen.append(i)
    return seen


def _spark_issue(node: exp.Expr) -> str | None:
    """Constructs sqlglot renders for Spark without error but with other results."""
    if isinstance(node, exp.Log) and node.args.get("expression") is None:
        return ("log(x) with one argument (base 10 in DuckDB, natural log in Spark; write "
                "log10(x) or ln(x))")
    if isinstance(node, (exp.DayOfWeek, exp.DayOfWeekIso, exp.Week)) or (
            isinstance(node, exp.Extract) and node.name.lower() in _DOW_PARTS) or (
            isinstance(node, exp.Anonymous) and str(node.this).lower() in ("date_part",
                                                                           "datepart")
            and node.expressions and isinstance(node.expressions[0], exp.Literal)
            and node.expressions[0].name.lower() in _DOW_PARTS):
        return ("day-of-week or week numbers (DuckDB counts Sunday as 0, Spark as 1, and weeks "
                "differ; use the time_bucket pattern or compare dates instead)")
    if isinstance(node, exp.RegexpReplace) and "g" not in (
            node.args["modifiers"].name if node.args.get("modifiers") is not None else ""):
        return ("regexp_replace without the 'g' option (DuckDB replaces the first match, Spark "
                "every match; add 'g' as the fourth argument if every match is meant)")
    if isinstance(node, exp.Format):
        return "format() ({} placeholders have no Spark equivalent; use concat or printf)"
    if isinstance(node, exp.DateDiff):
        unit = (node.unit.name if node.unit is not None else "DAY").upper()
        if unit not in DATE_DIFF_UNITS:
            return (f"date_diff with the unit '{unit.lower()}' (counted differently on Spark; "
                    "use days, months or years)")
    if isinstance(node, (exp.Kurtosis, exp.Skewness)):
        return f"the DuckDB-only function '{node.sql_name().lower()}'"
    return None


# ---- rewrites: faithful Spark forms of constructs sqlglot renders with other results ------

def _integer_cast(node: exp.Expr) -> bool:
    if not isinstance(node, (exp.Cast, exp.TryCast)):
        return False
    to = node.args.get("to")
    inner = node.this
    return isinstance(to, exp.DataType) and to.this.name in _INTEGER_TYPES and not (
        isinstance(inner, exp.Literal) and not inner.is_string and "." not in inner.name)


def _truncated(value: exp.Expr, unit: str) -> exp.Expr:
    return exp.TimestampTrunc(this=value, unit=exp.var(unit))


class _OperandTyper:
    """DuckDB types of expressions over a query's inputs (their aliases included)."""

    def __init__(self, query: exp.Query, inputs: dict[str, Schema]) -> None:
        self.typer: Typer | None = None
        self.from_sql = ""
        tables = [t for t in query.find_all(exp.Table) if t.name in inputs and not
                  t.args.get("db")]
        if not tables:
            return
        self.typer = Typer()
        froms = []
        for name in dict.fromkeys(t.name for t in tables):
            self.typer.define(name, inputs[name])
        for t in tables:
            ref = exp.Table(this=exp.to_identifier(t.name, quoted=True))
            alias = t.alias or t.name
            froms.append(f"{ref.sql('duckdb')} AS {exp.to_identifier(alias, quoted=True).sql('duckdb')}")
        self.from_sql = " CROSS JOIN ".join(dict.fromkeys(froms))

    def type_of(self, value: exp.Expr) -> str | None:
        if self.typer is None:
            return None
        try:
            sql = f"SELECT {value.sql('duckdb')} FROM {self.from_sql}"
            return self.typer.describe_query(sql)[0].type.upper()
        except Exception:  # noqa: BLE001 - unknown: left as sqlglot renders it
            return None

    def close(self) -> None:
        if self.typer is not None:
            self.typer.close()


# DuckDB integer types Spark has no name for -> the Spark type holding every value (the same
# mapping as builder.engines.spark.spark_type, which reads such columns).
_SPARK_INTEGERS = {
    exp.DataType.Type.INT128: "DECIMAL(38,0)", exp.DataType.Type.UINT128: "DECIMAL(38,0)",
    exp.DataType.Type.UBIGINT: "DECIMAL(20,0)", exp.DataType.Type.UINT: "BIGINT",
    exp.DataType.Type.USMALLINT: "INT", exp.DataType.Type.UTINYINT: "SMALLINT",
}


def spark_rewrite(query: exp.Query, inputs: dict[str, Schema] | None = None) -> exp.Query:
    """The query with DuckDB semantics spelled out for Spark (a copy; ``query`` is kept).

    * ``CAST(x AS INT)`` rounds in DuckDB (DOUBLE half to even, DECIMAL half away from zero)
      and truncates in Spark: round first (``bround``/``round``). Needs the type of ``x``: known
      when it is computed from the query's ``inputs`` (name -> schema); otherwise left as is.
    * ``epoch(ts)`` keeps sub-seconds in DuckDB (sqlglot renders Spark's whole-second
      ``unix_timestamp``): ``unix_micros(ts) / 1e6``.
    * ``date_diff(unit, a, b)`` counts unit boundaries in DuckDB and whole units in Spark:
      truncate both ends to the unit first, then both count the same.
    * ``error(message)`` fails the query in DuckDB; Spark's function is ``raise_error``.
    * Types Spark lacks (HUGEINT, unsigned integers) become the Spark type holding the same
      values, as the Spark engine maps them when it reads: ``CAST(x AS HUGEINT)`` is
      ``CAST(x AS DECIMAL(38,0))``.
    """
    typer = _OperandTyper(query, inputs or {}) if inputs and any(
        _integer_cast(n) for n in query.walk()) else None

    def fix(node: exp.Expr) -> exp.Expr:
        if typer is not None and _integer_cast(node):
            kind = typer.type_of(node.this) or ""
            fn = "BROUND" if kind in ("DOUBLE", "FLOAT", "REAL") else \
                "ROUND" if kind.startswith("DECIMAL") else None
            if fn:
                node.set("this", exp.Anonymous(this=fn, expressions=[node.this]))
            return node
        if isinstance(node, exp.TimeToUnix):
            micros = exp.Anonymous(this="UNIX_MICROS", expressions=[
                exp.Cast(this=node.this, to=exp.DataType.build("TIMESTAMPTZ", dialect="duckdb"))])
            return exp.Div(this=micros, expression=exp.Literal.number("1000000.0"))
        if isinstance(node, exp.DataType) and node.this in _SPARK_INTEGERS:
            return exp.DataType.build(_SPARK_INTEGERS[node.this])
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "error":
            return exp.Anonymous(this="RAISE_ERROR", expressions=node.expressions)
        if isinstance(node, exp.DateDiff):
            unit = (node.unit.name if node.unit is not None else "DAY").upper()
            if unit in DATE_DIFF_UNITS and unit not in ("MILLISECOND", "MICROSECOND"):
                return exp.DateDiff(this=_truncated(node.this, unit),
                                    expression=_truncated(node.expression, unit),
                                    unit=exp.var(unit))
        return node

    try:
        out = query.copy().transform(fix, copy=False)
        assert isinstance(out, exp.Query)
        return out
    finally:
        if typer is not None:
            typer.close()


def render(query: exp.Query, dialect: str, pretty: bool = False,
           inputs: dict[str, Schema] | None = None) -> str:
    """SQL for ``dialect``, with the faithful rewrites for Spark (see :func:`spark_rewrite`)."""
    if dialect == "spark":
        query = spark_rewrite(query, inputs)
    return query.sql(dialect=dialect, pretty=pretty)


def input_schemas(plan: Plan, node: str) -> dict[str, Schema]:
    """Schemas of the nodes ``node`` reads (and of ``node`` itself, which its checks read)."""
    out: dict[str, Schema] = {}
    for n in [*plan.graph.predecessors(node), node] if node in plan.graph else []:
        cols = plan.schema(n)
        if cols is not None:
            out[n] = cols
    return out


def _plan_queries(plan: Plan, node: str) -> list[exp.Query]:
    """Every query a node runs: its own, its read stages, its checks and rejected rows."""
    out: list[exp.Query] = []
    if node in plan.sources:
        sp = plan.sources[node]
        out.extend(q for _, q in sp.stages)
        out.extend(c.failing for c in sp.checks)
    elif node in plan.steps:
        st = plan.steps[node]
        out.extend(q for q in (st.query, st.rejected) if q is not None)
        out.extend(c.failing for c in st.checks)
    return out


def check_portable(plan: Plan, targets: list[str], dialect: str) -> None:
    """Raise a :class:`CompileError` naming each step that uses a non-portable construct."""
    problems = []
    for node in plan.needed_for(targets):
        issues: list[str] = []
        for query in _plan_queries(plan, node):
            issues.extend(i for i in portability_issues(query, dialect) if i not in issues)
        what = "source" if node in plan.sources else "step"
        line = plan.sources[node].source.line if node in plan.sources else \
            plan.steps[node].step.line if node in plan.steps else None
        for issue in issues:
            problems.append(Problem(f"{what} '{node}' uses {issue}, which cannot run on "
                                    f"{dialect} with the same results.", file=plan.pipeline.file,
                                    line=line, step=node, kind="compile"))
    if problems:
        raise CompileError(problems)
