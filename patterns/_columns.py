"""Output columns of a step: computed columns added to its input (safe_divide, ...), and
prefixed or suffixed names (select, drop).

Not a pattern (the leading underscore keeps it out of the palette).
"""

from __future__ import annotations

from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext
from patterns.sql import alias, col


def with_columns(ctx: BuildContext, new: dict[str, exp.Expr], param: str) -> exp.Select:
    """The input's columns with ``new`` (name -> expression): a name the input has is replaced
    in its place, others are added at the end in order. A name that differs from an input
    column only in case is refused (``param`` names where it was given), as derive does."""
    existing = {c.lower(): c for c in ctx.input.column_names}
    for name in new:
        same = existing.get(name.lower())
        if same is not None and same != name:
            raise ParamError(param, f"'{name}' differs only in case from the existing column "
                             f"'{same}'. Write '{same}' to replace it, or choose another name.")
    items: list[exp.Expr] = [alias(new[c], c) if c in new else col(c)
                             for c in ctx.input.column_names]
    items += [alias(e, n) for n, e in new.items() if n.lower() not in existing]
    return exp.select(*items).from_(ctx.input.table())

def renamed(column: str, prefix: str, suffix: str) -> exp.Expr:
    """The column, aliased ``prefix + column + suffix`` when either is given (dbt_utils.star)."""
    if not prefix and not suffix:
        return col(column)
    return alias(col(column), f"{prefix}{column}{suffix}")
