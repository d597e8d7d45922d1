"""Dependencies between pipelines through staging tables, and running upstream pipelines first.

A pipeline that reads ``{staging: NAME}`` depends on the saved pipeline whose outputs publish
``NAME``. Producers are found by reading ``saved_pipelines/*.yaml`` (not run history), so the
dependency is known before anything has run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import networkx as nx

from builder.errors import ExecutionError, GraphError, PipelineError
from builder.model import Pipeline, load
from builder.project import Project, find_project


def publisher_files(project: Project) -> dict[str, list[Path]]:
    """Staging table name -> every saved pipeline file that publishes it (in name order)."""
    out: dict[str, list[Path]] = {}
    folder = project.pipelines_dir
    for f in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            p = load(f)
        except PipelineError:
            continue  # a broken file publishes nothing; 'dockyard validate' reports it
        for name in dict.fromkeys(o.staging for o in p.outputs.values() if o.staging):
            out.setdefault(name, []).append(f)
    return out


def producer_files(project: Project) -> dict[str, Path]:
    """Staging table name -> the saved pipeline file that publishes it (the first by name)."""
    return {name: files[0] for name, files in publisher_files(project).items()}


def other_publishers(pipeline: Pipeline) -> dict[str, list[Path]]:
    """Staging tables ``pipeline`` publishes that other saved pipelines publish too -> their
    files. Their writes to one table wait for each other, but a replace by one drops the rows
    of the other, so two publishers are usually a mistake (``dockyard validate`` warns)."""
    mine = {o.staging for o in pipeline.outputs.values() if o.staging}
    if not mine:
        return {}
    me = Path(pipeline.path).resolve() if pipeline.path else None
    shared = {}
    for name, files in publisher_files(find_project(pipeline.path)).items():
        others = [f for f in files if f.resolve() != me]
        if name in mine and others:
            shared[name] = others
    return shared


def readers(project: Project, kind: str, name: str) -> list[str]:
    """Names of the saved pipelines that read catalog entry or staging table ``name``."""
    out = []
    folder = project.pipelines_dir
    for f in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            p = load(f)
        except PipelineError:
            continue
        if any((s.catalog if kind == "catalog" else s.staging) == name
               for s in p.sources.values()):
            out.append(p.name)
    return out


def producers(project: Project) -> dict[str, str]:
    """Staging table name -> name of the pipeline that publishes it."""
    return {name: f.stem for name, f in producer_files(project).items()}


def upstream_files(pipeline: Pipeline) -> list[Path]:
    """Saved pipelines that must run before ``pipeline``, in dependency order."""
    project = find_project(pipeline.path)
    files = producer_files(project)
    g: nx.DiGraph = nx.DiGraph()
    todo: list[tuple[Pipeline, str]] = [(pipeline, str(pipeline.path))]
    seen: set[str] = set()
    while todo:
        p, key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        g.add_node(key)
        for src in p.sources.values():
            if src.staging and src.staging in files:
                f = files[src.staging]
                if str(f) == key:
                    continue  # reads its own previous output (incremental): no dependency
                g.add_edge(str(f), key)
                todo.append((load(f), str(f)))
    try:
        order = list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        names = [Path(a).stem for a, _b in cycle] + [Path(cycle[0][0]).stem]
        raise GraphError("pipelines depend on each other in a cycle through staging tables: "
                         + " -> ".join(names) + ".") from None
    return [Path(k) for k in order if k != str(pipeline.path)]


def run_upstream(pipeline: Pipeline, engine: str = "duckdb", out: TextIO | None = None) -> None:
    """Run every upstream pipeline (dependency order) before ``pipeline``."""
    from builder import api

    for f in upstream_files(pipeline):
        if out is not None:
            print(f"upstream: running {f}", file=out, flush=True)
        try:
            api.run(load(f), engine=engine)
        except PipelineError as e:
            raise ExecutionError(f"upstream pipeline '{f.name}' failed: "
                                 f"{e.problems[0].message if e.problems else e}") from None
