"""The pipeline file (version 1) as pydantic models: every key, its type and its rules.

:mod:`builder.pipeline.model` validates each part of a parsed file with these models and builds
its :class:`~builder.pipeline.model.Pipeline` from the result. A model states the shape (known
keys, text vs list vs mapping, allowed values) in its fields and the rules between keys (a
source has exactly one of path/catalog/staging/postgres, ...) in :meth:`_FileSpec.rules`, which
returns every problem rather than the first, so a file's problems are reported together.

pydantic's errors are translated into Dockyard's one-line messages by :func:`check`, which
also names the key each message is about (the caller turns it into ``file.yaml:LINE``):

>>> spec, problems = check(OutputSpec, {"path": "out/a.parquet", "mod": "append"}, "output 'a'")
>>> problems
[("unknown key 'mod' in output 'a'. Did you mean 'mode'?", 'mod')]
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr, ValidationError

from builder.errors import did_you_mean
from builder.pipeline.postgres_spec import spec_problems

VERSION = 1
FORMATS = ("parquet", "csv", "json")
OUTPUT_MODES = ("replace", "append", "merge")
HISTORIES = ("scd2",)
_EXT_FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".json": "json", ".jsonl": "json", ".ndjson": "json",
}
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A staging table is the file <warehouse>/staging/NAME.parquet and a view NAME in the warehouse
# database: a name is a file name and an identifier, so no '/', '.' or '..' can leave the folder.
STAGING_RE = re.compile(r"^[A-Za-z0-9_]+$")
# Names of what the warehouse holds itself (its folders, its database's tables): a staging
# table of one of these names would stand for them in the warehouse database or next to them.
RESERVED_STAGING = ("runs", "staging_tables", "staging", "locks", "cache", "dockyard")
# Staging table names become identifiers in other databases and file names in the warehouse:
# PostgreSQL cuts identifiers at 63 bytes, the strictest of the common databases.
MAX_STAGING_NAME = 63


def infer_format(path: str) -> str | None:
    """File format from the extension (``.csv.gz`` counts as csv), or None."""
    name = path.lower()
    for comp in (".gz", ".zst", ".bz2"):
        if name.endswith(comp):
            name = name[: -len(comp)]
    return _EXT_FORMATS.get(Path(name).suffix)


def is_env_ref(value: Any) -> bool:
    """True for a ``{env: NAME}`` param value (a reference to an environment variable)."""
    return isinstance(value, dict) and list(value) == ["env"] and isinstance(value["env"], str) \
        and bool(value["env"])


def valid(values: tuple[str, ...] | list[str]) -> str:
    return " Valid values: " + ", ".join(values) + "."


def staging_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a staging table name, or None when it can."""
    if not STAGING_RE.match(name):
        return (f"staging table name '{name}' is not valid: use letters, digits and '_' only "
                "(it names a file in the warehouse).")
    if name.lower() in RESERVED_STAGING:
        return (f"staging table name '{name}' is reserved for the warehouse's own data. "
                "Reserved: " + ", ".join(RESERVED_STAGING) + ".")
    return None


def type_name(v: Any) -> str:
    """How a message names the YAML type of ``v`` ("a number", "a list", ...)."""
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, dt.date):
        return "a date"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return "text"


def _one_is_a_list(value: Any) -> Any:
    """``primary_key: id`` means ``[id]``: one name may be written without brackets."""
    return [value] if isinstance(value, str) else value


# A list of names; one name may stand alone.
Names = Annotated[list[StrictStr], BeforeValidator(_one_is_a_list)]
Problems = list[tuple[str, "str | None"]]  # (message, the key it is about; None: the whole part)


class _FileSpec(BaseModel):
    """A part of the file: unknown keys are errors, text stays text (no coercion of 5 to '5').

    ``MESSAGES`` words a wrong type per key (``{where}``: "source 'orders'", ``{got}``: "a
    number"); a key without one gets "'KEY' in WHERE must be text, got ...".
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    MESSAGES: ClassVar[dict[str, str]] = {}

    def rules(self, where: str, raw: dict[str, Any]) -> Problems:
        """Problems between keys, on a part whose keys each have the right type. ``raw`` is
        the part as written (keys whose value was refused are missing from ``self``)."""
        return []


class IncrementalSpec(_FileSpec):
    """``incremental: {by: updated_at, lookback: 2 hours}`` of a catalog source."""

    model_config = ConfigDict(extra="forbid", strict=False)
    by: Any = None
    lookback: Any = None


class SourceSpec(_FileSpec):
    """A source: a file (or glob), a catalog entry, a staging table or a PostgreSQL table."""

    description: StrictStr | None = None
    path: StrictStr | None = None
    format: StrictStr | None = None
    options: dict[str, Any] | None = None
    catalog: StrictStr | None = None
    staging: StrictStr | None = None
    postgres: Any = None  # checked by builder.pipeline.postgres_spec (shared with the app)
    sample_key: Names | None = None
    pii_access: Names | None = None
    incremental: IncrementalSpec | None = None

    MESSAGES: ClassVar[dict[str, str]] = {
        "options": "'options' in {where} must be a mapping of reader options.",
        "sample_key": "'sample_key' in {where} must be a list of names.",
        "pii_access": "'pii_access' in {where} must be a list of names.",
        "incremental": "{where}: 'incremental' must be a mapping like {{by: updated_at, "
                       "lookback: 2 hours}}.",
    }

    @property
    def resolved_format(self) -> str | None:
        return self.format or (infer_format(self.path) if self.path else None)

    def rules(self, where: str, raw: dict[str, Any]) -> Problems:
        out = _place_problems(self.path, self.staging, where)
        if self.incremental is not None and raw.get("catalog") is None:
            out.append((f"{where}: 'incremental' reads a catalog entry by its event_time: use "
                        "it on a {catalog: NAME} source.", "incremental"))
        if raw.get("postgres") is not None:
            out += [(m, "postgres") for m in spec_problems(raw["postgres"], where, output=False)]
        kinds = [k for k in ("path", "catalog", "staging", "postgres") if raw.get(k) is not None]
        if len(kinds) != 1:
            out.append((f"{where} needs exactly one of 'path', 'catalog', 'staging' or "
                        "'postgres'" + (f" (got {', '.join(kinds)})." if kinds else "."), None))
        if self.staging is not None and (bad := staging_name_problem(self.staging)):
            out.append((f"{where}: {bad}", "staging"))
        if self.format is not None and self.format not in FORMATS:
            out.append((f"{where}: format '{self.format}' is not supported." + valid(FORMATS),
                        "format"))
        elif self.path and not self.resolved_format:
            out.append((f"{where}: cannot tell the format of '{self.path}' from its extension. "
                        "Add 'format: csv', 'parquet' or 'json'.", "path"))
        return out


class StepSpec(_FileSpec):
    """A step: a pattern with params, or the user's own SQL."""

    id: StrictStr | None = None
    description: StrictStr | None = None
    pattern: StrictStr | None = None
    inputs: Names | None = None
    params: dict[str, Any] | None = None
    sql: StrictStr | None = None

    MESSAGES: ClassVar[dict[str, str]] = {
        "sql": "{where}: 'sql' must be text (use 'sql: |' for several lines).",
        "params": "{where}: 'params' must be a mapping of name: value.",
        "inputs": "{where}: 'inputs' must be a list of source or step ids.",
    }

    def rules(self, where: str, raw: dict[str, Any]) -> Problems:
        out: Problems = []
        pattern, sql = raw.get("pattern"), raw.get("sql")
        if (pattern is None) == (sql is None):
            out.append((f"{where} needs either 'pattern' (with 'params') or 'sql', not "
                        + ("both." if pattern is not None else "neither."), None))
        if sql is not None and self.params:
            out.append((f"{where}: 'params' belong to pattern steps; a SQL step uses "
                        "{{ name }} for pipeline params.", "params"))
        return out


class OutputSpec(_FileSpec):
    """Where a step's result goes: a file, a warehouse (staging) table or a PostgreSQL table."""

    description: StrictStr | None = None
    path: StrictStr | None = None
    format: StrictStr | None = None
    staging: StrictStr | None = None
    postgres: Any = None  # checked by builder.pipeline.postgres_spec (shared with the app)
    mode: StrictStr | None = None
    primary_key: Names | None = None
    history: StrictStr | None = None
    owner: StrictStr | None = None
    columns: dict[Any, Any] | None = None

    MESSAGES: ClassVar[dict[str, str]] = {
        "primary_key": "'primary_key' in {where} must be a list of names.",
        "columns": "'columns' in {where} must map column names to descriptions.",
    }

    @property
    def resolved_format(self) -> str | None:
        return self.format or (infer_format(self.path) if self.path else None)

    def rules(self, where: str, raw: dict[str, Any]) -> Problems:
        out = _place_problems(self.path, self.staging, where)
        if raw.get("postgres") is not None:
            out += [(m, "postgres") for m in spec_problems(raw["postgres"], where, output=True)]
            moved = [k for k in ("mode", "primary_key", "history") if k in raw]
            if moved:
                out.append((f"{where}: '{moved[0]}' of a postgres output goes inside "
                            "'postgres:' (history is not supported there).", moved[0]))
        kinds = [k for k in ("path", "staging", "postgres") if raw.get(k) is not None]
        if len(kinds) != 1:
            out.append((f"{where} needs exactly one of 'path' (a file), 'staging' (a warehouse "
                        "table) or 'postgres' (a PostgreSQL table).", None))
        if self.path and self.resolved_format not in FORMATS:
            out.append((f"{where}: cannot tell the format of '{self.path}'. Use a .parquet, "
                        ".csv or .json name, or add 'format:'.", "path"))
        if self.staging is not None and (bad := staging_name_problem(self.staging)):
            out.append((f"{where}: {bad}", "staging"))
        mode = self.mode or "replace"
        if mode not in OUTPUT_MODES:
            out.append((f"{where}: mode '{mode}' is not supported." + valid(OUTPUT_MODES),
                        "mode"))
        if self.history not in (None, *HISTORIES):
            out.append((f"{where}: history '{self.history}' is not supported."
                        + valid(HISTORIES), "history"))
        return out


class PipelineSpec(_FileSpec):
    """The file's top level. Sources, steps and outputs are each checked with their own model
    (so each problem gets its part's line and name); here they only have to be a mapping or a
    list."""

    version: Any = VERSION
    name: Any = None
    description: StrictStr | None = None
    params: dict[str, Any] | None = None
    sources: dict[Any, Any] | None = None
    steps: list[Any] | None = None
    outputs: dict[Any, Any] | None = None

    MESSAGES: ClassVar[dict[str, str]] = {
        "params": "'params' must be a mapping of name: value.",
        "sources": "'sources' must be a mapping of id: {{path: ...}}.",
        "steps": "'steps' must be a list of steps (each starting with '- id: ...').",
        "outputs": "'outputs' must be a mapping of step_id: {{path: ...}}.",
    }

    def rules(self, where: str, raw: dict[str, Any]) -> Problems:
        out: Problems = []
        if self.version != VERSION:
            out.append((f"'version' is {self.version!r}; this Dockyard reads version "
                        f"{VERSION}.", "version"))
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            out.append(("'name' must be a non-empty string.", "name"))
        for k, v in (self.params or {}).items():
            if not ID_RE.match(str(k)):
                out.append((f"param '{k}': names are letters, digits and '_'.", f"params.{k}"))
            if not is_env_ref(v) and isinstance(v, (dict, list)):
                out.append((f"param '{k}': a param value must be a single value (text, number, "
                            "date) or {env: VARIABLE_NAME}.", f"params.{k}"))
        return out


def _place_problems(path: str | None, staging: str | None, where: str) -> Problems:
    """A path no file system can open, or a staging name too long to be a table name."""
    out: Problems = []
    if path is not None and not path.strip():
        out.append((f"'path' in {where} is empty: give a file path, e.g. data/orders.csv.",
                    "path"))
    elif path is not None and "\0" in path:
        out.append((f"'path' in {where} contains a NUL character (\\0), which no file name can "
                    "hold. Remove it.", "path"))
    if staging is not None and len(staging) > MAX_STAGING_NAME:
        out.append((f"staging table name '{staging[:20]}...' in {where} has {len(staging)} "
                    f"characters; the limit is {MAX_STAGING_NAME} (PostgreSQL's, the strictest "
                    "of common databases). Choose a shorter name.", "staging"))
    return out


# Every key of the v1 file by section, in canonical order (new keys are written in this order):
# the models' fields. The app edits each of them (a test walks this table).
PIPELINE_KEYS = tuple(PipelineSpec.model_fields)
SOURCE_KEYS = tuple(SourceSpec.model_fields)
INCREMENTAL_KEYS = tuple(IncrementalSpec.model_fields)
STEP_KEYS = tuple(StepSpec.model_fields)
OUTPUT_KEYS = tuple(OutputSpec.model_fields)

S = TypeVar("S", bound=_FileSpec)


def check(model: type[S], data: dict[str, Any], where: str) -> tuple[S, Problems]:
    """Validate one part of the file: the model (keys refused by pydantic left out, so the
    rules between keys still run on the rest) and every problem, in Dockyard's words, each
    with the key it is about."""
    problems: Problems = []
    refused: set[str] = set()
    try:
        return _checked(model.model_validate(data), where, data, problems)
    except ValidationError as e:
        for key, message in _messages(model, e, where):
            if key not in refused:
                refused.add(key)
                problems.append((message, key))
    kept = {k: v for k, v in data.items() if k not in refused}
    return _checked(model.model_validate(kept), where, data, problems)


def _checked(spec: S, where: str, raw: dict[str, Any], problems: Problems) -> tuple[S, Problems]:
    return spec, problems + spec.rules(where, raw)


def _messages(model: type[_FileSpec], e: ValidationError, where: str) -> list[tuple[str, str]]:
    """(key, message) per pydantic error: unknown keys first (as a reader scans the part),
    then wrong values in the order of the model's fields."""
    fields = list(model.model_fields)
    out: list[tuple[int, str, str]] = []
    for err in e.errors(include_url=False):
        loc = err.get("loc", ())
        key = str(loc[0]) if loc else ""
        if err.get("type") == "extra_forbidden" and len(loc) == 1:
            out.append((-1, key, f"unknown key '{key}' in {where}." + (
                did_you_mean(key, fields) or " Allowed keys: " + ", ".join(fields) + ".")))
            continue
        sub = model.model_fields[key].annotation if key in model.model_fields else None
        if err.get("type") == "extra_forbidden" and sub is not None and len(loc) == 2:
            inner = _inner_keys(key)
            out.append((fields.index(key), key, f"{where}: unknown key '{loc[1]}' in '{key}'."
                        + (did_you_mean(str(loc[1]), inner) or valid(inner))))
            continue
        template = model.MESSAGES.get(key, "'{key}' in {where} must be text, got {got}.")
        got = type_name(err.get("input"))
        out.append((fields.index(key) if key in fields else len(fields), key,
                    template.format(key=key, where=where, got=got)))
    out.sort(key=lambda t: t[0])
    return [(key, message) for _, key, message in out]


def _inner_keys(key: str) -> tuple[str, ...]:
    return INCREMENTAL_KEYS if key == "incremental" else ()
