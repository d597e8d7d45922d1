"""The shape of a ``postgres:`` mapping in a pipeline file (a source's or an output's), as
pydantic models like the rest of the file (:mod:`builder.pipeline.filemodel`).

Checked when the file is read (:mod:`builder.pipeline.model`) and when the app edits it
(:mod:`builder.pipeline.edit`); running against PostgreSQL is :mod:`builder.engines.postgres`,
which reads these keys from here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from builder.errors import did_you_mean

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
