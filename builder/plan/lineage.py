"""Column-level lineage from the compiled SQL (sqlglot), within and across pipelines.

Within a pipeline, a step's column is traced through the CTE chain down to source columns.
A source that reads a staging table continues into the pipeline that publishes it, so
``dockyard lineage daily_sessions.sessions`` reaches the raw files several pipelines upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.lineage import Node, lineage

from builder.errors import CompileError, did_you_mean
from builder.pipeline.model import load
from builder.pipeline.project import find_project
from builder.plan.compiler import plan as make_plan
from builder.plan.dependencies import producer_files
from builder.plan.plans import Plan


@dataclass(frozen=True)
class Origin:
    """A source column a result column is computed from."""

    pipeline: str
    source: str           # source id in that pipeline
    column: str
    kind: str             # file | catalog | staging | postgres
    target: str           # the file path, catalog entry or staging table name
    passthrough: bool     # the value is copied unchanged (docs can be carried over)


@dataclass
class Lineage:
    pipeline: str
    step: str
    column: str
    origins: list[Origin] = field(default_factory=list)
    upstream: list[Lineage] = field(default_factory=list)  # through staging tables


def column_origins(plan: Plan, step: str, column: str) -> list[Origin]:
    """Source columns that ``step.column`` is computed from, in this pipeline."""
    if step not in plan.steps and step not in plan.sources:
        raise CompileError(f"unknown step '{step}'." + did_you_mean(step, plan.pipeline.node_ids()))
    cols = plan.schema(step) or ()
    names = [c.name for c in cols]
    if column not in names:
        raise CompileError(f"step '{step}' has no column '{column}'." +
                           (did_you_mean(column, names) or " Columns: " + ", ".join(names) + "."))
    if step in plan.sources:
        return [_origin(plan, step, column, True)]
    query = plan.to_query(step, sources_as_tables=True)
    schema = {sid: {c.name: c.type for c in (sp.columns or ())}
              for sid, sp in plan.sources.items()}
    root = lineage(exp.to_identifier(column, quoted=True).sql("duckdb"), query,
                   schema=schema, dialect="duckdb")
    found: dict[tuple[str, str], bool] = {}
    _walk(root, True, found, set(plan.sources))
    return [_origin(plan, src, col, passthrough) for (src, col), passthrough in found.items()]


def _walk(node: Node, passthrough: bool, found: dict[tuple[str, str], bool],
          sources: set[str]) -> None:
    expr = node.expression
    here = isinstance(expr, exp.Column) or (isinstance(expr, exp.Alias)
                                             and isinstance(expr.this, exp.Column))
    passthrough = passthrough and (here or isinstance(expr, exp.Table))
    if not node.downstream:
        if isinstance(node.source, exp.Table) and node.source.name in sources:
            col = node.name.split(".")[-1].strip('"')
            key = (node.source.name, col)
            found[key] = found.get(key, True) and passthrough
        return
    many = len(node.downstream) > 1
    for d in node.downstream:
        _walk(d, passthrough and not many, found, sources)


def _origin(plan: Plan, source: str, column: str, passthrough: bool) -> Origin:
    src = plan.pipeline.sources[source]
    kind, target = ("catalog", src.catalog) if src.catalog else \
        ("staging", src.staging) if src.staging else \
        ("postgres", src.postgres.get("table") or "query") if src.postgres else \
        ("file", src.path or "")
    return Origin(pipeline=plan.pipeline.name, source=source, column=column, kind=kind,
                  target=str(target), passthrough=passthrough)


def trace(plan: Plan, step: str, column: str, depth: int = 0) -> Lineage:
    """Lineage of ``step.column``, following staging sources into their producers."""
    result = Lineage(pipeline=plan.pipeline.name, step=step, column=column,
                     origins=column_origins(plan, step, column))
    if depth > 10:  # pipelines reading each other in a loop: stop, do not recurse forever
        return result
    files = producer_files(find_project(plan.pipeline.path))
    for o in result.origins:
        if o.kind != "staging" or o.target not in files:
            continue
        upstream = make_plan(load(files[o.target]))
        out = next((x for x in upstream.pipeline.outputs.values() if x.staging == o.target),
                   None)
        if out is None or upstream.errors:
            continue
        try:
            result.upstream.append(trace(upstream, out.step, o.column, depth + 1))
        except CompileError:
            continue
    return result


def render(lin: Lineage, indent: str = "") -> list[str]:
    """Text lines of a lineage tree, as ``dockyard lineage`` prints it."""
    lines = [f"{indent}{lin.pipeline}.{lin.step}.{lin.column}"]
    for o in lin.origins:
        how = "copied from" if o.passthrough else "computed from"
        lines.append(f"{indent}  {how} {o.kind} '{o.target}' column '{o.column}'"
                     + (f" (source '{o.source}')" if o.source != o.target else ""))
    for up in lin.upstream:
        lines.extend(render(up, indent + "    "))
    return lines
