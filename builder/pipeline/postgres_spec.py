"""The shape of a ``postgres:`` mapping in a pipeline file (a source's or an output's).

Checked when the file is read (:mod:`builder.pipeline.model`) and when the app edits it
(:mod:`builder.pipeline.edit`); running against PostgreSQL is :mod:`builder.engines.postgres`,
which reads these keys from here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from builder.errors import did_you_mean

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
