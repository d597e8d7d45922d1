"""Keep a deterministic sample of the rows: a fraction, or at most a number of rows.

Give exactly one of `fraction` (e.g. 0.1 keeps about 10% of the rows) or `rows` (at most that
many). The choice is not random: each row gets a hash, `md5` of its `key` columns as text plus
`seed`, the same on DuckDB and Spark, so the same data and seed always give the same sample. A
row is kept when its hash falls in the first `fraction` of the hash range (so the count is about,
not exactly, fraction x rows), or, with `rows`, when it is among the `rows` rows with the
smallest hashes. With `key`, sampling is key-consistent: all rows of a key are kept or none
(with `rows`: the keys with the smallest hashes whose rows together fit in `rows`), and the same
key values are chosen in every table sampled with the same key and seed, so joins on the key
stay intact. NULL key values form one key. Without `key`, every column of a portable type is
hashed, so identical rows are kept or dropped together. Key columns (and, without `key`, the
hashed columns) must be text, integer, decimal, boolean, date or timestamp columns, whose text
form is the same on every engine; FLOAT and DOUBLE columns are not hashed. Change `seed` for
another sample.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlglot import exp

from builder.plan.types import ParamError
from patterns.base import BuildContext, Pattern
from patterns.fields import PatternParams, columns_field
from patterns.sql import col, literal

_HASH_CHARS = 8  # the first 8 hex digits of the md5: 2**32 buckets
_NULL_TEXT = "\\N"
# Types whose CAST(... AS VARCHAR) text is the same on DuckDB and Spark.
_PORTABLE_TEXT = ("VARCHAR", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "DECIMAL", "BOOLEAN", "DATE", "TIMESTAMP")


def _portable(column_type: str) -> bool:
    t = column_type.upper()
    return t.split("(")[0] in _PORTABLE_TEXT


class Params(PatternParams):
    fraction: float | None = Field(
        None, gt=0, le=1, description="Share of rows to keep, more than 0 and at most 1 "
        "(approximate). Give this or 'rows'.")
    rows: int | None = Field(
        None, ge=0, strict=True, description="Keep at most this many rows. Give this or "
        "'fraction'.")
    key: list[str] | None = columns_field(
        "Columns whose values are kept or dropped together (e.g. a customer id). Default: "
        "sample single rows.", default=None)
    seed: int = Field(0, strict=True, description="Another seed gives another sample.")

    @field_validator("key", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("key")
    @classmethod
    def _valid_key(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("list at least one key column, or leave 'key' out")
            dup = next((c for c in v if v.count(c) > 1), None)
            if dup is not None:
                raise ValueError(f"column '{dup}' is listed twice")
        return v


def _hash(columns: list[str], seed: int) -> exp.Expr:
    """md5 hex of the columns' text, NULL-safe, '|'-separated, then '#<seed>'."""
    parts: list[exp.Expr] = []
    for i, c in enumerate(columns):
        if i:
            parts.append(literal("|"))
        parts.append(exp.func("coalesce", exp.cast(col(c), "VARCHAR"), literal(_NULL_TEXT)))
    parts.append(literal(f"#{seed}"))
    text = parts[0]
    for part in parts[1:]:
        text = exp.DPipe(this=text, expression=part)
    return exp.func("md5", text)


def build(p: Params, ctx: BuildContext) -> exp.Query:
    if (p.fraction is None) == (p.rows is None):
        raise ParamError("fraction", "give exactly one of 'fraction' (a share of the rows) or "
                         "'rows' (a number of rows).")
    rel = ctx.input
    if p.key:
        bad = [c for c in p.key if not _portable(rel.type_of(c))]
        if bad:
            raise ParamError("key", f"key column '{bad[0]}' is {rel.type_of(bad[0])}; use text, "
                             "integer, decimal, boolean, date or timestamp key columns (cast it "
                             "first), so the sample is the same on every engine.")
        hashed = p.key
    else:
        hashed = [c for c in rel.column_names if _portable(rel.type_of(c))]
        if not hashed:
            raise ParamError("key", "no column can be hashed the same on every engine (FLOAT, "
                             "DOUBLE and nested types cannot); give 'key' or cast a column.")
    digest = _hash(hashed, p.seed)
    table = rel.table()
    if p.fraction is not None:
        query = exp.select(exp.Star()).from_(table)
        if p.fraction >= 1:
            return query
        bound = f"{int(p.fraction * 16 ** _HASH_CHARS):0{_HASH_CHARS}x}"
        prefix = exp.Substring(this=digest, start=exp.Literal.number(1),
                               length=exp.Literal.number(_HASH_CHARS))
        # Lowercase hex strings of one length compare like the numbers they spell.
        return query.where(exp.LT(this=prefix, expression=literal(bound)))
    assert p.rows is not None
    by_hash = exp.Ordered(this=digest, desc=False, nulls_first=False)
    if not p.key:
        return exp.select(exp.Star()).from_(table).order_by(by_hash).limit(p.rows)
    # Running row count in hash order; peers (rows of one key share a hash) count together.
    n = "__dy_rows"
    while rel.has(n):
        n = "_" + n
    running = exp.Window(
        this=exp.Count(this=exp.Star()),
        order=exp.Order(expressions=[by_hash]),
        spec=exp.WindowSpec(kind="RANGE", start="UNBOUNDED", start_side="PRECEDING",
                            end="CURRENT ROW"))
    inner = exp.select(exp.Star(), exp.Alias(this=running, alias=exp.to_identifier(n, True)))
    inner = inner.from_(table)
    return exp.select(*(col(c) for c in rel.column_names)).from_(
        inner.subquery("s")).where(exp.LTE(this=col(n), expression=exp.Literal.number(p.rows)))


PATTERN = Pattern(
    name="sample", category="Columns & rows", arity=1, params=Params, build=build, doc=__doc__,
    example={"fraction": 0.1, "key": ["customer_id"], "seed": 42},
    keywords=("random rows", "subset", "sampling"),
)
