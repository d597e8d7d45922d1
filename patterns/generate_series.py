"""Generate the whole numbers from `lower_bound` to `upper_bound`, one row each.

As dbt_utils.generate_series(upper_bound): one BIGINT column, `generated_number` by default,
counting 1, 2, ... `upper_bound` (both ends included). `lower_bound` (default 1) starts it
elsewhere, e.g. 0; it must not be above `upper_bound`. The step has no inputs: join or
cross-join it with another step, e.g. to make one row per day number or per slot. At most
10,000,000 rows. The SQL uses a generated integer series (DuckDB `generate_series`, Spark
`sequence` + `explode`), so both engines give the same rows.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from sqlglot import exp

from patterns.base import BuildContext, Pattern
from patterns.fields import OutputName, PatternParams
from patterns.sql import alias, col, ident, literal

MAX_ROWS = 10_000_000
_N = "n"


class Params(PatternParams):
    upper_bound: int = Field(description="The last number (included).")
    lower_bound: int = Field(1, description="The first number (included); default 1.")
    column: OutputName = Field("generated_number", description="Name of the output column.")

    @model_validator(mode="after")
    def _bounds(self) -> Params:
        if self.lower_bound > self.upper_bound:
            raise ValueError(f"lower_bound ({self.lower_bound}) is above upper_bound "
                             f"({self.upper_bound})")
        count = self.upper_bound - self.lower_bound + 1
        if count > MAX_ROWS:
            raise ValueError(f"the series would have {count:,} rows (more than "
                             f"{MAX_ROWS:,}); check lower_bound and upper_bound")
        return self


def build(p: Params, ctx: BuildContext) -> exp.Query:
    bigint = exp.DataType.build("BIGINT")
    series = exp.select(alias(exp.Explode(this=exp.GenerateSeries(
        start=exp.cast(literal(p.lower_bound), bigint),
        end=exp.cast(literal(p.upper_bound), bigint))), _N))
    assert p.column is not None
    return exp.select(alias(exp.cast(col(_N, "s"), bigint), p.column)).from_(
        exp.Subquery(this=series, alias=exp.TableAlias(this=ident("s"))))


PATTERN = Pattern(
    name="generate_series", category="Columns & rows", arity=0, params=Params, build=build,
    doc=__doc__, example={"upper_bound": 100},
    keywords=("numbers", "sequence", "range", "integers", "row numbers", "series"),
)
