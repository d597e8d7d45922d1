"""Browsing the catalog: entries and staging tables, their docs, sample rows and freshness.

The CLI (``dockyard catalog``) and the app's Catalog page both call these functions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from builder.errors import ConfigError, did_you_mean
from builder.pipeline.model import Pipeline, Source
from builder.pipeline.project import Project

if TYPE_CHECKING:
    import pandas as pd


def entries(project: Project) -> list[dict[str, Any]]:
    """Catalog entries and staging tables, as the catalog list shows them."""
    from builder.pipeline.catalog import load_catalog
    from builder.warehouse.store import staging_tables

    cat = load_catalog(project)
    rows: list[dict[str, Any]] = []
    for name, (entry, file) in sorted(cat.entries.items()):
        rows.append({"name": name, "kind": "catalog", "owner": entry.owner,
                     "description": entry.description, "file": str(file),
                     "columns": " ".join(entry.columns)})
    for t in staging_tables(project):
        rows.append({"name": t["name"], "kind": "staging", "owner": t["owner"],
                     "description": t["description"], "rows": t["row_count"],
                     "producer": f"{t['pipeline']}.{t['step']}",
                     "last_success": str(t["last_success"]),
                     "columns": " ".join(t["columns"])})
    return rows


def describe(project: Project, name: str) -> dict[str, Any]:
    """Everything known about one entry or staging table."""
    from builder.pipeline.catalog import load_catalog
    from builder.warehouse.store import staging_info

    cat = load_catalog(project)
    found = cat.get(name)
    if found is not None:
        entry, file = found
        info = entry.model_dump(exclude_defaults=True)
        info.update(kind="catalog", file=str(file), location=cat.location(name))
        return info
    staged = staging_info(project, name)
    if staged is not None:
        return {"kind": "staging", **staged}
    from builder.plan.dependencies import producers

    made_by = producers(project).get(name)
    if made_by:
        raise ConfigError(f"staging table '{name}' has not been published yet: run "
                          f"'{made_by}' first.")
    from builder.warehouse.store import staging_tables

    known = list(cat.entries) + [t["name"] for t in staging_tables(project)]
    raise ConfigError(f"no catalog entry or staging table named '{name}'."
                      + (did_you_mean(name, known) or ""))


def table_pipeline(project: Project, kind: str, name: str) -> Pipeline:
    """A one-source pipeline reading a catalog entry or staging table (for previews and for
    'new pipeline from this table')."""
    sid = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "table"
    src = Source(id=sid, catalog=name if kind == "catalog" else None,
                 staging=name if kind == "staging" else None)
    return Pipeline(name=f"from_{sid}", sources={sid: src},
                    path=project.pipelines_dir / f"from_{sid}.yaml")


def lineage_dot(kind: str, name: str, info: dict[str, Any], consumers: list[str]) -> str:
    """Graphviz DOT of a table's neighbours: the pipeline producing it (a staging table), what
    that pipeline reads, and the pipelines reading the table (``consumers``, by name).

    Every name is quoted (:func:`builder.plan.dot.quote`): pipeline names are free text.
    """
    from builder.plan.dot import quote

    lines = ["digraph {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    me = quote(f"{kind}:{name}")
    if kind == "staging":
        made_by = quote(f"pipeline {info['pipeline']}")
        lines.append(f"  {made_by} [shape=ellipse];")
        lines.append(f"  {made_by} -> {me};")
        for up in info.get("upstream", []):
            label = up["name"] if up["kind"] != "file" else up["name"].rsplit("/", 1)[-1]
            lines.append(f"  {quote(str(up['kind']) + ':' + str(label))} -> {made_by};")
    for c in consumers:
        lines.append(f"  {me} -> {quote('pipeline ' + c)};")
    lines.append("}")
    return "\n".join(lines)


def sample_rows(project: Project, kind: str, name: str, limit: int = 20) -> pd.DataFrame:
    """The first rows as a pipeline reads them (catalog logic applied)."""
    from builder.engines.preview import Previewer
    from builder.plan.compiler import plan

    p = plan(table_pipeline(project, kind, name))
    p.raise_for_errors()
    with Previewer() as pv:
        return pv.preview(p, next(iter(p.sources)), limit=limit).rows


def freshness(project: Project, name: str) -> dict[str, Any] | None:
    """Newest event_time of a catalog entry, its age and whether it meets 'freshness'."""
    from builder.engines.preview import Previewer
    from builder.pipeline.catalog import load_catalog
    from builder.plan.compiler import plan
    from patterns._interval import UNIT_SECONDS, parse_interval

    found = load_catalog(project).get(name)
    if found is None or not found[0].event_time:
        return None
    entry = found[0]
    p = plan(table_pipeline(project, "catalog", name))
    p.raise_for_errors()
    with Previewer() as pv:
        table = pv.ensure(p, next(iter(p.sources)))
        con = pv._connection(p)
        newest_sql = exp.select(exp.func("max", exp.column(entry.event_time or "", quoted=True))
                                ).from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
        newest = con.execute(newest_sql.sql("duckdb")).fetchall()[0][0]
    info: dict[str, Any] = {"event_time": entry.event_time, "newest": newest,
                            "freshness": entry.freshness}
    if isinstance(newest, dt.datetime | dt.date):
        stamp = newest if isinstance(newest, dt.datetime) else dt.datetime.combine(
            newest, dt.time())
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        age = dt.datetime.now(dt.timezone.utc) - stamp
        info["age_hours"] = round(age.total_seconds() / 3600, 1)
        if entry.freshness:
            n, unit = parse_interval(entry.freshness, "freshness")
            limit = n * UNIT_SECONDS.get(unit, 30 * 86400)
            info["fresh"] = age.total_seconds() <= limit
    return info


def new_pipeline_from(project: Project, kind: str, name: str) -> Path:
    """Path of a new pipeline file name for 'start a pipeline from this table'."""
    base = project.pipelines_dir / f"from_{name}.yaml"
    n = 2
    while base.exists():
        base = project.pipelines_dir / f"from_{name}_{n}.yaml"
        n += 1
    return base
