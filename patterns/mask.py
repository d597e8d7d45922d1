"""Hide sensitive values: hash, redact, blank or partly mask the listed columns in place.

Each listed column keeps its name and position; the others pass through. The modes are:
`hash`, the SHA-256 of `salt` followed by the value as text (64 lowercase hex characters; equal
values give equal hashes, so hashed columns can still be joined and counted); `redact`, the fixed
text `***` whatever the value; `null`, NULL of the column's type; `last4`, the value as text with
every character but the last four replaced by `*` (`4111111111111111` becomes
`************1111`; values of four characters or fewer are masked entirely). `hash`, `redact`
and `last4` give VARCHAR columns. NULL stays NULL in every mode.

Values are hashed as the engine writes them as text, so hashes of integers, text and dates match
across engines, those of floating-point numbers and timestamps may not. The salt makes hashes
hard to reverse by trying likely values; it appears in the compiled SQL, so keep it out of the
pipeline file: declare a pipeline param, write `salt: "{{ mask_salt }}"`, and set it from the
environment at run time (`dockyard run pipeline.yaml --set mask_salt="$MASK_SALT"`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from sqlglot import exp

from builder.errors import did_you_mean
from builder.pipeline.params import PARAM_RE
from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, column_map_field
from patterns.sql import alias, col, literal

Mode = Literal["hash", "redact", "null", "last4"]
REDACTED = "***"


class Params(PatternParams):
    columns: dict[str, Mode] = column_map_field(
        "Column: how to mask it (hash, redact, null or last4).")
    salt: str = Field("", description="Text put before each value when hashing; use a pipeline "
                                      "param ('{{ mask_salt }}') set from the environment.")

    @field_validator("columns")
    @classmethod
    def _columns_ok(cls, v: dict[str, Mode]) -> dict[str, Mode]:
        if not v:
            raise ValueError("list at least one column to mask, e.g. {email: hash}")
        return v


def render_salt(salt: str, ctx: BuildContext) -> str:
    """The salt with each ``{{ name }}`` replaced by the pipeline param's value as text."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in ctx.pipeline_params:
            raise ParamError("salt", f"unknown param '{name}' in '{{{{ {name} }}}}'."
                             + (did_you_mean(name, ctx.pipeline_params) or
                                " Declare it under 'params:' at the top of the pipeline."))
        value = ctx.pipeline_params[name]
        return "" if value is None else str(value)

    return PARAM_RE.sub(sub, salt)


def _text(c: str) -> exp.Expr:
    return exp.cast(col(c), exp.DataType.build("VARCHAR"))


def _masked(c: str, mode: Mode, salt: str, ctx: BuildContext) -> exp.Expr:
    if mode == "null":
        return exp.cast(exp.Null(), ctx.data_type(ctx.input.type_of(c)))
    if mode == "redact":
        return exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=col(c), expression=exp.Null())),
                                    true=literal(REDACTED))])
    if mode == "hash":
        # NULL || anything is NULL on every engine, so NULL stays NULL.
        text = exp.DPipe(this=literal(salt), expression=_text(c), safe=False) if salt \
            else _text(c)
        return exp.SHA2(this=text, length=exp.Literal.number(256))
    length = exp.Length(this=_text(c))
    stars = exp.Repeat(this=literal("*"), times=exp.Sub(this=length.copy(),
                                                        expression=exp.Literal.number(4)))
    keep = exp.Right(this=_text(c), expression=exp.Literal.number(4))
    return exp.Case(
        ifs=[exp.If(this=exp.LTE(this=length.copy(), expression=exp.Literal.number(4)),
                    true=exp.Repeat(this=literal("*"), times=length.copy()))],
        default=exp.DPipe(this=stars, expression=keep, safe=False))


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rel = ctx.input
    salt = render_salt(p.salt, ctx)
    selects: list[exp.Expr] = [
        alias(_masked(c, p.columns[c], salt, ctx), c) if c in p.columns else col(c)
        for c in rel.column_names]
    return exp.select(*selects).from_(rel.table())


PATTERN = Pattern(
    name="mask", category="Keys & privacy", arity=1, params=Params, build=build, doc=__doc__,
    example={"columns": {"email": "hash", "card_number": "last4", "notes": "redact"},
             "salt": "{{ mask_salt }}"},
    keywords=("pii", "anonymize", "hash", "redact", "privacy", "gdpr", "hide"),
    provides=("mask",),
)
