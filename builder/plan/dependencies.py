"""Dependencies between pipelines through staging tables (running the upstream ones first is
:mod:`builder.runner.upstream`'s).

A pipeline that reads ``{staging: NAME}`` depends on the saved pipeline whose outputs publish
``NAME``. Producers are found by reading ``saved_pipelines/*.yaml`` (not run history), so the
dependency is known before anything has run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import networkx as nx

from builder.errors import GraphError, PipelineError
from builder.pipeline.model import Pipeline, load
from builder.pipeline.project import Project, find_project


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


def _key(pipeline: Pipeline) -> str:
    # An unsaved pipeline (the app's) has no file; it is never anyone's producer.
    return str(pipeline.path.resolve()) if pipeline.path else "(unsaved pipeline)"


def dependency_graph(pipelines: Sequence[Pipeline]) -> nx.DiGraph:
    """Pipeline files (resolved paths as text) with an edge producer -> reader for every staging
    table one reads and another publishes, closed over upstream: a producer found in the
    project's saved pipelines joins the graph even when it was not asked for.

    A pipeline in ``pipelines`` wins over a saved one that publishes the same table."""
    given: dict[str, Pipeline] = {_key(p): p for p in pipelines}
    g: nx.DiGraph = nx.DiGraph()
    published: dict[str, str] = {}
    for key, p in given.items():
        for o in p.outputs.values():
            if o.staging:
                published.setdefault(o.staging, key)
    files_by_project: dict[Path, dict[str, Path]] = {}
    todo: list[tuple[Pipeline, str]] = [(p, k) for k, p in reversed(given.items())]
    seen: set[str] = set()
    while todo:
        p, key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        g.add_node(key)
        project = find_project(p.path)
        if project.pipelines_dir not in files_by_project:
            files_by_project[project.pipelines_dir] = producer_files(project)
        files = files_by_project[project.pipelines_dir]
        for src in p.sources.values():
            if not src.staging:
                continue
            made_by = published.get(src.staging) or (
                str(files[src.staging].resolve()) if src.staging in files else None)
            if made_by is None or made_by == key:
                continue  # published by no pipeline, or reads its own previous output
            g.add_edge(made_by, key)
            todo.append((given.get(made_by) or load(Path(made_by)), made_by))
    return g


def dependency_order(g: nx.DiGraph) -> list[str]:
    """The nodes of ``g`` producers first; a cycle is a one-line :class:`GraphError`."""
    try:
        return list(nx.lexicographical_topological_sort(g))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        names = [Path(a).stem for a, _b in cycle] + [Path(cycle[0][0]).stem]
        raise GraphError("pipelines depend on each other in a cycle through staging tables: "
                         + " -> ".join(names) + ".") from None


def upstream_files(pipeline: Pipeline) -> list[Path]:
    """Saved pipelines that must run before ``pipeline``, in dependency order."""
    me = _key(pipeline)
    return [Path(k) for k in dependency_order(dependency_graph([pipeline])) if k != me]
