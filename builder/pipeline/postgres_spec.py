"""The ``postgres:`` mapping of a source or output in a pipeline file: its keys and its DSN.

What the file may say (``dsn: {env: PG_DSN}``, ``table`` or ``query``, an output's ``mode`` and
``primary_key``) is checked here, as pydantic models like the rest of the file (:mod:`builder.pipeline.filemodel`), when the file is loaded, edited or planned; connecting and
typing are in :mod:`builder.plan.postgres`, reading and writing rows in
:mod:`builder.engines.postgres`. A DSN written in the file may not carry a password, and
messages never show one.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from builder.errors import ConfigError, ExecutionError, did_you_mean

MODES = ("replace", "append", "merge")


class _PostgresSpec(BaseModel):
    """A ``postgres:`` mapping: unknown keys are errors; values are checked by :meth:`rules`
    (each problem its own message, all of them reported)."""

    model_config = ConfigDict(extra="forbid")
    dsn: Any = None  # {env: NAME}, or a connection string without a password

    def rules(self, where: str) -> list[str]:
        dsn = self.dsn
        if dsn is None:
            return [f"{where}: 'postgres' needs 'dsn: {{env: PG_DSN}}' (the connection "
                    "string, read from an environment variable)."]
        if isinstance(dsn, dict):
            if list(dsn) != ["env"] or not isinstance(dsn["env"], str) or not dsn["env"]:
                return [f"{where}: 'dsn' must be {{env: VARIABLE_NAME}}."]
        elif not isinstance(dsn, str):
            return [f"{where}: 'dsn' must be {{env: VARIABLE_NAME}}."]
        elif has_password(dsn):
            return [f"{where}: 'dsn' holds a password in the pipeline file. Put the "
                    "connection string in an environment variable and write "
                    "'dsn: {env: PG_DSN}'."]
        return []


class PostgresSourceSpec(_PostgresSpec):
    """``sources.ID.postgres``: a table or a query to read."""

    table: Any = None
    query: Any = None

    def rules(self, where: str) -> list[str]:
        problems = super().rules(where)
        if (self.table is None) == (self.query is None):
            problems.append(f"{where}: 'postgres' needs exactly one of 'table' or 'query'.")
        else:
            key, text = ("table", self.table) if self.table is not None else ("query", self.query)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}: '{key}' in 'postgres' must be non-empty text.")
        return problems


class PostgresOutputSpec(_PostgresSpec):
    """``outputs.STEP.postgres``: the table to write and how."""

    table: Any = None
    mode: Any = "replace"
    primary_key: Any = Field(default_factory=list)

    def rules(self, where: str) -> list[str]:
        problems = super().rules(where)
        if not isinstance(self.table, str) or not self.table.strip():
            problems.append(f"{where}: 'postgres' needs 'table: schema.table' (the table to "
                            "write).")
        if self.mode not in MODES:
            problems.append(f"{where}: mode '{self.mode}' is not supported. Valid values: "
                            + ", ".join(MODES) + ".")
        pk = [self.primary_key] if isinstance(self.primary_key, str) else self.primary_key
        if not isinstance(pk, list) or not all(isinstance(c, str) for c in pk):
            problems.append(f"{where}: 'primary_key' must be a list of column names.")
        elif self.mode == "merge" and not pk:
            problems.append(f"{where}: mode 'merge' needs 'primary_key' (the columns that "
                            "identify a row).")
        return problems


SOURCE_KEYS = tuple(PostgresSourceSpec.model_fields)
OUTPUT_KEYS = tuple(PostgresOutputSpec.model_fields)


def spec_problems(spec: Any, where: str, *, output: bool) -> list[str]:
    """Shape problems of a ``postgres:`` mapping of a source (or of an output)."""
    shape = ("{postgres: {dsn: {env: PG_DSN}, table: schema.table}}" if output else
             "{postgres: {dsn: {env: PG_DSN}, table: schema.table}} (or query: SELECT ...)")
    if not isinstance(spec, dict):
        return [f"{where}: 'postgres' must be a mapping like {shape}."]
    model: type[_PostgresSpec] = PostgresOutputSpec if output else PostgresSourceSpec
    allowed = tuple(model.model_fields)
    try:
        return model.model_validate(spec).rules(where)
    except ValidationError as e:  # every value is accepted: only unknown keys are refused
        problems = [f"{where}: unknown key '{err['loc'][0]}' in 'postgres'." + (
            did_you_mean(str(err["loc"][0]), allowed) or " Allowed keys: " + ", ".join(allowed)
            + ".") for err in e.errors(include_url=False)]
    known = model.model_validate({k: v for k, v in spec.items() if k in allowed})
    return problems + known.rules(where)


def has_password(dsn: str) -> bool:
    """True when a connection string (URI or ``key=value`` form) carries a password."""
    if "://" in dsn:
        try:
            parts = urlsplit(dsn)
            return bool(parts.password) or "password" in parse_qs(parts.query)
        except ValueError:
            return True  # unparseable: assume the worst
    return re.search(r"(^|\s)password\s*=", dsn) is not None


def mask(text: str, dsn: str | None = None) -> str:
    """``text`` with any password (of ``dsn``, or in a URI or key=value form) replaced."""
    if dsn:
        try:
            pw = urlsplit(dsn).password if "://" in dsn else None
        except ValueError:
            pw = None
        m = re.search(r"(?:^|\s)password\s*=\s*(\S+)", dsn)
        for secret in (pw, m.group(1) if m else None):
            if secret:
                text = text.replace(secret, "***")
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)


def output_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """An output's ``postgres:`` mapping with defaults filled (plain data for the run spec)."""
    pk = spec.get("primary_key") or []
    return {"dsn": spec.get("dsn"), "table": str(spec.get("table")),
            "mode": spec.get("mode", "replace"), "primary_key": [pk] if isinstance(pk, str)
            else list(pk)}


def dsn_label(dsn: Any) -> str:
    """How messages name a connection: its environment variable, never its value."""
    return f"${dsn['env']}" if isinstance(dsn, dict) else "the 'dsn' of the file"


def resolve_dsn(dsn: Any, where: str) -> str:
    """The connection string of a ``dsn:`` value (ConfigError when its variable is unset)."""
    if isinstance(dsn, dict):
        var = str(dsn.get("env"))
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"{where}: 'dsn' reads the environment variable '{var}', which "
                              f"is not set. Set it before running (export {var}=postgresql://"
                              "user:password@host:5432/db).")
        return value
    return str(dsn)


INSTALL_HINT = "pip install 'dockyard[postgres]'"


# ---- connecting --------------------------------------------------------------------------

def driver() -> Any:
    """ADBC's PostgreSQL DB-API module (an optional dependency: a ConfigError without it)."""
    try:
        import adbc_driver_postgresql.dbapi as pg_dbapi
    except ImportError:
        raise ConfigError("PostgreSQL sources and outputs need the PostgreSQL driver: "
                          f"{INSTALL_HINT}.") from None
    return pg_dbapi


def first_line(e: BaseException, dsn: str | None) -> str:
    """The driver's error as one line, with any password masked."""
    text = str(e).strip()
    # ADBC prefixes the status ("IO: [libpq] ..."): the libpq text is what the user can act on.
    text = re.sub(r"^[A-Z_]+: (\[libpq\] )?", "", text)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    # "Failed to prepare query: ERROR:  syntax error ...": the server's own words.
    # The echoed query before it is dropped too.
    if "ERROR:  " in line:
        line = line.split("ERROR:  ", 1)[1]
    return mask(line, dsn).rstrip(".") + "."


def connect(dsn_value: Any, where: str) -> Any:
    """An ADBC connection (autocommit off: every write is one transaction)."""
    pg = driver()
    dsn = resolve_dsn(dsn_value, where)
    try:
        return pg.connect(dsn)
    except pg.Error as e:
        raise ExecutionError(f"{where}: cannot connect to PostgreSQL ({dsn_label(dsn_value)}): "
                             f"{first_line(e, dsn)}") from None


def close_quietly(obj: Any) -> None:
    """Close a connection or cursor; closing a broken one changes nothing."""
    try:
        obj.close()
    except Exception:  # noqa: BLE001 - closing a broken connection changes nothing
        pass


# ---- names -------------------------------------------------------------------------------

def qi(name: str) -> str:
    """A quoted PostgreSQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def split_table(table: str) -> tuple[str | None, str]:
    """``schema.table`` -> (schema, table); a bare name has no schema (the search path's)."""
    schema, dot, name = table.strip().partition(".")
    return (schema, name) if dot else (None, schema)


def qualified(table: str) -> str:
    schema, name = split_table(table)
    return f"{qi(schema)}.{qi(name)}" if schema else qi(name)
