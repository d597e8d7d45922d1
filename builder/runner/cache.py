"""The run cache: ``dockyard run`` of an unchanged pipeline skips planning.

Planning (reading the file, validating it, typing every step, rendering SQL) costs 0.6-0.9 s of
a run, most of it importing sqlglot, networkx and pydantic. A successful plan's rendered run
(``RunSpec``: each node's SQL, its checks, the outputs) is stored in ``<warehouse>/cache/``, one
file per pipeline, like dbt's partial parsing and SQLMesh's cache. The next run uses it only if
everything planning read is unchanged:

- the pipeline file, byte for byte;
- Dockyard's own code, and the installed duckdb, sqlglot, pydantic, networkx and PyYAML (the
  size and modification time of each file);
- every source. A Parquet source may hold new data (tomorrow's file) as long as its columns and
  types are the same (DuckDB reads only the file footer). A CSV or JSON source must be the
  very same files (size and modification time): planning also sniffs their rows for ragged
  lines, so changed ones are planned again.

Never cached: runs with ``--set`` or ``{env: ...}`` params (their values, often secrets, would
end up in the SQL on disk), pipelines reading catalog entries, staging tables or remote files,
and pipelines writing staging tables (those depend on the catalog and warehouse). Anything
unreadable in the cache counts as a miss: the pipeline is simply planned again.

This module imports only the standard library, duckdb and Dockyard's light modules.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from builder import fsio
from builder.pipeline.project import find_project
from builder.plan.runspec import RunSpec
from builder.plan.sandbox import describe, file_identity, sandbox_dirs_for_paths

if TYPE_CHECKING:
    from builder.pipeline.model import Pipeline
    from builder.plan.compiler import Plan

FORMAT = 1
# Libraries whose behaviour decides what a plan contains.
LIBRARIES = ("duckdb", "sqlglot", "pydantic", "pydantic_core", "networkx", "yaml")


def entry_path(file: str | Path) -> Path:
    """Where the cache entry of a pipeline file lives."""
    path = Path(file).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return find_project(path).warehouse / "cache" / f"run-{path.stem}-{digest}.json"


def code_fingerprint() -> str:
    """Changes when Dockyard's code or one of the libraries planning uses changes."""
    h = hashlib.sha256(f"{FORMAT} {sys.version} {duckdb.__version__}".encode())
    for package in ("builder", "patterns"):
        spec = importlib.util.find_spec(package)  # finds without importing
        for root in (spec.submodule_search_locations or []) if spec else []:
            for f in sorted(Path(root).rglob("*.py")):
                st = f.stat()
                h.update(f"{f.relative_to(root)} {st.st_size} {st.st_mtime_ns}\n".encode())
    for lib in LIBRARIES:
        spec = importlib.util.find_spec(lib)
        origin = spec.origin if spec else None
        if origin and os.path.exists(origin):
            st = os.stat(origin)
            h.update(f"{lib} {origin} {st.st_size} {st.st_mtime_ns}\n".encode())
        else:
            h.update(f"{lib} missing\n".encode())
    return h.hexdigest()


def _file_digest(file: str | Path) -> str:
    return hashlib.sha256(Path(file).read_bytes()).hexdigest()


def why_not_cached(pipeline: Pipeline, sets: list[str]) -> str | None:
    """The reason this run cannot be stored, or None when it can."""
    # Not at module level: a run from the cache (lookup) never loads the model and PyYAML.
    from builder.pipeline.model import is_env_ref

    if sets:
        return "--set values are never stored"
    if any(is_env_ref(v) for v in pipeline.params.values()):
        return "{env: ...} params are never stored"
    for src in pipeline.sources.values():
        if not src.path or "://" in src.path:
            return f"source '{src.id}' is not a local file"
    return None


def store(file: str | Path, pipeline: Pipeline, plan: Plan, spec: RunSpec,
          sets: list[str]) -> bool:
    """Remember a valid plan's run; False when this pipeline or run is never cached."""
    if plan.errors or not spec.cacheable or why_not_cached(pipeline, sets):
        return False
    sources = []
    for sid, src in pipeline.sources.items():
        assert src.path is not None
        resolved = pipeline.resolve(src.path)
        sp = plan.sources[sid]
        if sp.read is None or sp.columns is None:
            return False
        sources.append({
            "id": sid, "format": src.resolved_format or "parquet",
            "identity": [list(i) for i in file_identity(resolved)],
            "path": resolved, "describe": sp.read.sql(dialect="duckdb"),
            "schema": [[c.name, c.type] for c in sp.columns]})
    entry = {"format": FORMAT, "file": _file_digest(file), "code": code_fingerprint(),
             "sources": sources, "spec": spec.to_json()}
    target = entry_path(file)
    try:
        fsio.write_text(target, json.dumps(entry))
    except OSError:
        return False  # a read-only warehouse only costs the next run its planning
    return True


def lookup(file: str | Path, sets: list[str]) -> RunSpec | None:
    """The stored run of this pipeline if nothing it was planned from has changed."""
    if sets:
        return None
    try:
        entry = json.loads(entry_path(file).read_text(encoding="utf-8"))
        if entry.get("format") != FORMAT or entry["file"] != _file_digest(file) or \
                entry["code"] != code_fingerprint():
            return None
        if not all(_source_unchanged(s) for s in entry["sources"]):
            return None
        return RunSpec.from_json(entry["spec"])
    except (OSError, ValueError, KeyError, TypeError, duckdb.Error):
        return None


def _source_unchanged(src: dict[str, Any]) -> bool:
    identity = [list(i) for i in file_identity(src["path"])]
    if identity == src["identity"]:
        return True
    if src["format"] != "parquet" or not identity or any(size == 0 for _, size, _ in identity):
        return False
    schema = describe(src["describe"], sandbox_dirs_for_paths([src["path"]]))
    return [list(c) for c in schema] == src["schema"]
