"""Combine two inputs on key columns (inner, left, right, full, semi, anti or cross).

The first input is the left side, the second the right side. `on` is a list of key columns
that both inputs share (`[user_id]`), or a mapping from left to right column names when they
differ (`{customer_id: user_id}`). Key columns appear once in the result, under the left
name; for `right` and `full` joins the key takes the right side's value where the left side has
no match, so no key is lost. A non-key column of the right input whose name is already taken
gets `suffix` appended (`name_right`).

Keys match with SQL equality: a NULL key never matches anything (as in SQL and dbt), so such
rows survive only in the outer side of left/right/full joins and in `anti`. `semi` keeps the left
rows that have at least one match and `anti` those that have none; both return only the left
columns and never duplicate a left row. `cross` pairs every left row with every right row and
takes no `on`. A key that repeats on both sides multiplies rows, as in any SQL join; dedupe
first if that is not what you want.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, join_keys_field
from patterns.sql import alias, col

How = Literal["inner", "left", "right", "full", "semi", "anti", "cross"]
L, R = "l", "r"


class KeyedParams(PatternParams):
    """Params every two-input keyed pattern shares (join, asof_join): keys and the suffix."""

    on: Union[list[str], dict[str, str]] = join_keys_field(
        "Key columns shared by both inputs, or {left_column: right_column}.")
    suffix: str = Field("_right", description="Appended to right-side column names that "
                                              "collide with a left-side column.")

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, v: str) -> str:
        if not v:
            raise ValueError("suffix must not be empty (colliding columns need new names)")
        return v

    @model_validator(mode="after")
    def _unique_keys(self) -> KeyedParams:
        if isinstance(self.on, list) and len(set(self.on)) != len(self.on):
            dup = next(c for c in self.on if self.on.count(c) > 1)
            raise ValueError(f"key column '{dup}' is listed twice in 'on'")
        return self

    def key_pairs(self, ctx: BuildContext) -> list[tuple[str, str]]:
        """(left, right) key pairs, each checked against its input's columns."""
        pairs = list(self.on.items()) if isinstance(self.on, dict) else [(c, c) for c in self.on]
        for i, (lk, rk) in enumerate(pairs):
            where = f"on[{i}]" if isinstance(self.on, list) else f"on.{lk}"
            # the inputs' spellings (names match ignoring case)
            pairs[i] = (ctx.check_column(lk, where, input=0),
                        ctx.check_column(rk, where, input=1))
        return pairs


def right_outputs(taken: list[str], right: list[str], skip: set[str],
                  suffix: str) -> list[tuple[str, str]]:
    """(right column, output name) for the right columns not in ``skip``: a name already
    taken (DuckDB and Spark compare names case-insensitively) gets ``suffix``."""
    used = {c.lower() for c in taken}
    out = []
    for c in right:
        if c in skip:
            continue
        name = c if c.lower() not in used else c + suffix
        if name.lower() in used:
            raise ParamError("suffix", f"right column '{c}' would be renamed to '{name}', which "
                             "is already taken. Choose another suffix.")
        out.append((c, name))
        used.add(name.lower())
    return out


class Params(KeyedParams):
    how: How = Field("inner", description="Join type: which unmatched rows are kept.")

    @model_validator(mode="after")
    def _keys(self) -> Params:
        if self.how == "cross" and self.on:
            raise ValueError("a cross join takes no 'on' keys; remove 'on' or choose another "
                             "'how'")
        if self.how != "cross" and not self.on:
            raise ValueError(f"a {self.how} join needs 'on' keys (or use how: cross)")
        return self


def build(p: Params, ctx: BuildContext) -> exp.Query:
    left, right = ctx.inputs
    pairs = p.key_pairs(ctx)
    condition = exp.and_(*(exp.EQ(this=col(lk, L), expression=col(rk, R)) for lk, rk in pairs)) \
        if pairs else None

    if p.how in ("semi", "anti"):
        assert condition is not None
        # EXISTS never duplicates left rows and treats NULL keys as unmatched (unlike NOT IN).
        sub = exp.select(exp.Literal.number(1)).from_(right.table(R)).where(condition)
        test: exp.Expr = exp.Exists(this=sub)
        if p.how == "anti":
            test = exp.Not(this=test)
        return exp.select(*(col(c, L) for c in left.column_names)).from_(left.table(L)).where(test)

    key_by_left = dict(pairs)
    right_keys = {rk for _, rk in pairs}
    projections: list[exp.Expr] = []
    for c in left.column_names:
        if c in key_by_left and p.how in ("right", "full"):
            rk = key_by_left[c]
            value: exp.Expr = col(rk, R) if p.how == "right" else \
                exp.Coalesce(this=col(c, L), expressions=[col(rk, R)])
            projections.append(alias(value, c))
        else:
            projections.append(col(c, L))
    for c, name in right_outputs(left.column_names, right.column_names, right_keys, p.suffix):
        projections.append(col(c, R) if name == c else alias(col(c, R), name))

    query = exp.select(*projections).from_(left.table(L))
    kind = {"inner": None, "left": "LEFT", "right": "RIGHT", "full": "FULL",
            "cross": "CROSS"}[p.how]
    join = exp.Join(this=right.table(R), on=condition) if condition is not None else \
        exp.Join(this=right.table(R))
    if kind == "CROSS":
        join.set("kind", "CROSS")
    elif kind:
        join.set("side", kind)
    return query.join(join)


PATTERN = Pattern(
    name="join", category="Combine", arity=2, params=Params, build=build, doc=__doc__,
    example={"how": "left", "on": ["user_id"]},
    keywords=("merge", "lookup", "combine", "enrich", "vlookup", "left join", "match tables"),
    repeated_inputs=True,  # a self-join reads one input twice
)
