"""The ``postgres:`` mapping of a source or output in a pipeline file: its keys and its DSN.

What the file may say (``dsn: {env: PG_DSN}``, ``table`` or ``query``, an output's ``mode`` and
``primary_key``) is checked here when the file is loaded, edited or planned; connecting and
typing are in :mod:`builder.plan.postgres`, reading and writing rows in
:mod:`builder.engines.postgres`. A DSN written in the file may not carry a password, and
messages never show one.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from builder.errors import ConfigError, ExecutionError, did_you_mean

SOURCE_KEYS = ("dsn", "table", "query")
OUTPUT_KEYS = ("dsn", "table", "mode", "primary_key")
MODES = ("replace", "append", "merge")


def spec_problems(spec: Any, where: str, *, output: bool) -> list[str]:
    """Shape problems of a ``postgres:`` mapping of a source (or of an output)."""
    shape = ("{postgres: {dsn: {env: PG_DSN}, table: schema.table}}" if output else
             "{postgres: {dsn: {env: PG_DSN}, table: schema.table}} (or query: SELECT ...)")
    if not isinstance(spec, dict):
        return [f"{where}: 'postgres' must be a mapping like {shape}."]
    allowed = OUTPUT_KEYS if output else SOURCE_KEYS
    problems = [f"{where}: unknown key '{k}' in 'postgres'." + (
        did_you_mean(str(k), allowed) or " Allowed keys: " + ", ".join(allowed) + ".")
        for k in spec if k not in allowed]
    dsn = spec.get("dsn")
    if dsn is None:
        problems.append(f"{where}: 'postgres' needs 'dsn: {{env: PG_DSN}}' (the connection "
                        "string, read from an environment variable).")
    elif isinstance(dsn, dict):
        if list(dsn) != ["env"] or not isinstance(dsn["env"], str) or not dsn["env"]:
            problems.append(f"{where}: 'dsn' must be {{env: VARIABLE_NAME}}.")
    elif not isinstance(dsn, str):
        problems.append(f"{where}: 'dsn' must be {{env: VARIABLE_NAME}}.")
    elif has_password(dsn):
        problems.append(f"{where}: 'dsn' holds a password in the pipeline file. Put the "
                        "connection string in an environment variable and write "
                        "'dsn: {env: PG_DSN}'.")
    table, query = spec.get("table"), spec.get("query")
    if output:
        if not isinstance(table, str) or not table.strip():
            problems.append(f"{where}: 'postgres' needs 'table: schema.table' (the table to "
                            "write).")
        mode = spec.get("mode", "replace")
        if mode not in MODES:
            problems.append(f"{where}: mode '{mode}' is not supported. Valid values: "
                            + ", ".join(MODES) + ".")
        pk = spec.get("primary_key", [])
        if isinstance(pk, str):
            pk = [pk]
        if not isinstance(pk, list) or not all(isinstance(c, str) for c in pk):
            problems.append(f"{where}: 'primary_key' must be a list of column names.")
        elif mode == "merge" and not pk:
            problems.append(f"{where}: mode 'merge' needs 'primary_key' (the columns that "
                            "identify a row).")
    elif (table is None) == (query is None):
        problems.append(f"{where}: 'postgres' needs exactly one of 'table' or 'query'.")
    else:
        text = table if table is not None else query
        if not isinstance(text, str) or not text.strip():
            key = "table" if table is not None else "query"
            problems.append(f"{where}: '{key}' in 'postgres' must be non-empty text.")
    return problems


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
