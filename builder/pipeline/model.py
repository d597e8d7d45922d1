"""The pipeline model: the one source of truth for a pipeline, whether it came from a YAML file,
the app's session state or a test.

``load(path)`` reads pipeline file version 1 into :class:`Pipeline`; ``dump(pipeline)`` writes it
back in the same key order it was read in, so saving an unchanged pipeline changes nothing.
Shape checks (unknown keys, wrong types, duplicate ids) happen here, with the pydantic models of
:mod:`builder.pipeline.filemodel`, and are collected together; graph, pattern and SQL checks
are in :mod:`builder.plan`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import fsio
from builder.errors import ConfigError, ProblemCollector, did_you_mean
from builder.pipeline.filemodel import (  # noqa: F401 - the file's names, read from here
    FORMATS,
    ID_RE,
    MAX_STAGING_NAME,
    OUTPUT_KEYS,
    PIPELINE_KEYS,
    RESERVED_STAGING,
    SOURCE_KEYS,
    STAGING_RE,
    STEP_KEYS,
    VERSION,
    OutputSpec,
    PipelineSpec,
    Problems,
    SourceSpec,
    StepSpec,
    check,
    infer_format,
    is_env_ref,
    staging_name_problem,
    valid,
)
from builder.pipeline.roundtrip import keep_comments
from builder.pipeline.yamlio import (
    BlockDict,
    LineDict,
    dumps,
    loads,
    read_text_file,
)

# The file's keys and rules are pydantic models (builder.pipeline.filemodel); these names are
# the ones the rest of Dockyard reads from here.
V1_KEYS: dict[str, tuple[str, ...]] = {"pipeline": PIPELINE_KEYS, "source": SOURCE_KEYS,
                                       "step": STEP_KEYS, "output": OUTPUT_KEYS}


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
    """Build a :class:`Pipeline` from parsed YAML, collecting every shape problem.

    Each part (the top level, each source, step and output) is validated with its model in
    :mod:`builder.pipeline.filemodel`; every problem gets the line of the key it is about.
    """
    file = str(path) if path else None
    pc = ProblemCollector(file=file)
    if data is None:
        raise ConfigError("the pipeline file is empty. Start from an example in saved_pipelines/.",
                          file=file)
    if not isinstance(data, dict):
        raise ConfigError("a pipeline file must be a mapping with 'version', 'name' and 'steps'.",
                          file=file, line=1)
    d = _as_linedict(data)
    # An empty section ('steps:' with nothing under it) is no section.
    top_raw = LineDict({k: v for k, v in d.items()
                        if not (k in ("params", "sources", "steps", "outputs") and not v)})
    top, problems = check(PipelineSpec, top_raw, "the pipeline")
    _add(pc, problems, d)
    name = top.name if top.name is not None else (path.stem if path else "pipeline")
    params = dict(d["params"]) if top.params else {}
    # The sections as read (pydantic's copies would drop the line of each key).
    sources = _parse_sources(pc, d, d["sources"] if top.sources else {})
    steps = _parse_steps(pc, d, d["steps"] if top.steps else [])
    outputs = _parse_outputs(pc, d, d["outputs"] if top.outputs else {})
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
        name=str(name), version=VERSION, description=top.description, params=params,
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


def _add(pc: ProblemCollector, problems: Problems, part: dict, line: int | None = None,  # type: ignore[type-arg]
         step: str | None = None) -> None:
    """Problems of one part, each at the line of its key (``a.b``: key b inside a's value)."""
    for message, key in problems:
        at = line
        if key is not None:
            first, _, rest = key.partition(".")
            at = _line(part.get(first), rest) if rest else _line(part, first)
        pc.add(message, line=at if at is not None else line, step=step)


def _parse_sources(pc: ProblemCollector, d: LineDict, raw: dict) -> dict[str, Source]:  # type: ignore[type-arg]
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
        checked, problems = check(SourceSpec, spec, where)
        _add(pc, problems, spec, line)
        inc = checked.incremental
        out[str(sid)] = Source(
            id=str(sid), path=checked.path, format=checked.format,
            description=checked.description, options=dict(checked.options or {}),
            catalog=checked.catalog, staging=checked.staging,
            postgres=plain(spec["postgres"]) if spec.get("postgres") is not None else None,
            sample_key=list(checked.sample_key or []), pii_access=list(checked.pii_access or []),
            incremental=None if inc is None else {
                k: str(v) for k, v in inc.model_dump().items() if v is not None},
            line=line, key_order=list(spec.keys()),
        )
    return out


def _parse_steps(pc: ProblemCollector, d: LineDict, raw: list) -> list[Step]:  # type: ignore[type-arg]
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
        checked, problems = check(StepSpec, LineDict({k: v for k, v in spec.items()
                                                      if k != "id"}), where)
        _add(pc, problems, spec, line, step=sid)
        params = checked.params or {}
        steps.append(Step(
            id=sid, pattern=checked.pattern, params=plain(params),
            sql=checked.sql if checked.sql is not None else (
                None if spec.get("sql") is None else str(spec["sql"])),
            inputs=None if checked.inputs is None else list(checked.inputs),
            description=checked.description, line=line,
            param_lines=dict(getattr(spec.get("params"), "key_lines", {})),
            key_order=list(spec.keys()),
        ))
    return steps


def _parse_outputs(pc: ProblemCollector, d: LineDict, raw: dict) -> dict[str, Output]:  # type: ignore[type-arg]
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
        checked, problems = check(OutputSpec, spec, where)
        _add(pc, problems, spec, line)
        out[str(sid)] = Output(
            step=str(sid), path=checked.path, format=checked.format, staging=checked.staging,
            postgres=plain(spec["postgres"]) if spec.get("postgres") is not None else None,
            mode=checked.mode or "replace", primary_key=list(checked.primary_key or []),
            history=checked.history, description=checked.description, owner=checked.owner,
            columns={str(k): str(v) for k, v in (checked.columns or {}).items()},
            line=line, key_order=list(spec.keys()),
        )
    return out


def plain(value: Any) -> Any:
    """Parsed YAML (LineDicts) as plain dicts and lists, recursively: the model holds plain data."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
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


def dump(p: Pipeline, previous: str | None = None) -> str:
    """The pipeline as YAML text (stable: dump(load(dump(p))) == dump(p)).

    ``previous`` is the text the pipeline was read from: its comments are kept where their keys
    still are (see :mod:`builder.pipeline.roundtrip`).
    """
    text = dumps(to_dict(p))
    return keep_comments(previous, text) if previous else text


def save(p: Pipeline, path: str | Path | None = None, *, expected: str | None = None,
         force: bool = False, previous: str | None = None, text: str | None = None) -> Path:
    """Write the pipeline atomically to ``path`` (default: where it was loaded from).

    ``expected`` is the file's text when it was loaded (or last saved): if the file now holds
    something else (another tab, an editor, a git pull), nothing is written and a ConfigError
    says so, unless ``force``. Without ``expected`` the file is written unconditionally.

    The comments of ``previous`` (default: ``expected``, else the file itself when the pipeline
    is saved where it was loaded from; ``""``: none) are kept, so a file edited by hand and then
    in the app keeps its comments. ``text``: the text to write, already made with
    ``dump(p, previous)`` (reading a file for its comments takes a while on a big one).
    """
    target = Path(path) if path else p.path
    if target is None:
        raise ConfigError("the pipeline has no file yet: give a path to save it to.")
    if expected is not None and not force and changed_on_disk(target, expected):
        raise ConfigError(f"'{target.name}' changed on disk since it was opened (another tab, "
                          "an editor or a git pull). Save under another name, reopen it to get "
                          "the other changes, or confirm to replace them with yours.",
                          file=str(target))
    if text is None:
        if previous is None:
            previous = expected if expected is not None else _own_file_text(p, target)
        text = dump(p, previous)
    fsio.write_text(target, text)
    return target


def _own_file_text(p: Pipeline, target: Path) -> str | None:
    """The text of ``target`` when it is the file ``p`` was loaded from, else None."""
    if p.path is None or not target.exists() or \
            Path(os.path.realpath(target)) != Path(os.path.realpath(p.path)):
        return None
    try:
        return read_text_file(target)
    except ConfigError:
        return None


def changed_on_disk(path: Path, expected: str) -> bool:
    """True when ``path`` exists and no longer holds ``expected``."""
    try:
        return read_text_file(path) != expected
    except ConfigError:
        # Deleted meanwhile (saving recreates it, nothing of anyone's is lost), or unreadable
        # or no longer a regular file (a FIFO: reading it would block).
        return path.exists()
