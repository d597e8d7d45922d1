"""Read values out of a JSON text column into new text columns, one per path.

Each entry of `paths` adds a VARCHAR column named after its key, after the input's columns, holding
the value found at the path in `column`: a string without its quotes, a number or boolean as
text (`42`, `true`), an object or list as JSON text. A missing key, an index past the end of a
list, a JSON `null` or a NULL document give NULL. Paths are simple JSONPath: `$` then `.key`,
`['key']` (for keys with spaces or dots) and `[0]` (list positions from 0); wildcards, filters
and negative positions are not supported, because engines disagree on them. `column` must hold
valid JSON text or NULL: on DuckDB a malformed document fails the step (filter it out first,
e.g. with `json_valid(column)`), and how a number is written may differ between engines
(`1.50` can come back as `1.5`), so cast the text to a number to compare values.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_field
from patterns.sql import alias, col

_TEXT_TYPES = ("VARCHAR", "JSON")
_STEP_RE = re.compile(
    r"\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\[(?P<index>\d+)\]"
    r"|\['(?P<sq>[^'\"\\]+)'\]"
    r'|\["(?P<dq>[^\'"\\]+)"\]')
_PATH_HELP = ("Write paths like '$.user.id', '$.items[0].sku' or \"$['key with spaces']\" "
              "(no wildcards, filters or negative positions)")


def parse_path(path: str) -> list[exp.Expr]:
    """The steps of a simple JSONPath (``$.a[0]['b c']``) as sqlglot JSONPath parts.

    Raises ValueError naming the first character that is not understood.
    """
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"'{path}' is not a supported JSON path: it must start with '$'. "
                         + _PATH_HELP)
    parts: list[exp.Expr] = [exp.JSONPathRoot()]
    pos = 1
    while pos < len(text):
        m = _STEP_RE.match(text, pos)
        if not m:
            raise ValueError(f"'{path}' is not a supported JSON path (at '{text[pos:]}'). "
                             + _PATH_HELP)
        if m["index"] is not None:
            parts.append(exp.JSONPathSubscript(this=int(m["index"])))
        else:
            parts.append(exp.JSONPathKey(this=m["key"] or m["sq"] or m["dq"]))
        pos = m.end()
    return parts


class Params(PatternParams):
    column: str = column_field("Column holding JSON text (VARCHAR or JSON).")
    paths: dict[str, str] = Field(
        description="New column name: JSON path, e.g. {user_id: '$.user.id', "
                    "first_sku: '$.items[0].sku'}.")

    @field_validator("paths")
    @classmethod
    def _paths_ok(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("give at least one 'name: path' entry")
        for name, path in v.items():
            if not name:
                raise ValueError("a new column name is empty")
            try:
                parse_path(path)
            except ValueError as e:
                raise ValueError(f"'{name}': {e}") from None
        return v


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    type_ = rel.type_of(p.column)
    if type_.upper() not in _TEXT_TYPES:
        raise ParamError("column", f"column '{p.column}' is {type_}, not JSON text. Convert it "
                         "to text first (cast to VARCHAR).")
    selects: list[exp.Expr] = [col(c) for c in rel.column_names]
    for name, path in p.paths.items():
        if rel.has(name):
            raise ParamError(f"paths.{name}", f"'{name}' is already a column of input "
                             f"'{rel.name}'. Choose another name for the extracted value.")
        extract = exp.JSONExtractScalar(this=col(p.column),
                                        expression=exp.JSONPath(expressions=parse_path(path)))
        selects.append(alias(extract, name))
    return exp.select(*selects).from_(rel.table())


PATTERN = Pattern(
    name="json_extract", category="Reshape", arity=1, params=Params, build=build, doc=__doc__,
    example={"column": "payload", "paths": {"user_id": "$.user.id", "sku": "$.items[0].sku"}},
    keywords=("parse json", "json path", "nested fields", "extract field"),
)
