"""Build a type 2 slowly changing dimension (history with valid_from/valid_to) from snapshots.

The input is a series of full snapshots of a table: every row carries the `snapshot_time` of the
snapshot it belongs to, and the snapshots are the distinct `snapshot_time` values of the whole
input (rows with a NULL `snapshot_time` are ignored). Each key (`keys`, NULL counting as one
value) must appear at most once per snapshot: otherwise the step fails, naming a key and
snapshot that repeat (deduplicate first, e.g. with `dedupe`); this costs nothing extra, as it is
checked in the same ordered pass that finds the versions. The output has one row per key and
version: a new version starts at a key's first snapshot and whenever a `tracked` column differs
from the key's previous snapshot (compared NULL-safely: NULL to NULL is no change); consecutive
identical snapshots collapse into one version, and a key that changes back to an earlier value
starts a new version. `valid_from` is the snapshot_time at which the version first appeared;
`valid_to` is the snapshot_time of the key's next version, NULL while the version is current;
`is_current` is true when `valid_to` is NULL. With `invalidate_hard_deletes: true`, a key
missing from a snapshot is deleted: its version ends (`valid_to`) at the first snapshot without
it, and when it comes back it starts a new version even with unchanged values (as dbt
snapshots). Without it, a key that disappears stays current. Columns: `keys`, `tracked`, then the other input columns
(values from the version's first snapshot), `valid_from`, `valid_to`, `is_current`.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from sqlglot import exp

from patterns.base import (
    BuildContext,
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
PREV_TS, NEXT_TS, PREV_SNAP, NEXT_SNAP, SNAP, NEW, END = (
    f"{_P}{n}" for n in ("prev_ts", "next_ts", "prev_snap", "next_snap", "snap", "new", "end"))


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


def _next(i: int) -> str:
    """Helper column with the next value of the i-th tracked column."""
    return f"{_P}next_{i}"


def build(p: Params, ctx: BuildContext) -> exp.Query:
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
    hard = p.invalidate_hard_deletes

    def over_key(func: exp.Expr) -> exp.Window:
        return exp.Window(this=func, partition_by=[c.copy() for c in by_key],
                          order=_ts_order(ts))

    def changed(helper: str, i: int) -> exp.Expr:
        return exp.NullSafeNEQ(this=col(p.tracked[i]), expression=col(helper))

    # 1. One pass over the input, ordered by key and time: each row with the key's previous
    #    snapshot row (LAG) and, for hard deletes, its next one (LEAD, same sort) and the
    #    neighbouring snapshots of the whole input (a join with the few distinct times).
    lagged = exp.select(*(col(c, "i") for c in data),
                        alias(over_key(exp.Lag(this=col(ts))), PREV_TS),
                        *(alias(over_key(exp.Lag(this=col(c))), _prev(i))
                          for i, c in enumerate(p.tracked)))
    lagged = lagged.from_(src).where(not_null_ts)
    if hard:
        snap_order = _ts_order(SNAP)
        snaps = exp.select(
            col(SNAP),
            alias(exp.Window(this=exp.Lag(this=col(SNAP)), order=snap_order), PREV_SNAP),
            alias(exp.Window(this=exp.Lead(this=col(SNAP)), order=snap_order.copy()),
                  NEXT_SNAP),
        ).from_(_sub(exp.select(alias(col(ts), SNAP)).distinct().from_(ctx.input.table())
                     .where(exp.Not(this=exp.Is(this=col(ts), expression=exp.Null()))),
                     "d"))
        lagged = lagged.select(
            alias(over_key(exp.Lead(this=col(ts))), NEXT_TS),
            *(alias(over_key(exp.Lead(this=col(c))), _next(i)) for i, c in enumerate(p.tracked)),
            col(PREV_SNAP, "n"), col(NEXT_SNAP, "n")).join(
            _sub(snaps, "n"), on=exp.EQ(this=col(ts, "i"), expression=col(SNAP, "n")))

    # 2. A row starts a version: first row of the key, a tracked value changed, or (hard
    #    deletes) the key was missing from the snapshot before. With hard deletes a row also
    #    ends its version when the key's next row starts one or is not in the next snapshot.
    starts: list[exp.Expr] = [exp.Is(this=col(PREV_TS), expression=exp.Null())]
    starts += [changed(_prev(i), i) for i in range(len(p.tracked))]
    flags = [alias(exp.or_(*starts, exp.NEQ(this=col(PREV_TS), expression=col(PREV_SNAP)))
                   if hard else exp.or_(*starts), NEW)]
    if hard:
        ends: list[exp.Expr] = [exp.Is(this=col(NEXT_TS), expression=exp.Null())]
        ends += [changed(_next(i), i) for i in range(len(p.tracked))]
        ends.append(exp.NEQ(this=col(NEXT_TS), expression=col(NEXT_SNAP)))
        flags.append(alias(exp.or_(*ends), END))
    flagged = exp.select(exp.Star(), *flags).from_(_sub(lagged, "l"))

    def keep(rows: exp.Expr) -> exp.Expr:
        # Rows are ordered by key and time, so a key repeated in a snapshot has a row whose
        # previous row has the same time: fail there, in the pass that is made anyway.
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=col(PREV_TS), expression=col(ts)),
                                    true=_repeated_key_error(p.keys, ts))], default=rows)

    valid_from = alias(col(ts), "valid_from")
    kept = [col(c) for c in data if c != ts]
    if not hard:
        # 3. Versions are the starting rows; each ends where the key's next version starts.
        versions = exp.select(*kept, valid_from, alias(over_key(exp.Lead(this=col(ts))),
                                                       "valid_to")).from_(
            _sub(flagged, "f")).where(keep(col(NEW)))
    else:
        # 3. Only rows that start or end a version remain (a few per key, not one per
        #    snapshot). A version ends at the snapshot after its last row: its own row's when
        #    it starts and ends on the same row, else the next remaining row's.
        valid_to = exp.Case(ifs=[exp.If(this=col(END), true=col(NEXT_SNAP))],
                            default=over_key(exp.Lead(this=col(NEXT_SNAP))))
        bounded = exp.select(*kept, valid_from, alias(valid_to, "valid_to"), col(NEW)).from_(
            _sub(flagged, "f")).where(keep(exp.or_(col(NEW), col(END))))
        versions = exp.select(*kept, col("valid_from"), col("valid_to")).from_(
            _sub(bounded, "b")).where(col(NEW))
    return exp.select(*(col(c) for c in data if c != ts), col("valid_from"), col("valid_to"),
                      alias(exp.Is(this=col("valid_to"), expression=exp.Null()),
                            "is_current")).from_(_sub(versions, "s"))


def _repeated_key_error(keys: list[str], ts: str) -> exp.Expr:
    """error('scd2: key k=.. appears more than once in snapshot ..; ...') for the current row.

    ``error`` is DuckDB's; the Spark engine renders it as ``raise_error``.
    """
    def text(name: str) -> exp.Expr:
        return exp.Coalesce(this=exp.Cast(this=col(name), to=exp.DataType.build("VARCHAR")),
                            expressions=[literal("NULL")])

    parts: list[exp.Expr] = [literal("scd2: key ")]
    for i, k in enumerate(keys):
        parts += [literal(("" if i == 0 else ", ") + f"{k}="), text(k)]
    parts += [literal(f" appears more than once in snapshot {ts}="), text(ts),
              literal(". Deduplicate the snapshots first (e.g. with the dedupe pattern).")]
    message = parts[0]
    for part in parts[1:]:
        message = exp.DPipe(this=message, expression=part, safe=True)
    return exp.Anonymous(this="error", expressions=[message])


PATTERN = Pattern(
    name="scd2", category="Slowly changing", arity=1, params=Params, build=build, doc=__doc__,
    example={"keys": ["customer_id"], "tracked": ["email", "tier"],
             "snapshot_time": "snapshot_at", "invalidate_hard_deletes": True},
)
