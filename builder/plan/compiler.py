"""Compile a pipeline into sqlglot queries, one per step, typed step by step.

``plan(pipeline)`` walks the DAG in order: it builds each pattern step from its params (pydantic
validation, column checks against the input's propagated schema), parses each SQL step (single
SELECT only, inputs inferred from its tables), types the result (see :mod:`builder.plan.schema`) and
collects every problem with its location. A :class:`Plan` renders any step as one CTE-chain
query in any sqlglot dialect.
"""

from __future__ import annotations

import logging
import re
import typing
from typing import Any

import duckdb
import networkx as nx
from pydantic import ValidationError
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from builder.errors import CompileError, Problem, engine_message
from builder.pipeline.model import Pipeline, Step
from builder.pipeline.params import bind_params, check_param_names, mask_params
from builder.pipeline.pydantic_errors import pydantic_messages
from builder.plan import graph as graphmod
from builder.plan import sqlcheck
from builder.plan.binder import binder_problem
from builder.plan.columns import resolve_param_columns
from builder.plan.files import source_key
from builder.plan.plans import Plan, ProblemSink, SourcePlan, StepPlan
from builder.plan.sandbox import file_identity, sandbox_dirs_for_paths, sandboxed_cursor
from builder.plan.schema import Typer
from builder.plan.sources import plan_source
from builder.plan.targets import output_problems
from builder.plan.types import ParamError, ParamErrors, Relation
from patterns import PATTERNS
from patterns.base import BuildContext, Built, Pattern
from patterns.registry import Registry
from patterns.sql import ident, parse_error_text

logging.getLogger("sqlglot").setLevel(logging.ERROR)


# ---- steps -------------------------------------------------------------------------------

def declared_inputs(st: Step, sink: ProblemSink, params: dict[str, Any],
                    readable: list[str]) -> tuple[list[str], exp.Query | None]:
    """A step's inputs: declared, or for SQL steps inferred from the tables it reads
    (``readable``: every node id of the pipeline, and the side outputs steps may make)."""
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
        raise ParamErrors([ParamError(p, m) for p, m in msgs]) from None
    params = resolve_param_columns(pattern, params, rels)
    ctx = BuildContext(step_id=st.id, inputs=rels, pipeline_params=pipeline_params,
                       value_reader=value_reader)
    result = pattern.build(params, ctx)
    if isinstance(result, Built):
        return result
    return Built(query=result)


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
    # Side outputs ('<step>.rejected') are declared by the patterns (Pattern.rejected_rows): a
    # SQL step may name any a step could make; the graph has those the step's params make.
    may_reject = [(s, registry.get(s.pattern)) for s in pipeline.steps
                  if s.pattern is not None and s.pattern in registry]
    may_reject = [(s, pat) for s, pat in may_reject if pat.rejected_rows is not None]
    # Names a SQL step may read; the same for every step, so listed once (not once per step).
    readable = pipeline.node_ids() + [graphmod.rejected_id(s.id) for s, _pat in may_reject]
    by_id: dict[str, Step] = {}  # Pipeline.step scans the list: once per step is quadratic
    for st in pipeline.steps:
        inputs[st.id], parsed_sql[st.id] = declared_inputs(st, sink, values, readable)
        by_id.setdefault(st.id, st)  # a repeated id (reported) resolves as Pipeline.step does
    side = {graphmod.rejected_id(s.id): s.id for s, pat in may_reject
            if pat.has_rejected(s.params)}
    g, gprobs = graphmod.build_graph(pipeline, inputs, registry, set(side))
    sink.extend(gprobs)
    try:
        order = graphmod.topological_order(g, pipeline)
    except nx.NetworkXUnfeasible:
        order = []
    result = Plan(pipeline=pipeline, graph=g, order=order, sources={}, steps={},
                  problems=list(sink), side_nodes=side,
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
                    result.side_schemas[node] = typer.type_query(node, owner.rejected)
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
        except ParamErrors as pe:
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


# The plan types (builder.plan.plans) and source_key (builder.plan.files) are imported from
# here by the engines, the app and the command line as well.
__all__ = ["Plan", "ProblemSink", "SourcePlan", "StepPlan", "plan", "source_key"]
