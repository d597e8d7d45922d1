"""Where outputs may write: an output never deletes or overwrites what the pipeline does not own.

An output file replaces what is at its path. So the path must not be:

- a folder (``path: ../data`` would replace the folder and every file in it), unless it is a
  folder of part files that a Dockyard Spark run wrote, recognised by the :data:`MARKER` file
  that run leaves in it;
- reached through a symbolic link that leads out of the project (``out/s.csv ->
  /elsewhere/victim.txt`` would overwrite the link's target);
- a file the pipeline reads (a source, a file a source's glob matches, a catalog entry's file),
  the pipeline file itself, anything inside the warehouse, which only Dockyard writes, or the
  catalog folder; nor a file named as code or configuration (:data:`CODE_SUFFIXES`);
- the file another output of the same pipeline writes.

:func:`output_problems` checks a pipeline when it is planned (``dockyard validate``, ``dockyard
run``, the app), each problem naming the output. The engines check the target again just before
they replace it (:func:`refuse_unsafe_target`): a run from the run cache is not planned, and
the disk may have changed since the plan. This module imports only the standard library and
Dockyard's light modules.
"""

from __future__ import annotations

import datetime as dt
import errno
import glob
import json
import os
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from builder import fsio
from builder.errors import Problem
from builder.pipeline.project import find_project

if TYPE_CHECKING:
    from builder.pipeline.model import Pipeline

# The file a Dockyard Spark run leaves in each output folder it writes. Its name starts with
# '_', so Spark's and Hadoop's readers skip it, as they skip '_SUCCESS' (which any Spark job
# writes, so it cannot tell Dockyard's folders from others). It has no extension, so a glob
# over the part files ('out/x.json/*.json') never reads it as data.
MARKER = "_DOCKYARD_OUTPUT"
_GLOB_CHARS = "*?["
# Names of files that hold code or configuration, never an output's data: a query can shape a
# CSV or JSON output into valid YAML or TOML (a pipeline, a catalog entry without its PII
# masking, the app's bind address), so an output may not replace one.
CODE_SUFFIXES = (".yaml", ".yml", ".toml", ".py", ".pyc", ".sh", ".cfg", ".ini", ".env")


class UnsafeTargetError(OSError):
    """Replacing this target would delete or overwrite something Dockyard did not write."""


def is_dockyard_folder(path: Path) -> bool:
    """True for a real folder (not a link) holding the marker of a Dockyard Spark run."""
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def write_marker(folder: Path, engine: str, fmt: str) -> None:
    """Mark ``folder`` (about to become an output) as written by Dockyard."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    fsio.write_text(folder / MARKER, json.dumps({"written_by": "dockyard", "engine": engine,
                                                 "format": fmt, "at": stamp}) + "\n")


def refuse_unsafe_target(target: str | Path) -> None:
    """Raise :class:`UnsafeTargetError` when replacing ``target`` would destroy what Dockyard
    does not own: a folder without the marker, or a path that now leads through a link.

    ``target`` is the real path found when the pipeline was planned; a link made since then (a
    file, or a folder on the way) would redirect the write.
    """
    path = os.path.abspath(target)
    real = os.path.realpath(path)
    if real != path:
        raise UnsafeTargetError(errno.ELOOP, f"'{path}' now leads through a symbolic link to "
                                f"'{real}'; it is not written through it. Remove the link and "
                                "run again")
    if os.path.isdir(path) and not is_dockyard_folder(Path(path)):
        raise UnsafeTargetError(errno.EISDIR, f"'{path}' is a folder that no Dockyard run "
                                f"wrote (it has no '{MARKER}'), so it is not replaced. Point "
                                "the output at a file")


def _inside(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep)
    return path == folder or path.startswith(folder + os.sep)


def _read_files(pipeline: Pipeline, extra_paths: dict[str, list[str]]) -> tuple[
        dict[str, str], list[tuple[str, str]]]:
    """(real path -> source id, [(glob pattern, source id)]) of what the pipeline reads."""
    files: dict[str, str] = {}
    patterns: list[tuple[str, str]] = []
    named = [(sid, [pipeline.resolve(s.path)]) for sid, s in pipeline.sources.items() if s.path]
    for sid, paths in [*named, *extra_paths.items()]:
        for p in paths:
            if not p or "://" in p:
                continue
            if any(c in p for c in _GLOB_CHARS):
                patterns.append((os.path.normpath(p), sid))
                for m in glob.glob(p, recursive=True):
                    files.setdefault(os.path.realpath(m), sid)
            else:
                files.setdefault(os.path.realpath(p), sid)
    return files, patterns


def output_problems(pipeline: Pipeline,
                    source_paths: dict[str, list[str]] | None = None) -> list[Problem]:
    """Every output that would replace what the pipeline does not own (see the module doc).

    ``source_paths``: files read by sources the model alone cannot resolve (catalog entries),
    by source id.
    """
    file = pipeline.file
    problems: list[Problem] = []
    project = find_project(pipeline.path)
    root = str(project.root)
    warehouse = os.path.realpath(project.warehouse)
    catalog = os.path.realpath(project.catalog_dir)
    own = os.path.realpath(pipeline.path) if pipeline.path else None
    reads, patterns = _read_files(pipeline, source_paths or {})
    base = os.path.realpath(pipeline.base_dir)
    written: dict[str, str] = {}  # real path -> output id
    tables: dict[str, str] = {}  # staging table (lower case: DuckDB names ignore case) -> output
    for oid, out in pipeline.outputs.items():
        def add(message: str, line: int | None = out.line) -> None:
            problems.append(Problem(message, file=file, line=line, kind="config"))

        if out.staging is not None:
            # Also checked when a file is loaded; a pipeline built in code or in the app's
            # session is checked here, before anything touches the warehouse. (Imported here:
            # the engines import this module, and a run from the run cache loads no model.)
            from builder.pipeline.model import staging_name_problem

            bad = staging_name_problem(out.staging)
            if bad:
                add(f"output '{oid}': {bad}")
                continue
            key = out.staging.lower()
            if key in tables:
                add(f"output '{oid}' publishes the staging table '{out.staging}', as output "
                    f"'{tables[key]}' does. Give each output its own table.")
            tables.setdefault(key, oid)
            continue
        if not out.path or "://" in out.path:
            continue
        where = f"output '{oid}': '{out.path}'"
        # Lexical first ('..' taken away without following links), then the real path.
        lexical = os.path.normpath(os.path.join(base, out.path))
        real = os.path.realpath(lexical)
        if real != lexical and not _inside(real, root):
            add(f"{where} leads through a symbolic link to '{real}', outside the project "
                f"'{root}'. Outputs are never written through links that leave the project: "
                "write to the real location, or remove the link.")
            continue
        if os.path.isdir(real) and not is_dockyard_folder(Path(real)):
            if Path(out.path).suffix:  # named like a file: a folder someone else left there
                fix = "Move the folder away, or choose another file name"
            else:
                fmt = out.resolved_format or "parquet"
                fix = f"Name a file instead, e.g. '{os.path.join(out.path, f'{oid}.{fmt}')}'"
            add(f"{where} is a folder ('{real}') that no Dockyard Spark run wrote (it has no "
                f"'{MARKER}'): the output would replace it and everything in it. {fix}.")
            continue
        if own is not None and real == own:
            add(f"{where} is this pipeline's own file; the run would overwrite it. Choose "
                "another path.")
        elif Path(real).suffix.lower() in CODE_SUFFIXES or Path(real).name == ".env":
            add(f"{where} names a code or configuration file; outputs are data files (.parquet, "
                ".csv, .json) and never replace one. Choose a data file name.")
        elif _inside(real, catalog):
            add(f"{where} is inside the catalog folder '{catalog}', which describes the "
                "project's data sets; outputs never write there. Choose a path outside it.")
        elif _inside(real, warehouse):
            add(f"{where} is inside the warehouse '{warehouse}', which only Dockyard writes. "
                "Publish a staging table with {staging: NAME} instead, or choose a path "
                "outside it.")
        elif real in reads or any(PurePath(real).match(p) for p, _ in patterns):
            sid = reads.get(real) or next(s for p, s in patterns if PurePath(real).match(p))
            add(f"{where} is a file that source '{sid}' reads; the run would overwrite its own "
                "input. Write the output somewhere else.")
        elif real in written:
            add(f"output '{oid}' writes the same file as output '{written[real]}' ('{real}'). "
                "Give each output its own path.")
        written.setdefault(real, oid)
    return problems
