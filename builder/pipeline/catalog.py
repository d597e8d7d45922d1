"""The project catalog: one git-friendly YAML file per data set under ``catalog/``.

An entry documents a data set (description, owner, column docs) and carries the data-flow
metadata the runner applies when a pipeline reads it with ``{catalog: NAME}``::

    name: orders
    location: ../saved_pipelines/data/orders.parquet   # relative to this file
    primary_key: [order_id]
    event_time: ordered_at
    dedupe: updated_at          # keep the latest row per primary key by this column
    types: {amount: DOUBLE}     # casts applied on read
    pii: {email: hash}          # hash | redact | null | last4
    pii_access: [finance_audit] # pipelines allowed to ask for raw values
    expectations: [{not_null: [order_id]}, {range: {column: amount, min: 0}}]
    freshness: 2 days           # max age of the newest event_time (a warning when older)
    sample_key: [user_id]       # entity key for key-consistent preview samples

The salt of hashed columns is read from an environment variable (``pii_salt_env``, default
``DOCKYARD_PII_SALT``), never from a file in git.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from builder.errors import PipelineError, Problem, did_you_mean
from builder.pipeline.model import infer_format
from builder.pipeline.project import Project
from builder.pipeline.yamlio import LineDict, loads, read_text_file

MaskMethod = Literal["hash", "redact", "null", "last4"]
SALT_ENV = "DOCKYARD_PII_SALT"


class CatalogEntry(BaseModel):
    """One data set in the catalog."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Name pipelines use: sources: {x: {catalog: NAME}}.")
    location: str = Field(description="File or glob, relative to the catalog file.")
    format: Literal["parquet", "csv", "json"] | None = Field(
        None, description="File format (inferred from the extension when left out).")
    options: dict[str, Any] = Field(default_factory=dict, description="Reader options.")
    description: str | None = Field(None, description="What the data set holds.")
    owner: str | None = Field(None, description="Who answers questions about it.")
    columns: dict[str, str] = Field(default_factory=dict, description="Column docs.")
    primary_key: list[str] = Field(default_factory=list, description="Columns that identify "
                                                                     "a row.")
    event_time: str | None = Field(None, description="When each row happened.")
    dedupe: str | None = Field(None, description="Keep the latest row per primary key by "
                                                 "this column.")
    types: dict[str, str] = Field(default_factory=dict, description="Casts applied on read.")
    pii: dict[str, MaskMethod] = Field(default_factory=dict, description="Masked columns.")
    pii_salt_env: str = Field(SALT_ENV, description="Environment variable holding the salt.")
    pii_access: list[str] = Field(default_factory=list, description="Pipelines that may read "
                                                                    "raw PII columns.")
    expectations: list[dict[str, Any]] = Field(default_factory=list,
                                               description="Checks, as in the expect pattern.")
    freshness: str | None = Field(None, description="Max age of the newest event_time.")
    sample_key: list[str] = Field(default_factory=list, description="Entity key for samples.")

    @field_validator("location")
    @classmethod
    def _openable(cls, v: str) -> str:
        # As a pipeline's source paths (builder.pipeline.model): no file system opens these.
        if not v.strip():
            raise ValueError("the location is empty: give a file or glob, e.g. data/orders.csv")
        if "\0" in v:
            raise ValueError("the location contains a NUL character (\\0), which no file name "
                             "can hold. Remove it")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CatalogEntry:
        if self.dedupe and not self.primary_key:
            raise ValueError("'dedupe' keeps the latest row per primary key: add 'primary_key'")
        if self.freshness and not self.event_time:
            raise ValueError("'freshness' is measured on 'event_time': add 'event_time'")
        return self


@dataclass
class Catalog:
    entries: dict[str, tuple[CatalogEntry, Path]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, name: str) -> tuple[CatalogEntry, Path] | None:
        return self.entries.get(name)

    def suggest(self, name: str) -> str:
        return did_you_mean(name, self.entries)

    def location(self, name: str) -> str:
        entry, file = self.entries[name]
        loc = entry.location
        return loc if "://" in loc else str((file.parent / loc).resolve())

    def format(self, name: str) -> str:
        entry, _file = self.entries[name]
        return entry.format or infer_format(entry.location) or "parquet"


def load_catalog(project: Project) -> Catalog:
    """Every entry of ``catalog/*.yaml`` (cached by file modification times and sizes)."""
    files = sorted(project.catalog_dir.glob("*.yaml")) if project.catalog_dir.is_dir() else []
    return _read_catalog(tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files))


@functools.lru_cache(maxsize=1)
def _read_catalog(identity: tuple[tuple[str, int, int], ...]) -> Catalog:
    """The catalog of these files (path, mtime, size): read again when any of them changes."""
    cat = Catalog()
    for f in (Path(name) for name, _mtime, _size in identity):
        try:
            data = loads(read_text_file(f, "catalog file"), file=str(f))
        except PipelineError as e:  # YAML syntax, a bound exceeded, not a regular file
            first = e.problems[0]
            cat.problems.append(Problem(f"catalog file cannot be read: {first.message}",
                                        file=str(f), line=first.line or 1))
            continue
        except Exception as e:  # noqa: BLE001 - one line, with the file
            cat.problems.append(Problem(f"catalog file cannot be read: {str(e).splitlines()[0]}",
                                        file=str(f), line=1))
            continue
        try:
            entry = CatalogEntry.model_validate(data)
        except ValidationError as e:
            loc = e.errors(include_url=False)[0].get("loc", ())
            line = data.line_of(str(loc[0])) if loc and isinstance(data, LineDict) else 1
            cat.problems.append(Problem(_entry_error(e), file=str(f), line=line or 1))
            continue
        if entry.name in cat.entries:
            other = cat.entries[entry.name][1]
            cat.problems.append(Problem(f"catalog entry '{entry.name}' is also defined in "
                                        f"'{other.name}'; names must be unique.", file=str(f),
                                        line=data.line_of("name") or 1))
            continue
        cat.entries[entry.name] = (entry, f)
    return cat


def _entry_error(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    if err.get("type") == "extra_forbidden":
        key = str(err["loc"][-1])
        return f"unknown key '{loc}' in catalog entry." + (
            did_you_mean(key, CatalogEntry.model_fields) or
            " Valid keys: " + ", ".join(CatalogEntry.model_fields) + ".")
    if err.get("type") == "missing":
        return f"catalog entry needs '{loc}'."
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return (f"'{loc}': " if loc else "") + msg.rstrip(".") + "."
