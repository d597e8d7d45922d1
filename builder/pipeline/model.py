"""The pipeline model: the one source of truth for a pipeline, whether it came from a YAML file,
the app's session state or a test.

``load(path)`` reads pipeline file version 1 into :class:`Pipeline`; ``dump(pipeline)`` writes it
back in the same key order it was read in, so saving an unchanged pipeline changes nothing.
Shape checks (unknown keys, wrong types, duplicate ids) happen here and are collected together;
graph, pattern and SQL checks are in :mod:`builder.validate`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.errors import ConfigError, ProblemCollector, did_you_mean
from builder.pipeline.postgres_spec import spec_problems
from builder.pipeline.yamlio import (
    BlockDict,
    LineDict,
    atomic_write_text,
    dumps,
    loads,
    read_text_file,
)

VERSION = 1
FORMATS = ("parquet", "csv", "json")
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

# Allowed keys per section, in canonical order (new keys are written in this order).
PIPELINE_KEYS = ("version", "name", "description", "params", "sources", "steps", "outputs")
SOURCE_KEYS = ("description", "path", "format", "options", "catalog", "staging", "postgres",
               "sample_key", "pii_access", "incremental")
INCREMENTAL_KEYS = ("by", "lookback")
STEP_KEYS = ("id", "description", "pattern", "inputs", "params", "sql")
OUTPUT_KEYS = ("description", "path", "format", "staging", "postgres", "mode", "primary_key",
               "history", "owner", "columns")
# Every key of the v1 file by section: the app edits each of them (a test walks this table
# and the dataclasses below, so a new key cannot be added without its place in the app).
V1_KEYS: dict[str, tuple[str, ...]] = {"pipeline": PIPELINE_KEYS, "source": SOURCE_KEYS,
                                       "step": STEP_KEYS, "output": OUTPUT_KEYS}


def is_env_ref(value: Any) -> bool:
    """True for a ``{env: NAME}`` param value (a reference to an environment variable)."""
    return isinstance(value, dict) and list(value) == ["env"] and isinstance(value["env"], str) \
        and bool(value["env"])


def infer_format(path: str) -> str | None:
    """File format from the extension (``.csv.gz`` counts as csv), or None."""
    name = path.lower()
    for comp in (".gz", ".zst", ".bz2"):
        if name.endswith(comp):
            name = name[: -len(comp)]
    return _EXT_FORMATS.get(Path(name).suffix)


@dataclass
class Source:
    """A named input: a file (or glob), a catalog entry, a staging table or a PostgreSQL table."""

    id: str
    path: str | None = None
    format: str | None = None
    description: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    catalog: str | None = None
    staging: str | None = None
    postgres: dict[str, Any] | None = None  # {dsn: {env: NAME}, table: ... | query: ...}
    sample_key: list[str] = field(default_factory=list)
    pii_access: list[str] = field(default_factory=list)
    # {by: column, lookback: '2 hours'}: read only rows newer than the last successful run's
    # watermark minus the lookback (see builder.plan.incremental).
    incremental: dict[str, str] | None = None
    line: int | None = field(default=None, compare=False, repr=False)
    key_order: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def resolved_format(self) -> str | None:
        return self.format or (infer_format(self.path) if self.path else None)


@dataclass
class Step:
    """A step: a pattern with params, or the user's own SQL."""

    id: str
    pattern: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    sql: str | None = None
    inputs: list[str] | None = None  # None: inferred from the SQL's tables
    description: str | None = None
    line: int | None = field(default=None, compare=False, repr=False)
    param_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    key_order: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "sql" if self.sql is not None else "pattern"


@dataclass
class Output:
    """Where a step's result goes: a file (``path``), a warehouse table (``staging``) or a
    PostgreSQL table (``postgres``)."""

    step: str
    path: str | None = None
    format: str | None = None
    staging: str | None = None
    postgres: dict[str, Any] | None = None  # {dsn, table, mode, primary_key}
    mode: str = "replace"
    primary_key: list[str] = field(default_factory=list)
    history: str | None = None
    description: str | None = None
    owner: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    line: int | None = field(default=None, compare=False, repr=False)
    key_order: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def resolved_format(self) -> str | None:
        return self.format or (infer_format(self.path) if self.path else None)


@dataclass
class Pipeline:
    """A whole pipeline file. ``path`` is where it was loaded from (paths resolve against it)."""

    name: str
    version: int = VERSION
    description: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, Output] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)
    params_line: int | None = field(default=None, compare=False, repr=False)
    key_order: list[str] = field(default_factory=list, compare=False, repr=False)

    # ---- lookups -------------------------------------------------------------------------
    @property
    def file(self) -> str | None:
        return str(self.path) if self.path else None

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def step_ids(self) -> list[str]:
        return [s.id for s in self.steps]

    def node_ids(self) -> list[str]:
        """Every id a step can read: sources, then steps."""
        return list(self.sources) + self.step_ids()

    def resolve(self, path: str) -> str:
        """A source/output path as the engine should see it (relative to the pipeline file)."""
        if "://" in path or Path(path).is_absolute():
            return path
        return str((self.base_dir / path).resolve()) if not any(c in path for c in "*?[") else \
            str(self.base_dir.resolve() / path)

    def param_values(self) -> tuple[dict[str, Any], list[str]]:
        """Param values with ``{env: NAME}`` references read from the environment.

        Secrets (salts, tokens) stay out of the YAML: the file names the variable, the value
        comes from the environment of the run. Returns (values, messages for unset variables).
        """
        values: dict[str, Any] = {}
        missing: list[str] = []
        for k, v in self.params.items():
            if is_env_ref(v):
                var = str(v["env"])
                if var in os.environ:
                    values[k] = os.environ[var]
                else:
                    values[k] = None
                    missing.append(f"param '{k}' reads the environment variable '{var}', which "
                                   f"is not set. Set it before running (export {var}=...).")
            else:
                values[k] = v
        return values, missing

    def with_params(self, overrides: dict[str, Any]) -> Pipeline:
        """A copy with param values replaced (``--set``); unknown names are errors."""
        import copy

        unknown = [k for k in overrides if k not in self.params]
        if unknown:
            raise ConfigError(
                f"--set '{unknown[0]}': the pipeline has no param '{unknown[0]}'."
                + (did_you_mean(unknown[0], self.params) or
                   f" Declare it under 'params:' in {self.file or 'the pipeline'}."),
                file=self.file)
        new = copy.deepcopy(self)
        new.params.update(overrides)
        return new


# ---- loading -----------------------------------------------------------------------------

def load(path: str | Path) -> Pipeline:
    """Read a pipeline file. Raises :class:`ConfigError` with every shape problem found."""
    p = Path(path)
    return loads_pipeline(read_text_file(p, "pipeline file"), path=p)


def loads_pipeline(text: str, path: Path | None = None) -> Pipeline:
    """Parse pipeline YAML text (``path`` is used for messages and relative paths)."""
    file = str(path) if path else None
    data = loads(text, file=file)
    return from_dict(data, path=path)


def from_dict(data: Any, path: Path | None = None) -> Pipeline:
    """Build a :class:`Pipeline` from parsed YAML, collecting every shape problem."""
    file = str(path) if path else None
    pc = ProblemCollector(file=file)
    if data is None:
        raise ConfigError("the pipeline file is empty. Start from an example in saved_pipelines/.",
                          file=file)
    if not isinstance(data, dict):
        raise ConfigError("a pipeline file must be a mapping with 'version', 'name' and 'steps'.",
                          file=file, line=1)
    d = _as_linedict(data)
    _check_keys(pc, d, PIPELINE_KEYS, "the pipeline")
    version = d.get("version", VERSION)
    if version != VERSION:
        pc.add(f"'version' is {version!r}; this Dockyard reads version {VERSION}.",
               line=d.line_of("version"))
    name = d.get("name")
    if name is None:
        name = path.stem if path else "pipeline"
    elif not isinstance(name, str) or not name.strip():
        pc.add("'name' must be a non-empty string.", line=d.line_of("name"))
        name = str(name)
    description = _opt_str(pc, d, "description", "the pipeline")

    params = d.get("params") or {}
    if not isinstance(params, dict):
        pc.add("'params' must be a mapping of name: value.", line=d.line_of("params"))
        params = {}
    for k, v in params.items():
        if not ID_RE.match(str(k)):
            pc.add(f"param '{k}': names are letters, digits and '_'.", line=_line(params, k))
        if is_env_ref(v):
            continue
        if isinstance(v, (dict, list)):
            pc.add(f"param '{k}': a param value must be a single value (text, number, date) "
                   "or {env: VARIABLE_NAME}.", line=_line(params, k))

    sources = _parse_sources(pc, d)
    steps = _parse_steps(pc, d)
    outputs = _parse_outputs(pc, d)
    seen: dict[str, str] = {}
    for sid in sources:
        seen[sid] = "source"
    for st in steps:
        if st.id in seen:
            pc.add(f"duplicate id '{st.id}': it is already used by a {seen[st.id]}. "
                   "Ids must be unique across sources and steps.", line=st.line, step=st.id,
                   kind="graph")
        seen[st.id] = "step"
    pc.raise_if_errors(ConfigError)
    return Pipeline(
        name=name, version=VERSION, description=description, params=dict(params),
        params_line=d.line_of("params") if isinstance(d, LineDict) else None,
        sources=sources, steps=steps, outputs=outputs, path=path, key_order=list(d.keys()),
    )


def _as_linedict(d: dict) -> LineDict:  # type: ignore[type-arg]
    if isinstance(d, LineDict):
        return d
    ld = LineDict(d)
    ld.key_lines = {}
    return ld


def _line(d: Any, key: str) -> int | None:
    return d.line_of(key) if isinstance(d, LineDict) else None


def _check_keys(pc: ProblemCollector, d: dict, allowed: tuple[str, ...], where: str,  # type: ignore[type-arg]
                step: str | None = None) -> None:
    for key in d:
        if key not in allowed:
            pc.add(f"unknown key '{key}' in {where}." + (did_you_mean(str(key), allowed) or
                   " Allowed keys: " + ", ".join(allowed) + "."),
                   line=_line(d, key), step=step)


def _opt_str(pc: ProblemCollector, d: dict, key: str, where: str,  # type: ignore[type-arg]
             step: str | None = None) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        pc.add(f"'{key}' in {where} must be text, got {_type_name(v)}.", line=_line(d, key),
               step=step)
        return str(v)
    return v


def _str_list(pc: ProblemCollector, d: dict, key: str, where: str,  # type: ignore[type-arg]
              step: str | None = None) -> list[str]:
    v = d.get(key)
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        pc.add(f"'{key}' in {where} must be a list of names.", line=_line(d, key), step=step)
        return []
    return list(v)


def _type_name(v: Any) -> str:
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


def _parse_sources(pc: ProblemCollector, d: LineDict) -> dict[str, Source]:
    raw = d.get("sources") or {}
    if not isinstance(raw, dict):
        pc.add("'sources' must be a mapping of id: {path: ...}.", line=d.line_of("sources"))
        return {}
    out: dict[str, Source] = {}
    for sid, spec in raw.items():
        line = _line(raw, sid)
        where = f"source '{sid}'"
        if not ID_RE.match(str(sid)):
            pc.add(f"source id '{sid}' is not a valid name: use letters, digits and '_', "
                   "not starting with a digit.", line=line)
        if isinstance(spec, str):
            spec = LineDict(path=spec)
            spec.key_lines = {}
        if not isinstance(spec, dict):
            pc.add(f"{where} must be a mapping like {{path: data/file.csv}}.", line=line)
            continue
        spec = _as_linedict(spec)
        _check_keys(pc, spec, SOURCE_KEYS, where)
        src = Source(
            id=str(sid), path=_opt_str(pc, spec, "path", where),
            format=_opt_str(pc, spec, "format", where),
            description=_opt_str(pc, spec, "description", where),
            catalog=_opt_str(pc, spec, "catalog", where),
            staging=_opt_str(pc, spec, "staging", where),
            sample_key=_str_list(pc, spec, "sample_key", where),
            pii_access=_str_list(pc, spec, "pii_access", where),
            incremental=_incremental(pc, spec, where),
            line=line, key_order=list(spec.keys()),
        )
        _check_place(pc, src.path, src.staging, spec, where)
        opts = spec.get("options") or {}
        if not isinstance(opts, dict):
            pc.add(f"'options' in {where} must be a mapping of reader options.",
                   line=spec.line_of("options"))
        else:
            src.options = dict(opts)
        if spec.get("postgres") is not None:
            src.postgres = _plain(spec["postgres"])
            for message in spec_problems(src.postgres, where, output=False):
                pc.add(message, line=spec.line_of("postgres"))
        kinds = [k for k in ("path", "catalog", "staging", "postgres") if spec.get(k) is not None]
        if len(kinds) != 1:
            pc.add(f"{where} needs exactly one of 'path', 'catalog', 'staging' or 'postgres'"
                   + (f" (got {', '.join(kinds)})." if kinds else "."), line=line)
        if src.staging is not None and (bad := staging_name_problem(src.staging)):
            pc.add(f"{where}: {bad}", line=spec.line_of("staging"))
        if src.format is not None and src.format not in FORMATS:
            pc.add(f"{where}: format '{src.format}' is not supported." + valid(FORMATS),
                   line=spec.line_of("format"))
        elif src.path and not src.resolved_format:
            pc.add(f"{where}: cannot tell the format of '{src.path}' from its extension. "
                   "Add 'format: csv', 'parquet' or 'json'.", line=spec.line_of("path"))
        out[str(sid)] = src
    return out


def staging_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a staging table name, or None when it can."""
    if not STAGING_RE.match(name):
        return (f"staging table name '{name}' is not valid: use letters, digits and '_' only "
                "(it names a file in the warehouse).")
    if name.lower() in RESERVED_STAGING:
        return (f"staging table name '{name}' is reserved for the warehouse's own data. "
                "Reserved: " + ", ".join(RESERVED_STAGING) + ".")
    return None


# Staging table names become identifiers in other databases and file names in the warehouse:
# PostgreSQL cuts identifiers at 63 bytes, the strictest of the common databases.
MAX_STAGING_NAME = 63


def _check_place(pc: ProblemCollector, path: str | None, staging: str | None, spec: LineDict,
                 where: str) -> None:
    """A path no file system can open, or a staging name too long to be a table name."""
    if path is not None and not path.strip():
        pc.add(f"'path' in {where} is empty: give a file path, e.g. data/orders.csv.",
               line=spec.line_of("path"))
    elif path is not None and "\0" in path:
        pc.add(f"'path' in {where} contains a NUL character (\\0), which no file name can "
               "hold. Remove it.", line=spec.line_of("path"))
    if staging is not None and len(staging) > MAX_STAGING_NAME:
        pc.add(f"staging table name '{staging[:20]}...' in {where} has {len(staging)} "
               f"characters; the limit is {MAX_STAGING_NAME} (PostgreSQL's, the strictest of "
               "common databases). Choose a shorter name.", line=spec.line_of("staging"))


def _incremental(pc: ProblemCollector, spec: LineDict, where: str) -> dict[str, str] | None:
    raw = spec.get("incremental")
    if raw is None:
        return None
    line = spec.line_of("incremental")
    if not isinstance(raw, dict):
        pc.add(f"{where}: 'incremental' must be a mapping like {{by: updated_at, lookback: "
               "2 hours}.", line=line)
        return None
    if spec.get("catalog") is None:
        pc.add(f"{where}: 'incremental' reads a catalog entry by its event_time: use it on a "
               "{catalog: NAME} source.", line=line)
    unknown = [k for k in raw if k not in INCREMENTAL_KEYS]
    if unknown:
        pc.add(f"{where}: unknown key '{unknown[0]}' in 'incremental'."
               + (did_you_mean(str(unknown[0]), INCREMENTAL_KEYS) or valid(INCREMENTAL_KEYS)),
               line=line)
    return {str(k): str(v) for k, v in raw.items() if k in INCREMENTAL_KEYS and v is not None}


def valid(values: tuple[str, ...] | list[str]) -> str:
    return " Valid values: " + ", ".join(values) + "."


def _parse_steps(pc: ProblemCollector, d: LineDict) -> list[Step]:
    raw = d.get("steps") or []
    if not isinstance(raw, list):
        pc.add("'steps' must be a list of steps (each starting with '- id: ...').",
               line=d.line_of("steps"))
        return []
    steps: list[Step] = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict):
            pc.add(f"step #{i + 1} must be a mapping with 'id' and 'pattern' or 'sql'.",
                   line=d.line_of("steps"))
            continue
        spec = _as_linedict(spec)
        sid = spec.get("id")
        line = spec.line
        if not isinstance(sid, str) or not sid:
            pc.add(f"step #{i + 1} has no 'id'. Add 'id: a_name'.", line=line)
            sid = f"step_{i + 1}"
        elif not ID_RE.match(sid):
            pc.add(f"step id '{sid}' is not a valid name: use letters, digits and '_', "
                   "not starting with a digit.", line=spec.line_of("id"), step=sid)
        where = f"step '{sid}'"
        _check_keys(pc, spec, STEP_KEYS, where, step=sid)
        pattern = _opt_str(pc, spec, "pattern", where, step=sid)
        sql = spec.get("sql")
        if sql is not None and not isinstance(sql, str):
            pc.add(f"{where}: 'sql' must be text (use 'sql: |' for several lines).",
                   line=spec.line_of("sql"), step=sid)
            sql = str(sql)
        if (pattern is None) == (sql is None):
            pc.add(f"{where} needs either 'pattern' (with 'params') or 'sql', not "
                   + ("both." if pattern is not None else "neither."), line=line, step=sid)
        params = spec.get("params")
        param_lines: dict[str, int] = {}
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            pc.add(f"{where}: 'params' must be a mapping of name: value.",
                   line=spec.line_of("params"), step=sid)
            params = {}
        else:
            param_lines = {k: v for k, v in getattr(params, "key_lines", {}).items()}
        if sql is not None and params:
            pc.add(f"{where}: 'params' belong to pattern steps; a SQL step uses "
                   "{{ name }} for pipeline params.", line=spec.line_of("params"), step=sid)
        inputs = spec.get("inputs")
        if inputs is not None:
            if isinstance(inputs, str):
                inputs = [inputs]
            if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
                pc.add(f"{where}: 'inputs' must be a list of source or step ids.",
                       line=spec.line_of("inputs"), step=sid)
                inputs = []
            inputs = list(inputs)
        steps.append(Step(
            id=sid, pattern=pattern, params=_plain(params), sql=sql, inputs=inputs,
            description=_opt_str(pc, spec, "description", where, step=sid), line=line,
            param_lines=param_lines, key_order=list(spec.keys()),
        ))
    return steps


def _parse_outputs(pc: ProblemCollector, d: LineDict) -> dict[str, Output]:
    raw = d.get("outputs") or {}
    if not isinstance(raw, dict):
        pc.add("'outputs' must be a mapping of step_id: {path: ...}.", line=d.line_of("outputs"))
        return {}
    out: dict[str, Output] = {}
    for sid, spec in raw.items():
        line = _line(raw, sid)
        where = f"output '{sid}'"
        if isinstance(spec, str):
            spec = LineDict(path=spec)
            spec.key_lines = {}
        if not isinstance(spec, dict):
            pc.add(f"{where} must be a mapping like {{path: out/file.parquet}}.", line=line)
            continue
        spec = _as_linedict(spec)
        _check_keys(pc, spec, OUTPUT_KEYS, where)
        o = Output(
            step=str(sid), path=_opt_str(pc, spec, "path", where),
            format=_opt_str(pc, spec, "format", where),
            staging=_opt_str(pc, spec, "staging", where),
            mode=_opt_str(pc, spec, "mode", where) or "replace",
            primary_key=_str_list(pc, spec, "primary_key", where),
            history=_opt_str(pc, spec, "history", where),
            description=_opt_str(pc, spec, "description", where),
            owner=_opt_str(pc, spec, "owner", where),
            line=line, key_order=list(spec.keys()),
        )
        _check_place(pc, o.path, o.staging, spec, where)
        cols = spec.get("columns") or {}
        if isinstance(cols, dict):
            o.columns = {str(k): str(v) for k, v in cols.items()}
        else:
            pc.add(f"'columns' in {where} must map column names to descriptions.",
                   line=spec.line_of("columns"))
        if spec.get("postgres") is not None:
            o.postgres = _plain(spec["postgres"])
            for message in spec_problems(o.postgres, where, output=True):
                pc.add(message, line=spec.line_of("postgres"))
            moved = [k for k in ("mode", "primary_key", "history") if k in spec]
            if moved:
                pc.add(f"{where}: '{moved[0]}' of a postgres output goes inside 'postgres:' "
                       "(history is not supported there).", line=spec.line_of(moved[0]))
        kinds = [k for k in ("path", "staging", "postgres") if spec.get(k) is not None]
        if len(kinds) != 1:
            pc.add(f"{where} needs exactly one of 'path' (a file), 'staging' (a warehouse "
                   "table) or 'postgres' (a PostgreSQL table).", line=line)
        if o.path and o.resolved_format not in ("parquet", "csv", "json"):
            pc.add(f"{where}: cannot tell the format of '{o.path}'. Use a .parquet, .csv or "
                   ".json name, or add 'format:'.", line=spec.line_of("path"))
        if o.staging is not None and (bad := staging_name_problem(o.staging)):
            pc.add(f"{where}: {bad}", line=spec.line_of("staging"))
        if o.mode not in ("replace", "append", "merge"):
            pc.add(f"{where}: mode '{o.mode}' is not supported."
                   + valid(["replace", "append", "merge"]), line=spec.line_of("mode"))
        if o.history not in (None, "scd2"):
            pc.add(f"{where}: history '{o.history}' is not supported. Valid values: scd2.",
                   line=spec.line_of("history"))
        out[str(sid)] = o
    return out


def _plain(value: Any) -> Any:
    """LineDicts to plain dicts, recursively (the model holds plain data)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ---- saving ------------------------------------------------------------------------------

def _ordered(values: dict[str, Any], key_order: list[str], canonical: tuple[str, ...]) -> dict[str, Any]:
    """Keys in the order they were read, then the rest in canonical order; drops empties."""
    present = {k: v for k, v in values.items() if v is not None and not (
        isinstance(v, (list, dict)) and not v)}
    order = [k for k in key_order if k in present]
    order += [k for k in canonical if k in present and k not in order]
    return {k: present[k] for k in order}


def to_dict(p: Pipeline) -> dict[str, Any]:
    """The plain-data form of a pipeline, in file order."""
    sources = {}
    for sid, s in p.sources.items():
        vals = {"description": s.description, "path": s.path, "format": s.format,
                "options": s.options, "catalog": s.catalog, "staging": s.staging,
                "postgres": s.postgres, "sample_key": s.sample_key, "pii_access": s.pii_access,
                "incremental": s.incremental or None}
        sources[sid] = _ordered(vals, s.key_order, SOURCE_KEYS)
    steps = []
    for st in p.steps:
        vals = {"id": st.id, "description": st.description, "pattern": st.pattern,
                "inputs": st.inputs, "params": st.params or None, "sql": st.sql}
        if st.inputs == [] and st.pattern is not None:
            vals["inputs"] = None
        steps.append(_ordered(vals, st.key_order, STEP_KEYS))
    outputs = {}
    for oid, o in p.outputs.items():
        vals = {"description": o.description, "path": o.path, "format": o.format,
                "staging": o.staging, "postgres": o.postgres, "mode": None if o.mode == "replace" and "mode" not in
                o.key_order else o.mode, "primary_key": o.primary_key, "history": o.history,
                "owner": o.owner, "columns": o.columns}
        outputs[oid] = _ordered(vals, o.key_order, OUTPUT_KEYS)
    top = {"version": p.version, "name": p.name, "description": p.description,
           "params": BlockDict(p.params), "sources": BlockDict(sources), "steps": steps,
           "outputs": BlockDict(outputs)}
    return _ordered(top, p.key_order, PIPELINE_KEYS)


def dump(p: Pipeline) -> str:
    """The pipeline as YAML text (stable: dump(load(dump(p))) == dump(p))."""
    return dumps(to_dict(p))


def save(p: Pipeline, path: str | Path | None = None, *, expected: str | None = None,
         force: bool = False) -> Path:
    """Write the pipeline atomically to ``path`` (default: where it was loaded from).

    ``expected`` is the file's text when it was loaded (or last saved): if the file now holds
    something else (another tab, an editor, a git pull), nothing is written and a ConfigError
    says so, unless ``force``. Without ``expected`` the file is written unconditionally.
    """
    target = Path(path) if path else p.path
    if target is None:
        raise ConfigError("the pipeline has no file yet: give a path to save it to.")
    if expected is not None and not force and changed_on_disk(target, expected):
        raise ConfigError(f"'{target.name}' changed on disk since it was opened (another tab, "
                          "an editor or a git pull). Save under another name, reopen it to get "
                          "the other changes, or confirm to replace them with yours.",
                          file=str(target))
    atomic_write_text(target, dump(p))
    return target


def changed_on_disk(path: Path, expected: str) -> bool:
    """True when ``path`` exists and no longer holds ``expected``."""
    try:
        return read_text_file(path) != expected
    except ConfigError:
        # Deleted meanwhile (saving recreates it, nothing of anyone's is lost), or unreadable
        # or no longer a regular file (a FIFO: reading it would block).
        return path.exists()
