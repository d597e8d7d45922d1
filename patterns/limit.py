"""Keep the first `n` rows.

`n` is a whole number, 0 or more (0 gives an empty table with the input's columns). The rows
kept are arbitrary: no order is applied, so which n rows you get may differ between runs and
engines (fine for a quick look or a size cap). An order from an earlier step is not guaranteed
to survive into this one, not even from `sort` right before: to keep the first n rows by an
order (overall or per group), use `top_n`.
"""

from __future__ import annotations

from pydantic import Field
from sqlglot import exp

from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams


class Params(PatternParams):
    n: int = Field(ge=0, le=2**63 - 1, strict=True,
                   description="Number of rows to keep (0 or more).")


def build(p: Params, ctx: BuildContext) -> exp.Query:
    return exp.select(exp.Star()).from_(ctx.input.table()).limit(p.n)


PATTERN = Pattern(
    name="limit", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"n": 100},
    keywords=("first rows", "head", "top rows"),
)
