"""What a DuckDB run executes, as plain data: the SQL of every node, its checks, the outputs.

A ``Plan`` holds sqlglot trees, the networkx graph and the pydantic-validated pipeline; the
DuckDB engine needs none of them to run, only the SQL text and a few facts about the graph.
``RunSpec.from_plan`` renders them once. The spec is also what the run cache stores
(:mod:`builder.runner.cache`), so an unchanged pipeline runs without importing sqlglot,
networkx or pydantic. This module imports only the standard library and light modules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.pipeline.postgres_spec import output_spec
from builder.plan.compiler import Plan
from builder.plan.plans import sandbox_dirs

if TYPE_CHECKING:
    from builder.pipeline.model import Output


@dataclass(frozen=True)
class PipelineRef:
    """Who is running: what the run lock and the run history need of a pipeline."""

    name: str
    file: str | None

    @property
    def path(self) -> Path | None:
        return Path(self.file) if self.file else None


@dataclass(frozen=True)
class CheckSpec:
    name: str
    on_fail: str
    failing_sql: str  # DuckDB SQL selecting the offending rows


@dataclass(frozen=True)
class NodeSpec:
    id: str
    source: bool
    ctes: list[tuple[str, str]]  # (name, DuckDB SQL): read stages of a source, then the node
    checks: list[CheckSpec]
    consumers: int  # times the other nodes' queries read this one
    checked: bool  # a check queries this node (keep it as a table: computed once)
    side: bool  # a side result such as '<step>.rejected'
    postgres: dict[str, Any] | None = None  # a PostgreSQL source (see builder.plan.postgres)


@dataclass(frozen=True)
class OutputSpec:
    step: str
    path: str | None  # as written in the pipeline (for messages)
    target: str | None  # resolved file path; None for a staging table
    format: str
    ordered_sql: str | None  # the step's own query when it sorts (tables keep no order)
    staging: bool
    postgres: dict[str, Any] | None = None  # {dsn, table, mode, primary_key}


@dataclass
class RunSpec:
    pipeline: PipelineRef
    nodes: list[NodeSpec]
    outputs: list[OutputSpec]
    sandbox_dirs: list[str]  # folders the run may read and write
    warnings: list[str] = field(default_factory=list)
    # Only a spec made from a plan in this process has these: staging outputs need the plan
    # (schema, lineage, docs) to be written and registered, so such specs are never cached.
    plan: Plan | None = None
    models: dict[str, Output] = field(default_factory=dict)

    @property
    def steps_total(self) -> int:
        return sum(1 for n in self.nodes if not n.source)

    @property
    def cacheable(self) -> bool:
        # PostgreSQL's tables change without the run cache seeing it: never stored.
        return not any(o.staging or o.postgres for o in self.outputs) and \
            not any(n.postgres for n in self.nodes)

    @classmethod
    def from_plan(cls, plan: Plan, outputs: dict[str, Output] | None = None) -> RunSpec:
        """The run of ``outputs`` (default: all) of a valid plan; raises the plan's errors."""
        plan.raise_for_errors()
        # sqlglot only here: a spec from the run cache runs without importing it (0.2 s).
        from sqlglot import exp

        outputs = plan.pipeline.outputs if outputs is None else outputs
        pipeline = plan.pipeline
        needed = plan.needed_for(list(outputs))

        # The tables the checks actually query (a step's own, or its inputs, as expect's do).
        checked = {t.name for n in needed for c in plan.checks(n)
                   for t in c.failing.find_all(exp.Table)}
        reads = plan.reads(needed)
        nodes = []
        for n in needed:
            nodes.append(NodeSpec(
                id=n, source=n in plan.sources,
                ctes=[(name, q.sql(dialect="duckdb")) for name, q in plan.node_ctes(n)],
                checks=[CheckSpec(c.name, c.on_fail, c.failing.sql(dialect="duckdb"))
                        for c in plan.checks(n)],
                consumers=reads.get(n, 0),
                checked=n in checked,
                side=n in plan.side_nodes,
                postgres=plan.sources[n].postgres if n in plan.sources else None))
        outs = []
        for out in outputs.values():
            query = plan.steps[out.step].query if out.step in plan.steps else None
            ordered = query is not None and query.args.get("order") is not None
            outs.append(OutputSpec(
                step=out.step, path=out.path,
                target=pipeline.resolve(out.path) if out.path else None,
                format=out.resolved_format or "parquet",
                ordered_sql=query.sql(dialect="duckdb") if ordered and query else None,
                staging=out.staging is not None,
                postgres=_postgres_output(out)))
        return cls(pipeline=PipelineRef(pipeline.name, pipeline.file),
                   nodes=nodes, outputs=outs, sandbox_dirs=sandbox_dirs(plan),
                   warnings=[str(p) for p in plan.warnings], plan=plan,
                   models={o.step: o for o in outputs.values()})

    def to_json(self) -> dict[str, Any]:
        if not self.cacheable:
            raise ValueError("a run with staging outputs needs its plan; it is not stored")
        # Field by field: asdict(self) would deep-copy the plan (sqlglot trees, the graph).
        return {"pipeline": asdict(self.pipeline), "nodes": [asdict(n) for n in self.nodes],
                "outputs": [asdict(o) for o in self.outputs],
                "sandbox_dirs": list(self.sandbox_dirs), "warnings": list(self.warnings)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(
            pipeline=PipelineRef(**data["pipeline"]),
            nodes=[NodeSpec(**{**n, "ctes": [tuple(c) for c in n["ctes"]],
                               "checks": [CheckSpec(**c) for c in n["checks"]]})
                   for n in data["nodes"]],
            outputs=[OutputSpec(**o) for o in data["outputs"]],
            sandbox_dirs=list(data["sandbox_dirs"]), warnings=list(data["warnings"]))


def _postgres_output(out: Output) -> dict[str, Any] | None:
    return None if out.postgres is None else output_spec(out.postgres)
