"""Extract the part of a text column that a regular expression matches.

`pattern` is searched for anywhere in `column` (add `^`/`$` to anchor it); the result is the text
of capturing group `group` of the first match: by default group 1 when the pattern has a group,
else the whole match (group 0). Rows where the pattern does not match, or `column` is NULL, get
NULL; a group that takes no part in the match (`(a)?b` on 'b') gives an empty string. The result
replaces `column` in place, or goes to the column named by `as` (an existing column of that name
is replaced in place, a new one is added at the end). The pattern must use the syntax that
DuckDB (RE2), Spark (Java) and Python share: lookahead/lookbehind, backreferences, named groups,
atomic groups, possessive quantifiers and `\\Z` are refused. Matching is case-sensitive; start
the pattern with `(?i)` to ignore case.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._regex import unportable
from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams, column_field
from patterns.sql import alias, col, literal


def _check_pattern(text: str) -> int:
    """Number of capturing groups; ValueError if Python rejects it or it is not portable."""
    try:
        compiled = re.compile(text)
    except re.error as e:
        raise ValueError(f"invalid regular expression: {e}") from None
    if compiled.groupindex:
        raise ValueError("named groups '(?P<name>...)' are not supported on every engine; use "
                         "a plain group '(...)' and its number")
    what = unportable(text, bool(compiled.flags & re.VERBOSE))
    if what:
        raise ValueError(f"{what} are not supported on every engine" if not what.startswith("'")
                         else f"{what} is not supported on every engine")
    return compiled.groups


class Params(PatternParams):
    column: str = column_field("Text column to search.")
    pattern: str = Field(description="Regular expression, e.g. '(\\d+)-(\\d+)'.")
    group: int | None = Field(
        None, description="Capturing group to return (0: the whole match). Default: 1 when the "
        "pattern has a group, else 0.")
    as_: OutputName = Field(
        None, alias="as", description="Column to write the result to. Default: replace "
        "'column' in place.")

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, v: str) -> str:
        if not v:
            raise ValueError("the pattern is empty")
        _check_pattern(v)
        return v


    @property
    def group_number(self) -> int:
        if self.group is not None:
            return self.group
        return 1 if _check_pattern(self.pattern) else 0


def build(p: Params, ctx: BuildContext) -> exp.Query:
    column_type = ctx.input.type_of(p.column)
    if column_type.upper() != "VARCHAR":
        raise ParamError("column", f"column '{p.column}' is {column_type}; regex_extract needs "
                         "text. Cast it to VARCHAR first with the 'cast' pattern.")
    groups = _check_pattern(p.pattern)
    if p.group is not None and not 0 <= p.group <= groups:
        raise ParamError("group", f"the pattern has {groups} group{'' if groups == 1 else 's'}; "
                         "use 0 (the whole match)" + (f" to {groups}." if groups else "."))
    target = p.as_ or p.column
    existing = {c.lower(): c for c in ctx.input.column_names}
    if target.lower() in existing and existing[target.lower()] != target:
        raise ParamError("as", f"'{target}' differs only in case from the existing column "
                         f"'{existing[target.lower()]}'. Write '{existing[target.lower()]}' to "
                         "replace it, or choose another name.")
    pattern = literal(p.pattern)
    # regexp_extract gives '' when nothing matches (DuckDB and Spark): make that NULL.
    value = exp.Case().when(
        exp.RegexpLike(this=col(p.column), expression=pattern),
        exp.RegexpExtract(this=col(p.column), expression=pattern.copy(),
                          group=exp.Literal.number(p.group_number)))
    items: list[exp.Expr] = [alias(value, c) if c == target else col(c)
                             for c in ctx.input.column_names]
    if target not in existing.values():
        items.append(alias(value, target))
    return exp.select(*items).from_(ctx.input.table())


PATTERN = Pattern(
    name="regex_extract", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"column": "email", "pattern": "@(.+)$", "as": "domain"},
    keywords=("regular expression", "pattern match", "parse text", "extract text"),
)
