"""Compile a pipeline into sqlglot queries, one per step, typed step by step.

``plan(pipeline)`` walks the DAG in order: it builds each pattern step from its params (pydantic
validation, column checks against the input's propagated schema), parses each SQL step (single
SELECT only, inputs inferred from its tables), types the result (see :mod:`builder.plan.schema`) and
collects every problem with its location. A :class:`Plan` renders any step as one CTE-chain
query in any sqlglot dialect.
"""

from __future__ import annotations

import logging
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import networkx as nx
from pydantic import ValidationError
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from builder.errors import (
    CompileError,
    ConfigError,
    GraphError,
    Problem,
    did_you_mean,
    engine_message,
    function_error,
)
from builder.pipeline.model import Pipeline, Source, Step
from builder.pipeline.params import bind_params, check_param_names, mask_params
from builder.plan import graph as graphmod
from builder.plan import sqlcheck
from builder.plan.reader_options import READER_FUNCTIONS, option_args, option_problems
from builder.plan.sandbox import file_identity, sandboxed_cursor
from builder.plan.schema import Schema, Typer, describe_source
from patterns import PATTERNS
from patterns.base import (
    BuildContext,
    Built,
    Check,
    ColumnInfo,
    ParamError,
    Pattern,
    Registry,
    Relation,
    checked_expression,
    field_kind,
    ident,
    order_specs,
    parse_error_text,
)

if typing.TYPE_CHECKING:
    from builder.plan.incremental import IncrementalRead

logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass
class SourcePlan:
    """How a source is read: its read query (DuckDB) and its schema."""

    source: Source
    read: exp.Query | None
    columns: Schema | None = None
    # Stages applied on read (catalog metadata), shown in compiled SQL as their own CTEs.
    stages: list[tuple[str, exp.Query]] = field(default_factory=list)
    # Runtime checks declared by the catalog (expectations on read).
    checks: list[Check] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # human-readable: what the catalog applied
    paths: list[str] = field(default_factory=list)  # files it reads, when not src.path
    catalog_sample_key: list[str] = field(default_factory=list)
    incremental: IncrementalRead | None = None  # an incremental read (builder.plan.incremental)
    # A PostgreSQL source: {dsn, sql (sent to PostgreSQL), view (its Arrow stream's name)}.
    postgres: dict[str, Any] | None = None

    @property
    def sample_key(self) -> list[str]:
        """Entity key for key-consistent samples: the pipeline's, else the catalog's."""
        return self.source.sample_key or self.catalog_sample_key

    @property
    def id(self) -> str:
        return self.source.id


@dataclass
class StepPlan:
    """A compiled step: its query over its inputs (by id), checks and schema."""

    step: Step
    inputs: list[str]
    pattern: Pattern | None = None
    query: exp.Query | None = None
    checks: list[Check] = field(default_factory=list)
    rejected: exp.Query | None = None
    columns: Schema | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.step.id

    @property
    def ok(self) -> bool:
        return self.query is not None and self.columns is not None and not any(
            p.severity == "error" for p in self.problems)


@dataclass
class Plan:
    """A validated, typed pipeline ready for an engine."""

    pipeline: Pipeline
    graph: nx.DiGraph
    order: list[str]
    sources: dict[str, SourcePlan]
    steps: dict[str, StepPlan]
    problems: list[Problem]
    side_nodes: dict[str, str] = field(default_factory=dict)  # 'x.rejected' -> 'x'
    param_values: dict[str, Any] = field(default_factory=dict)  # {env: ...} resolved

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_for_errors(self) -> None:
        errs = self.errors
        if not errs:
            return
        kinds = {p.kind for p in errs}
        cls = ConfigError if kinds <= {"config"} else GraphError if kinds <= {"graph", "config"} \
            else CompileError
        raise cls(errs)

    def schema(self, node: str) -> Schema | None:
        if node in self.sources:
            return self.sources[node].columns
        if node in self.side_nodes:
            return self._rejected_schema.get(node)
        return self.steps[node].columns if node in self.steps else None

    _rejected_schema: dict[str, Schema] = field(default_factory=dict)

    def query_of(self, node: str) -> exp.Query:
        """The query computing one node from its direct inputs (referenced by id)."""
        if node in self.sources:
            sp = self.sources[node]
            if sp.stages:
                return sp.stages[-1][1]
            assert sp.read is not None
            return sp.read
        if node in self.side_nodes:
            rej = self.steps[self.side_nodes[node]].rejected
            assert rej is not None
            return rej
        q = self.steps[node].query
        if q is None:
            raise CompileError(f"step '{node}' has errors and cannot be compiled.", step=node)
        return q

    def node_ctes(self, node: str) -> list[tuple[str, exp.Query]]:
        """(name, query) CTEs that compute ``node``: read stages come first for sources."""
        if node in self.sources:
            sp = self.sources[node]
            if not sp.stages:
                return [(node, self.query_of(node))]
            ctes: list[tuple[str, exp.Query]] = []
            if sp.read is not None:
                ctes.append((f"{node}__raw", sp.read))
            ctes.extend(sp.stages)
            # The node itself reads the last stage, so every stage keeps its telling name.
            last = exp.select(exp.Star()).from_(exp.Table(this=ident(sp.stages[-1][0])))
            ctes.append((node, last))
            return ctes
        return [(node, self.query_of(node))]

    def needed_for(self, targets: list[str]) -> list[str]:
        """Nodes needed to compute ``targets``, in dependency order."""
        need: set[str] = set()
        for t in targets:
            need |= nx.ancestors(self.graph, t) | {t}
        return [n for n in self.order if n in need]

    def checks(self, node: str) -> list[Check]:
        """The data checks of a source (catalog expectations) or step (its pattern's)."""
        if node in self.sources:
            return self.sources[node].checks
        return self.steps[node].checks if node in self.steps else []

    def reads(self, nodes: list[str]) -> dict[str, int]:
        """How many times the queries of ``nodes`` read each table.

        A node read twice by one step (a self-join, or scd2, which reads its input in both of
        its ways) counts twice: an engine then stores it instead of computing it twice.
        """
        refs: dict[str, int] = {}
        for node in nodes:
            for name, query in self.node_ctes(node):
                for t in query.find_all(exp.Table):
                    if t.name and not t.args.get("db") and t.name != name:
                        refs[t.name] = refs.get(t.name, 0) + 1
        return refs

    def to_query(self, target: str, sources_as_tables: bool = False) -> exp.Query:
        """One query computing ``target``: a CTE per needed source and step."""
        nodes = self.needed_for([target])
        final: exp.Select = exp.select(exp.Star()).from_(exp.Table(this=ident(target)))
        for node in nodes:
            if sources_as_tables and node in self.sources:
                continue
            for name, q in self.node_ctes(node):
                final = final.with_(ident(name), as_=q.copy(), copy=False)
        return final

    def sql(self, target: str, dialect: str = "duckdb", pretty: bool = True) -> str:
        """The SQL computing ``target`` in a sqlglot dialect (DuckDB by default)."""
        return self.to_query(target, sources_as_tables=dialect != "duckdb").sql(
            dialect=dialect, pretty=pretty)


# ---- source reading ----------------------------------------------------------------------

_CSV_DEFAULTS: dict[str, Any] = {}


def read_query(pipeline: Pipeline, src: Source) -> exp.Query:
    """``SELECT * FROM read_<format>('path', options...)`` for a file source (DuckDB dialect)."""
    assert src.path is not None
    path = pipeline.resolve(src.path)
    fmt = src.resolved_format
    fn = READER_FUNCTIONS[fmt or "parquet"]
    # Option names are checked against the reader's (plan_source reports unknown ones first),
    # values are literal nodes: neither can carry SQL.
    args: list[exp.Expr] = [exp.Literal.string(path)]
    args += option_args({**(_CSV_DEFAULTS if fmt == "csv" else {}), **src.options}, fmt)
    func = exp.Anonymous(this=fn, expressions=args)
    return exp.select(exp.Star()).from_(exp.Table(this=func))


def source_key(pipeline: Pipeline, src: Source) -> tuple[object, ...]:
    """Identity of a source's content and read settings (for schema and preview caches)."""
    path = pipeline.resolve(src.path) if src.path else ""
    return (path, src.resolved_format, tuple(sorted((str(k), repr(v))
            for k, v in src.options.items())), file_identity(path) if path else ())


class ProblemSink(list):  # type: ignore[type-arg]
    """A list of problems with a helper to add one."""

    def __init__(self, file: str | None) -> None:
        super().__init__()
        self.file = file

    def add(self, message: str, **kw: Any) -> None:
        kw.setdefault("file", self.file)
        self.append(Problem(message, **kw))


def plan_source(pipeline: Pipeline, src: Source, sink: ProblemSink) -> SourcePlan:
    """Read query and schema of one source; problems go to ``sink``."""
    if src.path is None:
        from builder.plan.sources import plan_edge_source  # catalog, staging and postgres sources

        return plan_edge_source(pipeline, src, sink)
    bad_options = option_problems(src.options, src.resolved_format)
    for message in bad_options:
        sink.add(f"source '{src.id}': {message}", line=src.line, kind="config")
    if bad_options:
        return SourcePlan(src, None)
    read = read_query(pipeline, src)
    resolved = pipeline.resolve(src.path)
    if not file_identity(resolved) and "://" not in resolved:
        glob_hint = " (the glob matches no file)" if any(c in src.path for c in "*?[") else ""
        sink.add(f"source '{src.id}': file '{src.path}' not found{glob_hint} (looked in "
                 f"'{resolved}'). Paths are relative to the pipeline file.", line=src.line,
                 kind="config")
        return SourcePlan(src, read)
    if os.path.isdir(resolved):
        fmt = src.resolved_format or "parquet"
        example = os.path.join(src.path, f"*.{fmt}")
        sink.add(f"source '{src.id}': '{src.path}' is a folder, not a file. Name the files in it "
                 f"with a glob, e.g. '{example}'.", line=src.line, kind="config")
        return SourcePlan(src, read)
    files = file_identity(resolved)
    if "://" not in resolved and all(size == 0 for _f, size, _m in files):
        sink.add(f"source '{src.id}': file '{src.path}' is empty (0 bytes). Point the source "
                 "at a file with data, or remove it.", line=src.line, kind="config")
        return SourcePlan(src, read)
    try:
        from builder.plan.sandbox import sandbox_dirs_for_paths

        dirs = sandbox_dirs_for_paths([resolved])
        ragged = _ragged_csv(src, files, dirs) if src.resolved_format == "csv" else None
        if ragged:
            sink.add(f"source '{src.id}': {ragged}", line=src.line, kind="config")
            return SourcePlan(src, read)
        cols = describe_source(read.sql(dialect="duckdb"), source_key(pipeline, src), dirs)
    except duckdb.Error as e:
        sink.add(f"source '{src.id}': cannot read '{src.path}' as {src.resolved_format}: "
                 f"{engine_message(e)}", line=src.line, kind="execution")
        return SourcePlan(src, read)
    return SourcePlan(src, read, cols)


_SNIFF_CACHE: dict[tuple[object, ...], str] = {}


def _ragged_csv(src: Source, files: tuple[tuple[str, int, int], ...],
                dirs: list[str]) -> str | None:
    """Why reading a CSV source would silently lose or garble rows, or None when it would not.

    DuckDB's CSV sniffer copes with a ragged file (a row with more or fewer fields than the
    others) by skipping the leading lines that disagree, or by falling back to a delimiter
    that makes each whole line one column. Either way rows are lost without an error.
    """
    options = tuple(sorted((str(k), repr(v)) for k, v in src.options.items()))
    for ident_ in files[:50]:
        key = (ident_, options)
        if key not in _SNIFF_CACHE:
            if len(_SNIFF_CACHE) > 1024:
                _SNIFF_CACHE.clear()
            _SNIFF_CACHE[key] = _sniff_problem(src, ident_[0], dirs)
        if _SNIFF_CACHE[key]:
            return _SNIFF_CACHE[key]
    return None


def _sniff_problem(src: Source, path: str, dirs: list[str]) -> str:
    args: list[exp.Expr] = [exp.Literal.string(path), *option_args(src.options, "csv")]
    sniff = exp.select("Delimiter", "SkipRows", "Columns").from_(
        exp.Table(this=exp.Anonymous(this="sniff_csv", expressions=args)))
    con = sandboxed_cursor(dirs)
    try:
        row = con.execute(sniff.sql(dialect="duckdb")).fetchone()
    except duckdb.Error:
        return ""  # the read itself reports what is wrong
    finally:
        con.close()
    if not row:
        return ""
    delim, skipped, columns = str(row[0]), int(row[1] or 0), list(row[2] or [])
    name = Path(path).name
    if skipped and "skip" not in src.options:
        return (f"'{name}' has rows with different numbers of fields: reading it would "
                f"silently skip its first {skipped} line(s). Fix the file, or set "
                f"'options: {{skip: {skipped}}}' if those lines are a preamble.")
    if len(columns) == 1 and "delim" not in src.options and "sep" not in src.options:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                first = f.readline()
        except OSError:
            return ""
        if any(d in first for d in ",;\t" if d != delim):
            return (f"'{name}' has rows with different numbers of fields, so no delimiter "
                    "fits every row: each line would be read as one text column. Fix the "
                    "file, or set 'options: {delim: ...}'.")
    return ""


# ---- params ------------------------------------------------------------------------------

def _literal_choices(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    if len(loc) != 1 or loc[0] not in getattr(model, "model_fields", {}):
        return None
    ann = model.model_fields[loc[0]].annotation  # type: ignore[attr-defined]
    for t in [ann, *typing.get_args(ann)]:
        if typing.get_origin(t) is typing.Literal:
            return [str(a) for a in typing.get_args(t)]
    return None


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "int", "float", "bool", "list[...]", "dict[...]",
                      "OrderSpec", "function-after", "function-plain", "literal"):
            continue
        elif re.match(r"^(list|dict|literal|str|int|float|union|tagged-union)\[", str(part)):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def pydantic_messages(model: Any, e: ValidationError) -> list[tuple[str, str]]:
    """(param, message) pairs in Dockyard's wording for a pydantic ValidationError."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for err in e.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        param = _loc_text(loc) or "params"
        typ = err.get("type", "")
        value = err.get("input")
        if typ == "extra_forbidden":
            allowed = list(getattr(model, "model_fields", {}))
            msg = f"unknown param '{param}'." + (did_you_mean(str(loc[-1]), allowed) or (
                " Valid params: " + ", ".join(allowed) + "."))
        elif typ == "missing":
            desc = model.model_fields[loc[0]].description if len(loc) == 1 and loc[0] in \
                getattr(model, "model_fields", {}) else None
            if desc and not desc[:2].isupper():
                desc = desc[0].lower() + desc[1:]
            msg = f"param '{param}' is required" + (f": {desc}" if desc else ".")
            msg = msg if msg.endswith(".") else msg + "."
        elif typ == "literal_error":
            choices = _literal_choices(model, loc) or re.findall(
                r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            msg = f"param '{param}' got '{value}'." + (
                " Valid values: " + ", ".join(choices) + "." if choices else "")
        elif typ in ("value_error", "assertion_error"):
            text = str(err.get("msg", "")).removeprefix("Value error, ").removeprefix(
                "Assertion failed, ")
            msg = f"param '{param}': {text}" if param != "params" else text
            msg = msg if msg.endswith(".") else msg + "."
        else:
            text = str(err.get("msg", "invalid value"))
            text = text[0].lower() + text[1:]
            shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
            msg = f"param '{param}': {text}, got {shown}."
        if msg in seen:
            continue
        seen.add(msg)
        out.append((param, msg))
    # A union failing on every branch yields one error per branch; keep the first per param.
    firsts: dict[str, str] = {}
    for param, msg in out:
        firsts.setdefault(param, msg)
    return list(firsts.items())


def _resolve_param_columns(pattern: Pattern, params: Any, rels: list[Relation]) -> Any:
    """Check every column-typed top-level param against the input schema it refers to.

    Names match case-insensitively, as DuckDB, Spark and dbt_utils match them: ``FIELD_3``
    finds the column ``field_3``. Returns the params with each name in the input's own spelling
    (validated again, so a pattern's own checks see the resolved names).
    """
    model = pattern.params
    updates: dict[str, Any] = {}
    for name in model.model_fields:
        kind, inp = field_kind(model, name)
        if kind is None:
            continue
        value = getattr(params, name)
        if value is None:
            continue
        targets = rels if inp is None else ([rels[inp]] if inp < len(rels) else [])
        if not targets:
            continue
        if kind in ("sql", "sql_map"):
            exprs = [value] if kind == "sql" else list(value.values())
            for text in exprs:
                _check_sql_columns(str(text), name, targets)
            continue
        if kind == "column":
            names = [value]
        elif kind in ("columns", "column_map"):
            names = list(value)
        elif kind == "order_by":
            names = [s.column for s in order_specs(value)]
        else:
            names = []
        resolved = [_resolve_column(c, targets, name if kind in ("column", "column_map")
                                    else f"{name}[{i}]") for i, c in enumerate(names)]
        if resolved == names:
            continue
        key = model.model_fields[name].alias or name
        if kind == "column":
            updates[key] = resolved[0]
        elif kind == "columns":
            updates[key] = resolved
        elif kind == "column_map":
            updates[key] = dict(zip(resolved, value.values()))
        else:
            updates[key] = [{**s.model_dump(), "column": r}
                            for s, r in zip(order_specs(value), resolved)]
    if not updates:
        return params
    try:
        return model.model_validate({**params.model_dump(by_alias=True, exclude_unset=True),
                                     **updates})
    except ValidationError as e:
        raise _ParamErrors([ParamError(p, m) for p, m in pydantic_messages(model, e)]) from None


def _resolve_column(name: str, rels: list[Relation], param: str) -> str:
    """``name`` as one of ``rels``' columns spells it (exact match first, then ignoring case)."""
    cols = [x for r in rels for x in r.column_names]
    if name in cols:
        return name
    where = f"input '{rels[0].name}'" if len(rels) == 1 else "the inputs"
    # An input cannot hold two names that differ only in case (DuckDB refuses them).
    same = [c for c in cols if c.lower() == name.lower()]
    if same:
        return same[0]
    raise ParamError(param, f"column '{name}' not found in {where}."
                     + (did_you_mean(name, cols) or " Columns: " + ", ".join(cols[:12]) + "."))


def _check_sql_columns(text: str, param: str, rels: list[Relation]) -> None:
    """The statement check, then unknown column names, of a SQL expression param."""
    tree, masked = checked_expression(text, [r.name for r in rels], param)
    placeholders = {ref.placeholder for ref in masked.refs}
    cols = [c for r in rels for c in r.column_names]
    lowered = {c.lower() for c in cols}
    local_aliases = {a.alias for a in tree.find_all(exp.Alias)}
    for column in tree.find_all(exp.Column):
        name = column.name
        if not name or column.table or name in cols or name in local_aliases \
                or name in placeholders:
            continue
        if not column.this.quoted and name.lower() in lowered:
            continue  # DuckDB resolves unquoted names case-insensitively
        if isinstance(column.parent, exp.Lambda) or column.find_ancestor(exp.Lambda):
            continue
        where = f"input '{rels[0].name}'" if len(rels) == 1 else "the inputs"
        raise ParamError(param, f"column '{name}' not found in {where}."
                         + (did_you_mean(name, cols) or " Columns: " + ", ".join(cols[:12]) + "."))


# ---- engine error messages ---------------------------------------------------------------

_CANDIDATE_RE = re.compile(r'Referenced column "([^"]+)" not found')
def binder_problem(e: duckdb.Error, st: Step, rels: list[Relation], file: str | None) -> Problem:
    """A DuckDB binder error on a step turned into Dockyard's message, with SQL position."""
    text = str(e)
    m = _CANDIDATE_RE.search(text)
    if m:
        name = m.group(1)
        cols = [c for r in rels for c in r.column_names]
        where = f"input '{rels[0].name}'" if len(rels) == 1 else \
            "inputs " + ", ".join(f"'{r.name}'" for r in rels) if rels else "the query"
        msg = f"column '{name}' not found in {where}." + (did_you_mean(name, cols) or (
            " Columns: " + ", ".join(cols[:12]) + "." if cols else ""))
        line, col = sqlcheck.find_token(st.sql or "", name) if st.sql else (None, None)
        return Problem(msg, file=file, line=st.line, step=st.id, sql_line=line, sql_col=col,
                       kind="compile")
    fn = function_error(text)
    if fn:  # an unknown function or argument types no overload takes: point at the name
        line, col = sqlcheck.find_token(st.sql, fn.name) if st.sql else (None, None)
        return Problem(fn.message, file=file, line=st.line, step=st.id, sql_line=line,
                       sql_col=col, kind="compile")
    return Problem(engine_message(e), file=file, line=st.line, step=st.id, kind="compile")


# ---- steps -------------------------------------------------------------------------------

def declared_inputs(st: Step, sink: ProblemSink, params: dict[str, Any],
                    readable: list[str]) -> tuple[list[str], exp.Query | None]:
    """A step's inputs: declared, or for SQL steps inferred from the tables it reads
    (``readable``: every node id of the pipeline, and the expect steps' ``.rejected``)."""
    if st.sql is None:
        return list(st.inputs or []), None
    # {{ name }} is masked, the text parsed and checked, then each value put in the tree as a
    # literal: a value can never end a comment, a string or a name (see builder.pipeline.params).
    try:
        masked = mask_params(st.sql)
        check_param_names(masked, params)
    except CompileError as ce:
        for p in ce.problems:
            sink.add(p.message, line=st.line, step=st.id, kind="compile")
        return list(st.inputs or []), None
    query, issue = sqlcheck.parse_query(masked.text)
    if issue or query is None:
        assert issue is not None
        line, col = masked.position(issue.line, issue.col)
        sink.add(masked.unmask(issue.message), line=st.line, step=st.id, sql_line=line,
                 sql_col=col, kind="compile")
        return list(st.inputs or []), None
    try:
        bind_params(query, masked, params)
    except CompileError as ce:
        for p in ce.problems:
            sink.add(p.message, line=st.line, step=st.id, sql_line=p.sql_line,
                     sql_col=p.sql_col, kind="compile")
        return list(st.inputs or []), None
    found, issues = sqlcheck.infer_inputs(query, readable)
    for iss in issues:
        line, col = masked.position(iss.line, iss.col)
        sink.add(iss.message, line=st.line, step=st.id, sql_line=line, sql_col=col,
                 kind="compile")
    if st.inputs is not None:
        missing = [n for n in found if n not in st.inputs and n != st.id]
        for n in missing:
            sink.add(f"the SQL reads '{n}', which is not listed in 'inputs'. Add it there or "
                     "leave 'inputs' out to infer it.", line=st.line, step=st.id,
                     kind="graph")
        return list(st.inputs), query
    return found, query


def build_pattern_step(pattern: Pattern, st: Step, rels: list[Relation],
                       pipeline_params: dict[str, Any],
                       value_reader: ValueReader | None = None) -> Built:
    """Validate a pattern step's params and build its query (raises ParamError/CompileError)."""
    try:
        params = pattern.params.model_validate(st.params)
    except ValidationError as e:
        msgs = pydantic_messages(pattern.params, e)
        raise _ParamErrors([ParamError(p, m) for p, m in msgs]) from None
    params = _resolve_param_columns(pattern, params, rels)
    ctx = BuildContext(step_id=st.id, inputs=rels, pipeline_params=pipeline_params,
                       value_reader=value_reader)
    result = pattern.build(params, ctx)
    if isinstance(result, Built):
        return result
    return Built(query=result)


class _ParamErrors(Exception):
    def __init__(self, errors: list[ParamError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def _param_line(st: Step, param: str | None) -> int | None:
    if param:
        top = re.split(r"[.\[]", param)[0]
        if top in st.param_lines:
            return st.param_lines[top]
    return st.line


def plan(pipeline: Pipeline, registry: Registry = PATTERNS, *, stop_at: str | None = None,
         typer: Typer | None = None) -> Plan:
    """Compile and type every step; collects all problems (see :meth:`Plan.raise_for_errors`).

    ``stop_at`` limits work to the steps that node needs (the app types only what it shows).
    """
    return _plan(pipeline, registry, stop_at, typer)


def _plan(pipeline: Pipeline, registry: Registry, stop_at: str | None,
          typer: Typer | None) -> Plan:
    file = pipeline.file
    sink = ProblemSink(file)
    # Unknown patterns first: they decide arity checks and side outputs.
    for st in pipeline.steps:
        if st.pattern is not None and st.pattern not in registry:
            sink.add(f"unknown pattern '{st.pattern}'." + (registry.suggest(st.pattern) or
                     " Run 'dockyard patterns' for the list."), line=st.line, step=st.id,
                     kind="config")
    # {env: NAME} params are read once per plan; unset variables are problems.
    values, missing = pipeline.param_values()
    for message in missing:
        sink.add(message, line=pipeline.params_line, kind="config")
    inputs: dict[str, list[str]] = {}
    parsed_sql: dict[str, exp.Query | None] = {}
    # Names a SQL step may read; the same for every step, so listed once (not once per step).
    readable = pipeline.node_ids() + [graphmod.rejected_id(s.id) for s in pipeline.steps
                                      if s.pattern == "expect"]
    by_id: dict[str, Step] = {}  # Pipeline.step scans the list: once per step is quadratic
    for st in pipeline.steps:
        inputs[st.id], parsed_sql[st.id] = declared_inputs(st, sink, values, readable)
        by_id.setdefault(st.id, st)  # a repeated id (reported) resolves as Pipeline.step does
    side = {graphmod.rejected_id(s.id) for s in pipeline.steps if s.pattern == "expect"
            and str(s.params.get("on_fail", "error")) == "quarantine"}
    g, gprobs = graphmod.build_graph(pipeline, inputs, registry, side)
    sink.extend(gprobs)
    try:
        order = graphmod.topological_order(g, pipeline)
    except nx.NetworkXUnfeasible:
        order = []
    result = Plan(pipeline=pipeline, graph=g, order=order, sources={}, steps={},
                  problems=list(sink), side_nodes={n: n[: -len(".rejected")] for n in side},
                  param_values=values)
    needed = set(result.needed_for([stop_at])) if stop_at and stop_at in g and order else None
    # Hard graph errors (unknown inputs, cycles) make typing meaningless for affected steps.
    own_typer = typer is None
    typer = typer or Typer()
    try:
        broken: set[str] = {p.step for p in result.problems if p.severity == "error" and p.step}
        for node in order or pipeline.node_ids():
            if needed is not None and node not in needed:
                continue
            if node in pipeline.sources:
                ssink = ProblemSink(file)
                sp = plan_source(pipeline, pipeline.sources[node], ssink)
                result.sources[node] = sp
                result.problems.extend(ssink)
                if sp.columns is not None:
                    typer.define(node, sp.columns)
                else:
                    broken.add(node)
                continue
            if node in result.side_nodes:
                owner = result.steps.get(result.side_nodes[node])
                if owner is None or owner.rejected is None or node in broken or \
                        result.side_nodes[node] in broken:
                    broken.add(node)
                    continue
                try:
                    result._rejected_schema[node] = typer.type_query(node, owner.rejected)
                except duckdb.Error as e:
                    broken.add(node)
                    result.problems.append(Problem(engine_message(e), file=file,
                                                   step=owner.id, kind="compile"))
                continue
            st = by_id[node]
            sp_step = StepPlan(step=st, inputs=inputs.get(st.id, []),
                               pattern=registry.get(st.pattern) if st.pattern is not None
                               and st.pattern in registry else None)
            result.steps[st.id] = sp_step
            if st.id in broken or any(i in broken or i not in g for i in sp_step.inputs):
                broken.add(st.id)
                continue
            if st.pattern is not None and sp_step.pattern is None:
                broken.add(st.id)
                continue
            _plan_step(result, sp_step, parsed_sql.get(st.id), typer)
            if not sp_step.ok:
                broken.add(st.id)
            result.problems.extend(sp_step.problems)
    finally:
        if own_typer:
            typer.close()
    if stop_at is None:  # a plan that may run: where would its outputs write?
        from builder.plan.targets import output_problems

        read_by = {sid: sp.paths for sid, sp in result.sources.items() if sp.paths}
        result.problems.extend(output_problems(pipeline, read_by))
    return result


def _plan_step(result: Plan, sp: StepPlan, sql_query: exp.Query | None, typer: Typer) -> None:
    pipeline = result.pipeline
    st = sp.step
    file = pipeline.file
    rels = []
    for i in sp.inputs:
        cols = result.schema(i)
        if cols is None:
            return
        rels.append(Relation(i, cols))
    if st.sql is not None:
        if sql_query is None:
            return  # parse problem already reported
        sp.query = sql_query
    else:
        assert sp.pattern is not None
        try:
            built = build_pattern_step(sp.pattern, st, rels, result.param_values,
                                       _value_reader(result, sp.inputs))
        except _ParamErrors as pe:
            for e in pe.errors:
                sp.problems.append(_param_problem(st, e, file))
            return
        except ParamError as e:
            sp.problems.append(_param_problem(st, e, file))
            return
        except CompileError as ce:
            for p in ce.problems:
                sp.problems.append(Problem(p.message, file=file, line=st.line, step=st.id,
                                           kind="compile"))
            return
        except (ParseError, TokenError) as e:
            sp.problems.append(Problem(f"invalid SQL expression: {parse_error_text(e)}",
                                       file=file, line=st.line, step=st.id, kind="compile"))
            return
        sp.query, sp.checks, sp.rejected = built.query, built.checks, built.rejected
    try:
        sp.columns = typer.type_query(st.id, sp.query)
    except duckdb.Error as e:
        sp.problems.append(binder_problem(e, st, rels, file))
        sp.columns = None
        return
    # Checks hold users' expressions too: they are typed here, in the no-file sandbox, so a
    # check that cannot run is a validation error, before any engine with file access runs it.
    for check in sp.checks:
        try:
            typer.describe_query(check.failing.sql(dialect="duckdb"))
        except duckdb.Error as e:
            sp.problems.append(Problem(f"check '{check.name}' cannot run: {engine_message(e)}",
                                       file=file, line=st.line, step=st.id, kind="compile"))
    dupes = sorted({c.name for c in sp.columns if [x.name for x in sp.columns].count(c.name) > 1})
    if dupes:
        sp.problems.append(Problem(
            f"the result has the column '{dupes[0]}' more than once. Give each column its own "
            "name (AS ...).", file=file, line=st.line, step=st.id, kind="compile"))


ValueReader = typing.Callable[[int, str, int], list[Any]]
_VALUES_CACHE: dict[tuple[object, ...], list[Any]] = {}


def _value_reader(result: Plan, inputs: list[str]) -> ValueReader:
    """Reads distinct values of an input's column while planning (pivot without 'values').

    The input is computed from its sources by the plan so far (one query, its CTE chain) in a
    sandboxed DuckDB cursor that may read only the sources' folders. Results are cached by the
    query and the sources' file identities, so re-planning unchanged data reads nothing.
    """

    def read(index: int, column: str, limit: int) -> list[Any]:
        node = inputs[index]
        inner = result.to_query(node).subquery(ident("__dy_input"))
        query = exp.select(exp.column(column, quoted=True)).distinct().from_(inner).where(
            exp.Not(this=exp.column(column, quoted=True).is_(exp.null()))).order_by(
            exp.Ordered(this=exp.Literal.number(1))).limit(limit + 1)
        sql = query.sql(dialect="duckdb")
        needed = [result.sources[n] for n in result.needed_for([node]) if n in result.sources]
        paths = [result.pipeline.resolve(sp.source.path) for sp in needed if sp.source.path]
        paths += [p for sp in needed for p in sp.paths]
        key = (sql, tuple(source_key(result.pipeline, sp.source) for sp in needed),
               tuple(file_identity(p) for p in paths if "://" not in p))
        if key not in _VALUES_CACHE:
            from builder.plan.sandbox import sandbox_dirs_for_paths

            con = sandboxed_cursor(sandbox_dirs_for_paths(paths))
            try:
                rows = con.execute(sql).fetchall()
            except duckdb.Error as e:
                raise ParamError(None, f"cannot read the values of '{column}' from input "
                                 f"'{node}': {engine_message(e)}") from None
            finally:
                con.close()
            if len(_VALUES_CACHE) > 256:
                _VALUES_CACHE.clear()
            _VALUES_CACHE[key] = [r[0] for r in rows]
        return list(_VALUES_CACHE[key])

    return read


def _param_problem(st: Step, e: ParamError, file: str | None) -> Problem:
    msg = e.message
    # 'params' is where pydantic puts model-level (cross-field) errors: no prefix for those.
    if e.param and e.param != "params" and f"'{e.param}'" not in msg and \
            not msg.startswith("param"):
        msg = f"param '{e.param}': {msg}"
    return Problem(msg, file=file, line=_param_line(st, e.param), step=st.id, param=e.param,
                   kind="config")


def compile_pipeline(pipeline: Pipeline, registry: Registry = PATTERNS) -> Plan:
    """Plan the pipeline and raise the collected problems if there are errors."""
    p = plan(pipeline, registry)
    p.raise_for_errors()
    return p


def step_relation(plan_: Plan, node: str) -> Relation:
    cols = plan_.schema(node)
    return Relation(node, tuple(cols or ()))


__all__ = ["Plan", "StepPlan", "SourcePlan", "plan", "compile_pipeline", "read_query",
           "ColumnInfo"]
