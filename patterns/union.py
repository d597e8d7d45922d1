"""Stack the rows of all inputs, matching columns by name (UNION ALL: duplicates are kept).

Columns are matched by name, ignoring case (as DuckDB and Spark do). The result has the first
input's columns in their order, then each column that only later inputs have, in order of
appearance; a column an input lacks is NULL in that input's rows. Duplicate rows are all kept
(UNION ALL); use `dedupe` afterwards to remove them. The order of the output rows is not defined.

When the inputs disagree on a column's type, it becomes the common type: integers widen to the
widest integer (an unsigned one to the next bigger signed one), integers and decimals become a
DECIMAL wide enough for both (at most 38 digits), any mix with FLOAT or DOUBLE becomes DOUBLE,
and DATE with TIMESTAMP becomes TIMESTAMP. Any other mix (e.g. VARCHAR and INTEGER) is an error
that names both types: cast one of them first. `source_column`, when set, adds a column holding
the id of the input (source or step) each row comes from. As dbt_utils.union_relations,
`include` keeps only the listed columns and `exclude` drops the listed ones (names ignore case;
give one or the other); the types of dropped columns do not matter.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from builder.plan.types import ParamError, Relation
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, columns_field, distinct_names
from patterns.sql import alias, col, literal

# Integer types by width rank; an unsigned type counts as the next wider signed one.
_INT_RANK = {"TINYINT": 1, "SMALLINT": 2, "INTEGER": 3, "BIGINT": 4, "HUGEINT": 5,
             "UTINYINT": 2, "USMALLINT": 3, "UINTEGER": 4, "UBIGINT": 5}
_INT_BY_RANK = {1: "TINYINT", 2: "SMALLINT", 3: "INTEGER", 4: "BIGINT", 5: "HUGEINT"}
# Decimal digits an integer type needs.
_INT_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19, "HUGEINT": 39,
               "UTINYINT": 3, "USMALLINT": 5, "UINTEGER": 10, "UBIGINT": 20}
_FLOATS = {"FLOAT", "DOUBLE"}
_DATETIMES = {"DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"}
_DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


class Params(PatternParams):
    source_column: str | None = Field(
        None, description="Name of a new column holding the id of the input each row comes "
                          "from (leave empty for none).")

    include: list[str] = columns_field(
        "Keep only these columns (of any input; default: every column).", input=None,
        default=[])
    exclude: list[str] = columns_field(
        "Drop these columns (of any input).", input=None, default=[])

    @field_validator("include", "exclude")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return distinct_names(v)

    @model_validator(mode="after")
    def _one_of(self) -> Params:
        if self.include and self.exclude:
            raise ValueError("give 'include' or 'exclude', not both")
        return self

    @field_validator("source_column")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("source_column must not be empty; leave it out for no column")
        return v


def _common_type(types: list[str]) -> str | None:
    """The type every one of ``types`` (DuckDB names) converts to without loss, or None."""
    kinds = {t.upper() for t in types}
    if len(kinds) == 1:
        return types[0]
    decimals = [_DECIMAL_RE.match(k) for k in kinds]
    numeric = all(k in _INT_RANK or k in _FLOATS or m for k, m in zip(kinds, decimals))
    if numeric:
        if kinds & _FLOATS:
            return "DOUBLE"
        if not any(decimals):
            return _INT_BY_RANK[max(_INT_RANK[k] for k in kinds)]
        scale = max(int(m[2]) for m in decimals if m)
        digits = max([int(m[1]) - int(m[2]) for m in decimals if m]
                     + [_INT_DIGITS[k] for k in kinds if k in _INT_DIGITS])
        return f"DECIMAL({min(38, digits + scale)},{scale})"
    if kinds <= _DATETIMES:
        return "TIMESTAMP"
    return None


def build(p: Params, ctx: BuildContext) -> exp.Query:
    rels = ctx.inputs
    names: dict[str, str] = {}  # lower-case name -> output name (first spelling)
    seen: dict[str, list[tuple[Relation, str]]] = {}  # lower-case name -> (input, type)
    for rel in rels:
        for c in rel.columns:
            key = c.name.lower()
            names.setdefault(key, c.name)
            seen.setdefault(key, []).append((rel, c.type))
    if p.include or p.exclude:
        listed = {c.lower() for c in (p.include or p.exclude)}
        names = {k: n for k, n in names.items() if (k in listed) == bool(p.include)}
        seen = {k: v for k, v in seen.items() if k in names}
        if not names:
            raise ParamError("exclude", "every column would be dropped; keep at least one.")
    if p.source_column is not None and p.source_column.lower() in names:
        owner = seen[p.source_column.lower()][0][0].name
        raise ParamError("source_column", f"column '{p.source_column}' already exists in input "
                         f"'{owner}'. Choose another name for 'source_column'.")
    common: dict[str, str] = {}
    for key, found in seen.items():
        t = _common_type([typ for _, typ in found])
        if t is None:
            (r1, t1), (r2, t2) = next(
                (a, b) for a in found for b in found if _common_type([a[1], b[1]]) is None)
            raise ParamError(None, f"column '{names[key]}' is {t1} in input '{r1.name}' but "
                             f"{t2} in input '{r2.name}', and union does not convert between "
                             "these types. Cast one of them first (e.g. with a 'cast' step).")
        common[key] = t

    branches: list[exp.Select] = []
    for rel in rels:
        own = {c.name.lower(): c for c in rel.columns}
        projections: list[exp.Expr] = []
        for key, name in names.items():
            to = ctx.data_type(common[key])
            have = own.get(key)
            if have is None:
                projections.append(alias(exp.Cast(this=exp.Null(), to=to), name))
            elif have.type != common[key]:
                projections.append(alias(exp.Cast(this=col(have.name), to=to), name))
            elif have.name != name:
                projections.append(alias(col(have.name), name))
            else:
                projections.append(col(have.name))
        if p.source_column is not None:
            projections.append(alias(literal(rel.name), p.source_column))
        branches.append(exp.select(*projections).from_(rel.table()))
    if len(branches) == 1:
        return branches[0]
    return exp.union(*branches, distinct=False)


PATTERN = Pattern(
    name="union", category="Combine", arity="n", params=Params, build=build, doc=__doc__,
    example={"source_column": "source"},
    keywords=("append", "stack", "concatenate", "combine rows", "union all"),
)
