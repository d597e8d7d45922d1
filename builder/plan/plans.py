"""The plan types: what planning a pipeline produces (see :func:`builder.plan.compiler.plan`).

A :class:`Plan` holds a :class:`SourcePlan` per source and a :class:`StepPlan` per step, the
graph, the order and every problem found; it renders any node as one CTE-chain query in any
sqlglot dialect. :class:`ProblemSink` collects problems while planning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from sqlglot import exp

from builder.errors import CompileError, ConfigError, GraphError, Problem
from builder.pipeline.model import Pipeline, Source, Step
from builder.pipeline.project import find_project
from builder.plan.incremental import IncrementalRead
from builder.plan.sandbox import normalise_dirs, source_dir
from builder.plan.types import Schema
from patterns.base import Check, Pattern
from patterns.sql import ident


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
    side_schemas: dict[str, Schema] = field(default_factory=dict)  # 'x.rejected' -> columns
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
            return self.side_schemas.get(node)
        return self.steps[node].columns if node in self.steps else None

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


class ProblemSink(list):  # type: ignore[type-arg]
    """A list of problems with a helper to add one."""

    def __init__(self, file: str | None) -> None:
        super().__init__()
        self.file = file

    def add(self, message: str, **kw: Any) -> None:
        kw.setdefault("file", self.file)
        self.append(Problem(message, **kw))


def sandbox_dirs(plan: Plan, extra: Iterable[str | Path] = ()) -> list[str]:
    """Folders a pipeline's run may touch: its source folders, output folders and ``extra``."""
    pipeline = plan.pipeline
    dirs: list[Path] = []
    for src in pipeline.sources.values():
        if src.path and "://" not in src.path:
            dirs.append(source_dir(pipeline.resolve(src.path)))
    for sp in plan.sources.values():
        dirs.extend(source_dir(p) for p in sp.paths if "://" not in p)
    for out in pipeline.outputs.values():
        if out.path:
            dirs.append(Path(pipeline.resolve(out.path)).parent)
        elif out.staging:
            dirs.append(find_project(pipeline.path).staging_dir)
    dirs.extend(Path(d) for d in extra)
    return normalise_dirs(dirs)
