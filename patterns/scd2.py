"""Build a type 2 slowly changing dimension (history with valid_from/valid_to) from snapshots.

The input is a series of full snapshots of a table: every row carries the `snapshot_time` of the
snapshot it belongs to, and the snapshots are the distinct `snapshot_time` values of the whole
input (rows with a NULL `snapshot_time` are ignored). Each key (`keys`, NULL counting as one
value) must appear at most once per snapshot: the step fails with the offending keys otherwise
(deduplicate first, e.g. with `dedupe`). The output has one row per key and version: a new
version starts at a key's first snapshot and whenever a `tracked` column differs from the key's
previous snapshot (compared NULL-safely: NULL to NULL is no change); consecutive identical
snapshots collapse into one version, and a key that changes back to an earlier value starts a
new version. `valid_from` is the snapshot_time at which the version first appeared; `valid_to`
is the snapshot_time of the key's next version, NULL while the version is current; `is_current`
is true when `valid_to` is NULL. With `invalidate_hard_deletes: true`, a key missing from a
snapshot is deleted: its version ends (`valid_to`) at the first snapshot without it, and when it
comes back it starts a new version even with unchanged values (as dbt snapshots). Without it, a
key that disappears stays current. Columns: `keys`, `tracked`, then the other input columns
(values from the version's first snapshot), `valid_from`, `valid_to`, `is_current`.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from sqlglot import exp

from patterns.base import (
    BuildContext,
    Built,
    Check,
    ParamError,
    Pattern,
    PatternParams,
    alias,
    col,
    column_field,
    columns_field,
    distinct_names,
    ident,
    literal,
)

OUTPUT_COLUMNS = ("valid_from", "valid_to", "is_current")
_P = "__scd_"  # prefix of the helper columns
PREV_TS, PREV_SNAP, NEXT_SNAP, SNAP, NEW, VERSION, END = (
    f"{_P}{n}" for n in ("prev_ts", "prev_snap", "next_snap", "snap", "new", "version", "end"))


def _distinct_list(v: list[str]) -> list[str]:
    return distinct_names(v, empty="list at least one column")


class Params(PatternParams):
    keys: list[str] = columns_field("Columns that identify an entity (unique per snapshot).")
    tracked: list[str] = columns_field("Columns whose changes start a new version.")
    snapshot_time: str = column_field("Column with the time (or number) of each row's "
                                      "snapshot.")
    invalidate_hard_deletes: bool = Field(False, description="End a key's version at the "
                                          "first snapshot that lacks the key (and start a new "
                                          "version if it comes back).")

    _check_keys = field_validator("keys", "tracked")(_distinct_list)


def _sub(query: exp.Select, name: str) -> exp.Subquery:
    return exp.Subquery(this=query, alias=exp.TableAlias(this=ident(name)))


def _ts_order(ts: str, table: str | None = None) -> exp.Order:
    return exp.Order(expressions=[exp.Ordered(this=col(ts, table), nulls_first=False)])


def _prev(i: int) -> str:
    """Helper column with the previous value of the i-th tracked column."""
    return f"{_P}prev_{i}"


def build(p: Params, ctx: BuildContext) -> Built:
    names = ctx.input.column_names
    ts = p.snapshot_time
    overlap = next((c for c in p.tracked if c in p.keys), None)
    if overlap:
        raise ParamError("tracked", f"column '{overlap}' is a key; list it in 'keys' only.")
    if ts in p.keys or ts in p.tracked:
        raise ParamError("snapshot_time", f"column '{ts}' is the snapshot time; it cannot "
                         "also be a key or tracked column.")
    clash = next((c for c in names if c.startswith(_P) or (c in OUTPUT_COLUMNS and c != ts)),
                 None)
    if clash:
        raise ParamError(None, f"the input has a column '{clash}', which scd2 writes (or uses "
                         "for its helper columns). Rename it first.")
    others = [c for c in names if c not in p.keys and c not in p.tracked and c != ts]
    data = [*p.keys, *p.tracked, *others, ts]
    by_key = [col(k) for k in p.keys]
    src = ctx.input.table("i")
    not_null_ts = exp.Not(this=exp.Is(this=col(ts, "i"), expression=exp.Null()))

    def over_key(func: exp.Expr) -> exp.Window:
        return exp.Window(this=func, partition_by=[c.copy() for c in by_key],
                          order=_ts_order(ts))

    # 1. Each row with the key's previous snapshot row (LAG) and, for hard deletes, the
    #    neighbouring snapshots of the whole input.
    lagged = exp.select(*(col(c, "i") for c in data),
                        alias(over_key(exp.Lag(this=col(ts))), PREV_TS),
                        *(alias(over_key(exp.Lag(this=col(c))), _prev(i))
                          for i, c in enumerate(p.tracked)))
    lagged = lagged.from_(src).where(not_null_ts)
    if p.invalidate_hard_deletes:
        snap_order = _ts_order(SNAP)
        snaps = exp.select(
            col(SNAP),
            alias(exp.Window(this=exp.Lag(this=col(SNAP)), order=snap_order), PREV_SNAP),
            alias(exp.Window(this=exp.Lead(this=col(SNAP)), order=snap_order.copy()),
                  NEXT_SNAP),
        ).from_(_sub(exp.select(alias(col(ts), SNAP)).distinct().from_(ctx.input.table())
                     .where(exp.Not(this=exp.Is(this=col(ts), expression=exp.Null()))),
                     "d"))
        lagged = lagged.select(col(PREV_SNAP, "n"), col(NEXT_SNAP, "n")).join(
            _sub(snaps, "n"), on=exp.EQ(this=col(ts, "i"), expression=col(SNAP, "n")))

    # 2. A row starts a version: first row of the key, a tracked value changed, or (hard
    #    deletes) the key was missing from the snapshot before.
    starts: list[exp.Expr] = [exp.Is(this=col(PREV_TS), expression=exp.Null())]
    starts += [exp.NullSafeNEQ(this=col(c), expression=col(_prev(i)))
               for i, c in enumerate(p.tracked)]
    if p.invalidate_hard_deletes:
        starts.append(exp.NEQ(this=col(PREV_TS), expression=col(PREV_SNAP)))
    is_new = exp.Case(ifs=[exp.If(this=exp.or_(*starts), true=literal(1))], default=literal(0))
    flagged = exp.select(exp.Star(), alias(is_new, NEW)).from_(_sub(lagged, "l"))

    valid_from = alias(col(ts), "valid_from")
    kept = [col(c) for c in data if c != ts]
    if not p.invalidate_hard_deletes:
        # 3. Versions are the starting rows; each ends where the key's next version starts.
        versions = exp.select(*kept, valid_from, alias(over_key(exp.Lead(this=col(ts))),
                                                       "valid_to")).from_(
            _sub(flagged, "f")).where(exp.EQ(this=col(NEW), expression=literal(1)))
    else:
        # 3. Number the versions of each key; a version ends at the snapshot after its last
        #    row (the next version's start, or the first snapshot without the key).
        numbered = exp.select(exp.Star(), alias(exp.Window(
            this=exp.Sum(this=col(NEW)), partition_by=[c.copy() for c in by_key],
            order=_ts_order(ts), spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED",
                                                     start_side="PRECEDING",
                                                     end="CURRENT ROW")), VERSION)).from_(
            _sub(flagged, "f"))
        ends = exp.select(exp.Star(), alias(exp.Window(
            this=exp.LastValue(this=col(NEXT_SNAP)),
            partition_by=[*(c.copy() for c in by_key), col(VERSION)], order=_ts_order(ts),
            spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                                end="UNBOUNDED", end_side="FOLLOWING")), END)).from_(
            _sub(numbered, "v"))
        versions = exp.select(*kept, valid_from, alias(col(END), "valid_to")).from_(
            _sub(ends, "e")).where(exp.EQ(this=col(NEW), expression=literal(1)))
    query = exp.select(*(col(c) for c in data if c != ts), col("valid_from"), col("valid_to"),
                       alias(exp.Is(this=col("valid_to"), expression=exp.Null()),
                             "is_current")).from_(_sub(versions, "s"))

    count = exp.Count(this=exp.Star())
    duplicates = exp.select(*(col(k) for k in p.keys), col(ts), alias(count, "rows")).from_(
        ctx.input.table()).where(exp.Not(this=exp.Is(this=col(ts), expression=exp.Null()))
    ).group_by(*(col(k) for k in p.keys), col(ts)).having(
        exp.GT(this=count.copy(), expression=literal(1)))
    return Built(query=query, checks=[Check(name="keys are unique per snapshot",
                                            failing=duplicates)])


PATTERN = Pattern(
    name="scd2", category="Slowly changing", arity=1, params=Params, build=build, doc=__doc__,
    example={"keys": ["customer_id"], "tracked": ["email", "tier"],
             "snapshot_time": "snapshot_at", "invalidate_hard_deletes": True},
)
