"""Pull the host, the path and query parameters out of a URL column, as dbt_utils' web macros.

Each part becomes a text column (NULL when the URL is NULL), named `<prefix><part>`:

- `host` (dbt_utils.get_url_host): after removing `http://`, `https://` and `android-app://`,
  the text before the first `/` and `?`, e.g. `www.example.com` (a port stays: `example.com:8080`).
- `path` (dbt_utils.get_url_path): after removing `http://` and `https://` (only those: another
  scheme stays part of the path, as in dbt_utils), the text after the first `/` and before `?`,
  without the leading `/`, e.g. `blog/post` for `https://example.com/blog/post?id=1`; empty
  when the URL has no `/` after the host.
- each name in `parameters` (dbt_utils.get_url_parameter): the value after `name=` up to the
  next `&`, e.g. `google` for `utm_source` in `...?utm_source=google&utm_medium=cpc`; NULL when
  the URL does not have it or its value is empty. Values are not URL-decoded.

`parts` picks host and path (default both); `prefix` (default none) starts every new column's
name, e.g. `prefix: page_` gives `page_host`. A new column whose name the input already has
replaces it in its place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns._columns import with_columns
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_field, distinct_names
from patterns.sql import col, literal

Part = Literal["host", "path"]


def _both_parts() -> list[Part]:
    return ["host", "path"]


class Params(PatternParams):
    column: str = column_field("The text column holding URLs.")
    parts: list[Part] = Field(
        default_factory=_both_parts,
        description="Which of host and path to add (default both; [] for neither).")
    parameters: list[str] = Field(
        default_factory=list, description="Query parameters to add, each as a column named "
                                          "after it, e.g. [utm_source, utm_medium].")
    prefix: str = Field("", description="Text to put before each new column's name, e.g. "
                                        "'page_'.")

    @field_validator("parameters")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not name.strip() or any(ch in name for ch in "=&?#"):
                raise ValueError(f"parameter {name!r} must be a name without '=', '&', '?' "
                                 "or '#', e.g. utm_source")
        return distinct_names(v, "parameter")

    @model_validator(mode="after")
    def _something(self) -> Params:
        distinct_names(list(self.parts), "part")
        if not self.parts and not self.parameters:
            raise ValueError("choose at least one of 'parts' (host, path) or 'parameters'")
        clash = next((n for n in self.parameters if n in self.parts), None)
        if clash:
            raise ValueError(f"parameter '{clash}' would have the same column name as the "
                             f"part '{clash}'; set 'prefix' or drop one")
        return self


def _replace(text: exp.Expr, *removed: str) -> exp.Expr:
    for r in removed:
        text = exp.Anonymous(this="REPLACE", expressions=[text, literal(r), literal("")])
    return text


def _split(text: exp.Expr, delimiter: str, index: int) -> exp.Expr:
    return exp.SplitPart(this=text, delimiter=literal(delimiter), part_index=literal(index))


def build(p: Params, ctx: BuildContext) -> exp.Query:
    type_ = ctx.input.type_of(p.column)
    if type_.upper() != "VARCHAR":
        raise ParamError("column", f"column '{p.column}' is {type_}, not text. Cast it to "
                         "VARCHAR first (cast pattern).")
    url = col(p.column)
    new: dict[str, exp.Expr] = {}
    if "host" in p.parts:
        bare = _replace(url.copy(), "android-app://", "http://", "https://")
        new[f"{p.prefix}host"] = _split(_split(bare, "/", 1), "?", 1)
    if "path" in p.parts:
        bare = _replace(url.copy(), "http://", "https://")
        # Everything after the first '/', then before '?' (no '/': the path is empty).
        rest = exp.Substring(this=bare.copy(), start=exp.Add(
            this=exp.StrPosition(this=bare.copy(), substr=literal("/")),
            expression=literal(1)))
        has_slash = exp.GT(this=exp.StrPosition(this=bare.copy(), substr=literal("/")),
                           expression=literal(0))
        path = exp.Case(ifs=[exp.If(this=_is_null(url.copy()), true=exp.Null()),
                             exp.If(this=has_slash, true=rest)], default=literal(""))
        new[f"{p.prefix}path"] = _split(path, "?", 1)
    for name in p.parameters:
        value = _split(_split(url.copy(), f"{name}=", 2), "&", 1)
        new[f"{p.prefix}{name}"] = exp.Nullif(this=value, expression=literal(""))
    return with_columns(ctx, new, "prefix")


def _is_null(e: exp.Expr) -> exp.Expr:
    return exp.Is(this=e, expression=exp.Null())


PATTERN = Pattern(
    name="parse_url", category="Columns & rows", arity=1, params=Params, build=build,
    doc=__doc__, example={"column": "page_url", "parts": ["host", "path"],
                          "parameters": ["utm_source", "utm_medium"], "prefix": "page_"},
    keywords=("url", "link", "domain", "host", "query string", "utm", "web"),
)
