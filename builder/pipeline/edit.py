"""Edits on a pipeline model: add, rename, reorder and delete nodes, safe save names.

These are the operations the app offers, kept here (not in the UI) because they are pipeline
logic with rules of their own: a rename updates every step that reads the node (its ``inputs``,
the table names in its SQL, keeping the user's formatting) and the outputs; a delete refuses
while other steps read the node and names them. Every function changes the model in place and
raises :class:`ConfigError` with a one-line message when the edit is not allowed.

>>> from builder.pipeline.model import Pipeline
>>> p = Pipeline(name="demo")
>>> add_source(p, "orders", "data/orders.parquet").id
'orders'
>>> add_sql_step(p, "SELECT * FROM orders").id
'sql_1'
>>> rename_node(p, "orders", "paid_orders"); p.steps[0].sql
'SELECT * FROM paid_orders'
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from builder.errors import ConfigError, did_you_mean
from builder.pipeline.filemodel import HISTORIES, OUTPUT_MODES
from builder.pipeline.model import (
    FORMATS,
    ID_RE,
    Output,
    Pipeline,
    Source,
    Step,
    infer_format,
    is_env_ref,
    valid,
)
from builder.pipeline.params import param_names
from builder.pipeline.postgres_spec import spec_problems
from builder.pipeline.sqltext import referenced_tables, too_deep_at
from builder.pipeline.yamlio import loads

# Pipeline file names: a plain name, no folders, no dots (so nothing can escape the folder).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
_PARAM_RE = re.compile(r"\{\{.*?\}\}", re.DOTALL)


# ---- ids and names -----------------------------------------------------------------------

def check_id(pipeline: Pipeline, new_id: str, current: str | None = None) -> None:
    """Raise unless ``new_id`` is a valid id not used by another source or step."""
    if not ID_RE.match(new_id or ""):
        raise ConfigError(f"'{new_id}' is not a valid id: use letters, digits and '_', not "
                          "starting with a digit.")
    if new_id != current and new_id in pipeline.node_ids():
        raise ConfigError(f"the id '{new_id}' is already used in this pipeline. Choose another "
                          "name.")


def unique_id(pipeline: Pipeline, base: str) -> str:
    """``base`` made into a valid id not used yet (``base``, ``base_2``, ``base_3``, ...)."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", base.strip()) or "step"
    if not re.match(r"^[A-Za-z_]", text):
        text = "_" + text
    used = set(pipeline.node_ids())
    if text not in used:
        return text
    n = 2
    while f"{text}_{n}" in used:
        n += 1
    return f"{text}_{n}"


def numbered_id(pipeline: Pipeline, base: str) -> str:
    """The first free ``base_1``, ``base_2``, ... (a bare pattern name like 'select' or 'join'
    would be a SQL keyword, awkward to read from a SQL step)."""
    used = set(pipeline.node_ids())
    n = 1
    while f"{base}_{n}" in used:
        n += 1
    return f"{base}_{n}"


def pipeline_file(folder: str | Path, name: str) -> Path:
    """The file ``folder/NAME.yaml`` for a pipeline name; refuses names that could escape it.

    >>> pipeline_file("saved_pipelines", "daily").as_posix()
    'saved_pipelines/daily.yaml'
    """
    text = (name or "").strip()
    if text.endswith((".yaml", ".yml")):
        text = text.rsplit(".", 1)[0]
    if not NAME_RE.match(text):
        raise ConfigError(f"'{name}' is not a valid pipeline name: use letters, digits, '_' and "
                          "'-' (no folders, no dots), starting with a letter or digit.")
    root = Path(folder).resolve()
    target = (root / f"{text}.yaml").resolve()
    if target.parent != root:  # defence in depth: the pattern already forbids separators
        raise ConfigError(f"'{name}' would be saved outside '{folder}'.")
    return Path(folder) / f"{text}.yaml"


def new_pipeline(name: str, folder: str | Path) -> Pipeline:
    """An empty pipeline whose (not yet written) file is ``folder/NAME.yaml``.

    Giving it its path at once makes relative source paths resolve against the folder it will
    be saved in, so previews work before the first save.
    """
    path = pipeline_file(folder, name)
    return Pipeline(name=path.stem, path=path,
                    key_order=["version", "name", "sources", "steps", "outputs"])


def duplicate(pipeline: Pipeline, name: str, folder: str | Path) -> Pipeline:
    """A copy under a new name (and file) in ``folder``; the original is unchanged."""
    path = pipeline_file(folder, name)
    new = copy.deepcopy(pipeline)
    new.name = path.stem
    new.path = path
    return new


# ---- adding ------------------------------------------------------------------------------

def add_source(pipeline: Pipeline, source_id: str, path: str, fmt: str | None = None) -> Source:
    """Add a file source (``path`` relative to the pipeline file, or absolute)."""
    check_id(pipeline, source_id)
    if not path.strip():
        raise ConfigError(f"source '{source_id}' needs a file path.")
    if fmt is None and infer_format(path) is None:
        raise ConfigError(f"cannot tell the format of '{path}' from its extension. Choose csv, "
                          "parquet or json.")
    src = Source(id=source_id, path=path.strip(), format=fmt)
    pipeline.sources[source_id] = src
    return src


def add_table_source(pipeline: Pipeline, source_id: str, kind: str, name: str) -> Source:
    """Add a source reading a catalog entry (``kind='catalog'``) or a staging table."""
    check_id(pipeline, source_id)
    if kind not in ("catalog", "staging"):
        raise ConfigError(f"unknown table kind '{kind}': use catalog or staging.")
    if not name.strip():
        raise ConfigError(f"source '{source_id}' needs a {kind} name.")
    src = Source(id=source_id, catalog=name if kind == "catalog" else None,
                 staging=name if kind == "staging" else None)
    pipeline.sources[source_id] = src
    return src


def postgres_spec(where: str, spec: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """A checked ``postgres:`` mapping (ConfigError with the first problem)."""
    spec = {k: v for k, v in spec.items() if v not in (None, "", [])}
    problems = spec_problems(spec, where, output=output)
    if problems:
        raise ConfigError(problems[0])
    return spec


def add_postgres_source(pipeline: Pipeline, source_id: str, env: str, table: str | None = None,
                        query: str | None = None) -> Source:
    """Add a source reading a PostgreSQL table (or query); the DSN is read from ``env``."""
    check_id(pipeline, source_id)
    env = (env or "").strip()
    if not ID_RE.match(env):
        raise ConfigError(f"source '{source_id}': '{env}' is not an environment variable name "
                          "(e.g. PG_DSN).")
    spec = postgres_spec(f"source '{source_id}'", {"dsn": {"env": env}, "table": (
        table or "").strip(), "query": (query or "").strip()}, output=False)
    src = Source(id=source_id, postgres=spec)
    pipeline.sources[source_id] = src
    return src


def add_pattern_step(pipeline: Pipeline, pattern: str, inputs: list[str],
                     step_id: str | None = None, params: dict[str, Any] | None = None) -> Step:
    """Append a pattern step reading ``inputs`` (params start empty: the form fills them)."""
    sid = step_id or numbered_id(pipeline, pattern)
    check_id(pipeline, sid)
    check_inputs_exist(pipeline, inputs)
    st = Step(id=sid, pattern=pattern, inputs=list(inputs), params=dict(params or {}))
    pipeline.steps.append(st)
    return st


def add_sql_step(pipeline: Pipeline, sql: str, step_id: str | None = None) -> Step:
    """Append a SQL step (its inputs are inferred from the tables its SQL reads)."""
    sid = step_id or numbered_id(pipeline, "sql")
    check_id(pipeline, sid)
    st = Step(id=sid, sql=sql)
    pipeline.steps.append(st)
    return st


def default_sql(reads: str | None) -> str:
    """The SQL a new SQL step starts with."""
    return f"SELECT *\nFROM {reads}" if reads else "SELECT 1 AS one"


def default_output_path(pipeline: Pipeline, step_id: str) -> str:
    """Where a new output goes: a folder per pipeline, so two pipelines with a step of the same
    name (every new pipeline has a 'filter_1') never write the same file.

    >>> default_output_path(Pipeline(name="daily"), "filter_1")
    '../out/daily/filter_1.parquet'
    """
    folder = re.sub(r"[^A-Za-z0-9_-]", "_", pipeline.name) or "pipeline"
    return f"../out/{folder}/{step_id}.parquet"


def set_output(pipeline: Pipeline, step_id: str, path: str | None) -> None:
    """Write ``step_id`` to ``path`` on a run (None or empty: no output for it)."""
    if step_id not in pipeline.node_ids():
        raise ConfigError(f"'{step_id}' is not a step of this pipeline.")
    if not path or not path.strip():
        pipeline.outputs.pop(step_id, None)
        return
    if infer_format(path) is None:
        raise ConfigError(f"output '{step_id}': cannot tell the format of '{path}'. Use a "
                          ".parquet, .csv or .json name.")
    out = pipeline.outputs.get(step_id)
    if out is None:
        pipeline.outputs[step_id] = Output(step=step_id, path=path.strip())
    else:
        out.path = path.strip()
        out.postgres = None
        if out.staging is not None:  # a staging table becomes a file: drop its table settings
            out.staging, out.mode, out.primary_key, out.history = None, "replace", [], None




def set_staging_output(pipeline: Pipeline, step_id: str, name: str) -> Output:
    """Publish ``step_id`` as the staging table ``name`` (replacing a file output's path).

    >>> p = Pipeline(name="demo"); _ = add_sql_step(p, "SELECT 1 AS id", "ids")
    >>> set_staging_output(p, "ids", "ids_table").staging
    'ids_table'
    """
    if step_id not in pipeline.step_ids():
        raise ConfigError(f"'{step_id}' is not a step of this pipeline.")
    name = (name or "").strip()
    if not ID_RE.match(name):
        raise ConfigError(f"output '{step_id}': '{name}' is not a valid staging table name: use "
                          "letters, digits and '_', not starting with a digit.")
    out = pipeline.outputs.get(step_id)
    if out is None:
        out = pipeline.outputs[step_id] = Output(step=step_id)
    out.staging, out.path, out.format, out.postgres = name, None, None, None
    return out


def set_postgres_output(pipeline: Pipeline, step_id: str, **changes: Any) -> Output:
    """Write ``step_id`` to a PostgreSQL table; ``changes`` update its ``postgres:`` mapping
    (``env``, ``table``, ``mode``, ``primary_key``). A new one starts as ``{env: PG_DSN}``,
    a table named after the step, mode replace."""
    if step_id not in pipeline.step_ids():
        raise ConfigError(f"'{step_id}' is not a step of this pipeline.")
    out = pipeline.outputs.get(step_id)
    if out is None:
        out = pipeline.outputs[step_id] = Output(step=step_id)
    spec = dict(out.postgres or {"dsn": {"env": "PG_DSN"}, "table": step_id})
    for key, value in changes.items():
        if key == "env":
            spec["dsn"] = {"env": str(value or "").strip()}
        elif key in ("table", "mode", "primary_key"):
            spec[key] = value.strip() if isinstance(value, str) else value
        else:
            raise ConfigError(f"output '{step_id}': unknown postgres setting '{key}'.")
    if spec.get("mode") == "replace":
        spec.pop("mode")
    out.postgres = postgres_spec(f"output '{step_id}'", spec, output=True)
    out.path = out.format = out.staging = out.history = None
    out.mode, out.primary_key = "replace", []
    return out


def update_output(pipeline: Pipeline, step_id: str, **changes: Any) -> Output:
    """Change settings of an existing output: ``format``, ``mode``, ``primary_key``,
    ``history``, ``description``, ``owner`` or ``columns`` (None or empty removes a setting).

    ``mode``, ``primary_key`` and ``history`` belong to staging outputs (a file is replaced).
    """
    out = pipeline.outputs.get(step_id)
    if out is None:
        raise ConfigError(f"'{step_id}' has no output: write it to a file or a staging table "
                          "first.")
    where = f"output '{step_id}'"
    for key, value in changes.items():
        if isinstance(value, str):
            value = value.strip() or None
        if key in ("mode", "primary_key", "history") and out.staging is None and value:
            if not (key == "mode" and value == "replace"):
                raise ConfigError(f"{where}: '{key}' is for staging tables; a file output is "
                                  "replaced on each run.")
        if key == "format":
            if value is not None and value not in FORMATS:
                raise ConfigError(f"{where}: format '{value}' is not supported." + valid(FORMATS))
            out.format = value
        elif key == "mode":
            if (value or "replace") not in OUTPUT_MODES:
                raise ConfigError(f"{where}: mode '{value}' is not supported."
                                  + valid(OUTPUT_MODES))
            out.mode = value or "replace"
        elif key == "history":
            if value is not None and value not in HISTORIES:
                raise ConfigError(f"{where}: history '{value}' is not supported." + valid(HISTORIES))
            out.history = value
        elif key == "primary_key":
            out.primary_key = [str(c) for c in value or []]
        elif key in ("description", "owner"):
            setattr(out, key, value)
        elif key == "columns":
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{where}: 'columns' maps column names to descriptions, like "
                                  "{user_id: The user's id.}.")
            out.columns = {str(k): str(v) for k, v in (value or {}).items() if v is not None}
        else:
            raise ConfigError(f"{where}: unknown setting '{key}'.")
    return out


# ---- sources: format, reader options, tables ---------------------------------------------

def update_source(pipeline: Pipeline, source_id: str, **changes: Any) -> Source:
    """Change a source's ``path``, ``format``, ``catalog``, ``staging`` (the table it reads),
    ``description``, ``sample_key``, ``pii_access`` or ``incremental`` ({by, lookback}; None:
    a full read); empty text removes a setting."""
    src = pipeline.sources.get(source_id)
    if src is None:
        raise ConfigError(f"'{source_id}' is not a source of this pipeline.")
    where = f"source '{source_id}'"
    for key, value in changes.items():
        if isinstance(value, str):
            value = value.strip() or None
        if key == "format":
            if value is not None and value not in FORMATS:
                raise ConfigError(f"{where}: format '{value}' is not supported." + valid(FORMATS))
            if value is None and src.path and infer_format(src.path) is None:
                raise ConfigError(f"{where}: cannot tell the format of '{src.path}' from its "
                                  "extension: choose csv, parquet or json.")
            src.format = value
        elif key in ("path", "catalog", "staging"):
            if getattr(src, key) is None:
                raise ConfigError(f"{where} does not read a {key}: add a new source instead.")
            if value is None:
                raise ConfigError(f"{where} needs a {key}.")
            setattr(src, key, value)
        elif key in ("env", "table", "query") and src.postgres is not None:
            spec = dict(src.postgres)
            if key == "env":
                spec["dsn"] = {"env": value or ""}
            else:
                spec[key] = value
            src.postgres = postgres_spec(where, spec, output=False)
        elif key == "description":
            src.description = value
        elif key in ("sample_key", "pii_access"):
            setattr(src, key, [str(c) for c in value or []])
        elif key == "incremental":
            if value is not None and src.catalog is None:
                raise ConfigError(f"{where}: 'incremental' reads a catalog entry by its "
                                  "event_time: use it on a catalog source.")
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{where}: 'incremental' must be a mapping like "
                                  "{by: updated_at, lookback: 2 hours}.")
            src.incremental = {str(k): str(v) for k, v in value.items() if v} if value else None
        else:
            raise ConfigError(f"{where}: unknown setting '{key}'.")
    return src


def set_source_option(pipeline: Pipeline, source_id: str, name: str, value: Any) -> None:
    """Set one reader option of a file source (None or '' removes it), e.g. ``delim``."""
    src = pipeline.sources.get(source_id)
    if src is None or src.path is None:
        raise ConfigError(f"'{source_id}' is not a file source of this pipeline.")
    if value is None or value == "" or value == {}:
        src.options.pop(name, None)
    else:
        src.options[name] = value


def set_source_options(pipeline: Pipeline, source_id: str, options: Any) -> None:
    """Replace a file source's reader options with a mapping (``{}`` or None: none)."""
    src = pipeline.sources.get(source_id)
    if src is None or src.path is None:
        raise ConfigError(f"'{source_id}' is not a file source of this pipeline.")
    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"source '{source_id}': 'options' is a mapping of reader options, "
                          "like {delim: ';'}.")
    src.options = dict(options or {})


# ---- pipeline params ---------------------------------------------------------------------

def param_value(text: str, name: str = "") -> Any:
    """A param value typed in a text box, read as YAML: ``5`` is a number, ``2024-01-01`` a
    date, ``{env: SALT}`` a reference to an environment variable, anything else text.

    >>> param_value("2024-01-01"), param_value("5"), param_value("30 minutes")
    (datetime.date(2024, 1, 1), 5, '30 minutes')
    >>> param_value("{env: SALT}")
    {'env': 'SALT'}
    """
    text = (text or "").strip()
    if not text:
        raise ConfigError(f"param '{name}' needs a value (text, number or date, or "
                          "{env: VARIABLE_NAME}).")
    try:
        value = loads(text)
    except ConfigError:
        return text
    if isinstance(value, dict) and is_env_ref(value):
        return {"env": value["env"]}
    if isinstance(value, (dict, list)):
        raise ConfigError(f"param '{name}': a param value must be a single value (text, number, "
                          "date) or {env: VARIABLE_NAME}.")
    return text if value is None else value


def param_users(pipeline: Pipeline, name: str) -> list[str]:
    """Steps whose SQL or params use ``{{ name }}``, in file order."""

    def texts(v: Any) -> list[str]:
        if isinstance(v, str):
            return [v]
        if isinstance(v, dict):
            return [t for x in v.values() for t in texts(x)]
        if isinstance(v, list):
            return [t for x in v for t in texts(x)]
        return []

    return [s.id for s in pipeline.steps
            if any(name in param_names(t) for t in texts(s.params) + texts(s.sql))]


def set_param(pipeline: Pipeline, name: str, value: Any, old: str | None = None) -> None:
    """Add or change the pipeline param ``name`` (used as ``{{ name }}``); with ``old``,
    rename that param (refused while steps use the old name: they would break)."""
    name = (name or "").strip()
    if not ID_RE.match(name):
        raise ConfigError(f"'{name}' is not a valid param name: use letters, digits and '_', "
                          "not starting with a digit.")
    if old is not None and old != name:
        if name in pipeline.params:
            raise ConfigError(f"the pipeline already has a param '{name}'.")
        users = param_users(pipeline, old)
        if users:
            raise ConfigError(f"cannot rename param '{old}': " + ", ".join(
                f"'{u}'" for u in users) + f" use{'s' if len(users) == 1 else ''} "
                f"{{{{ {old} }}}}. Change them first.")
        pipeline.params = {(name if k == old else k): v for k, v in pipeline.params.items()}
    if isinstance(value, (dict, list)) and not is_env_ref(value):
        raise ConfigError(f"param '{name}': a param value must be a single value (text, number, "
                          "date) or {env: VARIABLE_NAME}.")
    pipeline.params[name] = value


def delete_param(pipeline: Pipeline, name: str) -> None:
    """Remove a param; refused while a step uses it, naming the steps."""
    users = param_users(pipeline, name)
    if users:
        raise ConfigError(f"cannot delete param '{name}': " + ", ".join(
            f"'{u}'" for u in users) + f" use{'s' if len(users) == 1 else ''} {{{{ {name} }}}}. "
            "Change them first.")
    pipeline.params.pop(name, None)


def check_inputs_exist(pipeline: Pipeline, inputs: list[str]) -> None:
    known = pipeline.node_ids()
    for i in inputs:
        if i not in known:
            raise ConfigError(f"'{i}' is not a source or step of this pipeline."
                              + did_you_mean(i, known))


def reads(pipeline: Pipeline, step: Step) -> list[str]:
    """Ids a step reads: its declared inputs, or for SQL steps the ids its tables name."""
    if step.inputs is not None or step.sql is None:
        return list(step.inputs or [])
    tree = _parse_sql(step.sql)
    if tree is None:
        return []
    known = set(pipeline.node_ids())
    out: list[str] = []
    for t in referenced_tables(tree):
        if t.name in known and t.name not in out and not t.args.get("db"):
            out.append(t.name)
    return out


def dependents(pipeline: Pipeline, node: str) -> list[str]:
    """Steps that read ``node`` directly, in file order."""
    return [s.id for s in pipeline.steps if s.id != node and node in reads(pipeline, s)]


def downstream(pipeline: Pipeline, node: str) -> set[str]:
    """Every step that depends on ``node``, directly or not."""
    seen: set[str] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        for d in dependents(pipeline, n):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def input_candidates(pipeline: Pipeline, step_id: str) -> list[str]:
    """Ids a step may read without making a cycle: everything but itself and its dependents."""
    blocked = downstream(pipeline, step_id) | {step_id}
    return [n for n in pipeline.node_ids() if n not in blocked]


def upstream(pipeline: Pipeline, node: str) -> set[str]:
    """Every source and step ``node`` reads, directly or not."""
    steps = {s.id: s for s in pipeline.steps}
    seen: set[str] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if n not in steps:
            continue
        for r in reads(pipeline, steps[n]):
            if r not in seen:
                seen.add(r)
                todo.append(r)
    return seen


def other_input_choices(pipeline: Pipeline, first: str | None,
                        step_id: str | None = None) -> list[str]:
    """What a two-input step may read besides ``first``: sources first, then steps.

    Nodes ``first`` already reads come last (joining a step back to its own source is rare),
    and ``step_id``'s dependents are left out (they would make a cycle).
    """
    blocked = (downstream(pipeline, step_id) | {step_id}) if step_id else set()
    ups = upstream(pipeline, first) if first else set()
    ordered = [n for n in pipeline.sources if n not in ups] + \
        [s for s in pipeline.step_ids() if s not in ups] + \
        [n for n in pipeline.node_ids() if n in ups]
    return [n for n in ordered if n != first and n not in blocked]


def default_inputs(pipeline: Pipeline, selected: str | None, arity: int | str) -> list[str]:
    """Inputs a new step starts with: the inspected node (else the last one); a two-input
    pattern also gets the first other input it is likely to combine with (see
    :func:`other_input_choices`), or none when there is nothing else to read.

    >>> p = Pipeline(name="demo")
    >>> _ = add_source(p, "clicks", "clicks.parquet"); _ = add_source(p, "users", "users.csv")
    >>> _ = add_pattern_step(p, "dedupe", ["clicks"])
    >>> _ = add_pattern_step(p, "sessionize", ["dedupe_1"])
    >>> default_inputs(p, "sessionize_1", 2)
    ['sessionize_1', 'users']
    """
    if arity == 0:
        return []
    nodes = pipeline.node_ids()
    first = selected if selected in nodes else (nodes[-1] if nodes else None)
    if first is None:
        return []
    if arity == 2:
        others = other_input_choices(pipeline, first)
        return [first] + others[:1]
    return [first]


# ---- rename, move, delete ----------------------------------------------------------------

def rename_node(pipeline: Pipeline, old: str, new: str) -> None:
    """Rename a source or step and every reference to it (inputs, SQL tables, outputs)."""
    if old == new:
        return
    if old not in pipeline.node_ids():
        raise ConfigError(f"'{old}' is not a source or step of this pipeline.")
    check_id(pipeline, new, current=old)
    users = dependents(pipeline, old)
    if old in pipeline.sources:
        pipeline.sources = {(new if k == old else k): v for k, v in pipeline.sources.items()}
        pipeline.sources[new].id = new
    else:
        pipeline.step(old).id = new
    for st in pipeline.steps:
        if st.id not in users:
            continue
        if st.inputs is not None:
            st.inputs = [new if i == old else i for i in st.inputs]
        if st.sql is not None:
            st.sql = rename_table_in_sql(st.sql, old, new)
    if old in pipeline.outputs:
        pipeline.outputs = {(new if k == old else k): v for k, v in pipeline.outputs.items()}
        pipeline.outputs[new].step = new


def rename_table_in_sql(sql: str, old: str, new: str) -> str:
    """``sql`` with the table ``old`` (and ``old.column`` qualifiers) renamed to ``new``.

    Only the identifiers change; spacing, comments and ``{{ params }}`` stay as written.

    >>> rename_table_in_sql("SELECT a.x FROM a JOIN b USING (k)", "a", "c")
    'SELECT c.x FROM c JOIN b USING (k)'
    """
    # Same-length stand-ins keep token positions while letting sqlglot parse the text.
    masked = _PARAM_RE.sub(lambda m: "NULL".ljust(len(m.group(0))), sql)
    tree = _parse_sql(masked)
    if tree is None:
        return sql
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    if old in ctes:
        return sql  # the SQL defines its own 'old': that name is not the pipeline's node
    aliases = {a.name for a in tree.find_all(exp.TableAlias) if a.name}
    spans: list[tuple[int, int, bool]] = []
    for ident in tree.find_all(exp.Identifier):
        parent = ident.parent
        if ident.name != old or ident.meta.get("start") is None:
            continue
        is_table = isinstance(parent, exp.Table) and ident.arg_key == "this" and \
            not parent.args.get("db")
        is_qualifier = isinstance(parent, exp.Column) and ident.arg_key == "table" and \
            old not in aliases
        if is_table or is_qualifier:
            spans.append((int(ident.meta["start"]), int(ident.meta["end"]), bool(ident.quoted)))
    out = sql
    for start, end, quoted in sorted(spans, reverse=True):
        text = f'"{new}"' if quoted else new
        out = out[:start] + text + out[end + 1:]
    return out


def move_step(pipeline: Pipeline, step_id: str, delta: int) -> None:
    """Move a step up (negative) or down in the file; the run order follows the graph anyway."""
    ids = pipeline.step_ids()
    if step_id not in ids:
        raise ConfigError(f"'{step_id}' is not a step of this pipeline.")
    i = ids.index(step_id)
    j = max(0, min(len(ids) - 1, i + delta))
    st = pipeline.steps.pop(i)
    pipeline.steps.insert(j, st)


def delete_node(pipeline: Pipeline, node: str) -> None:
    """Delete a source or step (and its output); refused while other steps read it."""
    users = dependents(pipeline, node)
    if users:
        names = ", ".join(f"'{u}'" for u in users)
        raise ConfigError(f"cannot delete '{node}': {'step' if len(users) == 1 else 'steps'} "
                          f"{names} {'reads' if len(users) == 1 else 'read'} it. Change their "
                          "inputs first or delete them.")
    if node in pipeline.sources:
        del pipeline.sources[node]
    elif node in pipeline.step_ids():
        pipeline.steps = [s for s in pipeline.steps if s.id != node]
    else:
        raise ConfigError(f"'{node}' is not a source or step of this pipeline.")
    pipeline.outputs.pop(node, None)


def _parse_sql(sql: str) -> exp.Query | None:
    text = _PARAM_RE.sub("NULL", sql)
    if too_deep_at(text):
        return None  # too deep for sqlglot; validation says so next to the step
    try:
        tree = sqlglot.parse_one(text, dialect="duckdb")
    except (ParseError, TokenError, ValueError, RecursionError):
        return None
    return tree if isinstance(tree, exp.Query) else None
