"""Build a type 2 slowly changing dimension (history with valid_from/valid_to) from snapshots.

The input is a series of full snapshots of a table: every row carries the `snapshot_time` of the
snapshot it belongs to, and the snapshots are the distinct `snapshot_time` values of the whole
input (rows with a NULL `snapshot_time` are ignored). Each key (`keys`, NULL counting as one
value) must appear at most once per snapshot: otherwise the step fails, naming a key and
snapshot that repeat (deduplicate first, e.g. with `dedupe`). The output has one row per key and
version: a new version starts at a key's first snapshot and whenever a `tracked` column differs
from the key's previous snapshot (compared NULL-safely: NULL to NULL is no change); consecutive
identical snapshots collapse into one version, and a key that changes back to an earlier value
starts a new version. `valid_from` is the snapshot_time at which the version first appeared;
`valid_to` is the snapshot_time of the key's next version, NULL while the version is current;
`is_current` is true when `valid_to` is NULL. With `invalidate_hard_deletes: true`, a key
missing from a snapshot is deleted: its version ends (`valid_to`) at the first snapshot without
it, and when it comes back it starts a new version even with unchanged values (as dbt
snapshots). Without it, a key that disappears stays current. Columns: `keys`, `tracked`, then
the other input columns (values from the version's first snapshot), `valid_from`, `valid_to`,
`is_current`. Speed: a key each of whose values holds over one unbroken run of snapshots is
handled by one aggregate, without sorting its rows; the other keys need their rows sorted.
Slowly changing data is mostly of the first kind (the benchmark's snapshots, with one key in
five coming back to an old price, take a quarter less time than sorting every row); when most
keys flip back and forth, the aggregate is wasted and the step takes about 1.4 times as long.
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
RANK, FIRST, LAST, ROWS, DISTINCT, RANK_FIRST, RANK_LAST, PREV_LAST, NEXT_FIRST, COMPLEX = (
    f"{_P}{n}" for n in ("rank", "first", "last", "rows", "distinct", "rank_first", "rank_last",
                         "prev_last", "next_first", "complex"))
BLOCK = 62  # snapshot ranks per bit mask (bits 0-61 of a BIGINT)
SNAPS, GROUPS = f"{_P}snaps", f"{_P}groups"  # CTE names (suffixed with the step id)


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


def _sub(query: exp.Query, name: str) -> exp.Subquery:
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
    # Slowly changing keys rarely change back, so the versions are found in two ways:
    # 1. keys whose every (key, tracked values) group covers an unbroken run of snapshots, once
    #    each, with the groups not overlapping: each group is one version, found by an
    #    aggregate (no sort of the input);
    # 2. the other keys (a value that comes back, a gap, a repeated key): by the ordered pass
    #    over their rows, which also reports a key repeated in a snapshot.
    # Measured on the benchmark's 2.9M snapshot rows (20% of keys take the second way), the
    # step alone: 1.1-1.3 s instead of 1.5-1.75 s. With every key flipping back every three
    # days (3M rows): 2.1-2.9 s instead of 1.6-2.0 s (the aggregate is spent for nothing).
    # The snapshot list and the groups feed both ways: CTEs, so that DuckDB computes each once
    # (it materialises a CTE read twice; inlined, the aggregate ran twice).
    snaps, groups = _cte_name(SNAPS, ctx), _cte_name(GROUPS, ctx)
    simple = _group_versions(p, ctx, groups, snaps, names)
    complex_keys = exp.select(*(col(k) for k in p.keys)).distinct().from_(
        _table(groups, "g")).where(exp.EQ(this=col(COMPLEX), expression=_num(1)))
    rows = exp.select(*(col(c, "x") for c in names)).from_(ctx.input.table("x")).join(
        _sub(complex_keys, "c"), on=exp.and_(*(
            exp.NullSafeEQ(this=col(k, "x"), expression=col(k, "c")) for k in p.keys)))
    ordered = _row_versions(p, names, _sub(rows, "i"), snaps)
    versions = exp.union(simple, ordered, distinct=False)
    return exp.select(*(col(c) for c in _data(p, names) if c != ts), col("valid_from"),
                      col("valid_to"),
                      alias(exp.Is(this=col("valid_to"), expression=exp.Null()),
                            "is_current")).from_(_sub(versions, "s")).with_(
        ident(snaps), as_=_snapshots(ctx, ts)).with_(ident(groups), as_=_groups(p, ctx, snaps))


def _cte_name(kind: str, ctx: BuildContext) -> str:
    """A helper CTE's name: after the step, as sqlglot hoists nested CTEs to the top of a Spark
    query (two scd2 steps must not collide), and never the input's name."""
    return next(n for n in (f"{kind}_{ctx.step_id}", f"{kind}_{ctx.step_id}_")
                if n != ctx.input.name)


def _num(n: int) -> exp.Expr:
    return exp.Literal.number(n)


def _table(name: str, alias_: str) -> exp.Table:
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias_)))


def _data(p: Params, names: list[str]) -> list[str]:
    """The input columns in output order: keys, tracked, the others, then the snapshot time."""
    return [*p.keys, *p.tracked, *_others(p, names), p.snapshot_time]


def _others(p: Params, names: list[str]) -> list[str]:
    """Input columns that are neither keys, tracked nor the snapshot time."""
    return [c for c in names if c not in p.keys and c not in p.tracked and c != p.snapshot_time]


def _snapshots(ctx: BuildContext, ts: str) -> exp.Select:
    """The distinct snapshot times of the whole input, each with its rank (0, 1, ...) and the
    snapshot before and after it."""
    order = _ts_order(SNAP)
    times = exp.select(alias(col(ts), SNAP)).distinct().from_(ctx.input.table()).where(
        exp.Not(this=exp.Is(this=col(ts), expression=exp.Null())))
    return exp.select(
        col(SNAP),
        alias(exp.Sub(this=exp.Window(this=exp.RowNumber(), order=order.copy()),
                      expression=_num(1)), RANK),
        alias(exp.Window(this=exp.Lag(this=col(SNAP)), order=order.copy()), PREV_SNAP),
        alias(exp.Window(this=exp.Lead(this=col(SNAP)), order=order.copy()), NEXT_SNAP),
    ).from_(_sub(times, "d"))


def _groups(p: Params, ctx: BuildContext, snaps: str) -> exp.Select:
    """One row per key and tracked values: its first and last snapshot, and whether its key
    needs the ordered pass (``COMPLEX`` = 1).

    A group is one unbroken run when its rows hit distinct snapshot ranks (counted exactly
    with a bit per rank, ``BLOCK`` ranks per BIGINT) and as many as its ranks span. The
    key's groups must not overlap either (that would be the key twice in a snapshot).
    """
    group_cols = [*p.keys, *p.tracked]
    rank = col(RANK, "r")
    block = exp.IntDiv(this=rank.copy(), expression=_num(BLOCK))
    bit = exp.BitwiseLeftShift(this=exp.Cast(this=_num(1), to=exp.DataType.build("BIGINT")),
                               expression=exp.Paren(this=exp.Mod(this=rank.copy(),
                                                                 expression=_num(BLOCK))))
    blocks = exp.select(
        *(col(c, "i") for c in group_cols),
        alias(exp.Min(this=col(p.snapshot_time, "i")), FIRST),
        alias(exp.Max(this=col(p.snapshot_time, "i")), LAST),
        alias(exp.Count(this=exp.Star()), ROWS),
        alias(exp.Min(this=rank.copy()), RANK_FIRST),
        alias(exp.Max(this=rank.copy()), RANK_LAST),
        alias(exp.Anonymous(this="bit_count", expressions=[exp.BitwiseOrAgg(this=bit)]),
              DISTINCT),
    ).from_(ctx.input.table("i")).join(
        _table(snaps, "r"),
        on=exp.EQ(this=col(p.snapshot_time, "i"), expression=col(SNAP, "r"))).group_by(
        *(col(c, "i") for c in group_cols), block)
    merged = exp.select(
        *(col(c) for c in group_cols),
        alias(exp.Min(this=col(FIRST)), FIRST), alias(exp.Max(this=col(LAST)), LAST),
        alias(exp.Sum(this=col(ROWS)), ROWS),
        alias(exp.Min(this=col(RANK_FIRST)), RANK_FIRST),
        alias(exp.Max(this=col(RANK_LAST)), RANK_LAST),
        alias(exp.Sum(this=col(DISTINCT)), DISTINCT),
    ).from_(_sub(blocks, "b")).group_by(*(col(c) for c in group_cols))

    def over_key(func: exp.Expr, ordered: bool = True) -> exp.Window:
        return exp.Window(this=func, partition_by=[col(k) for k in p.keys],
                          order=_ts_order(FIRST) if ordered else None)

    keyed = exp.select(exp.Star(), alias(over_key(exp.Lag(this=col(LAST))), PREV_LAST)).from_(
        _sub(merged, "m"))
    if not p.invalidate_hard_deletes:  # a version then ends where the key's next one starts
        keyed = keyed.select(alias(over_key(exp.Lead(this=col(FIRST))), NEXT_FIRST))
    span = exp.Add(this=exp.Sub(this=col(RANK_LAST), expression=col(RANK_FIRST)),
                   expression=_num(1))
    broken = exp.or_(exp.NEQ(this=col(ROWS), expression=col(DISTINCT)),
                     exp.NEQ(this=col(ROWS), expression=span),
                     exp.GTE(this=col(PREV_LAST), expression=col(FIRST)))
    flag = exp.Case(ifs=[exp.If(this=broken, true=_num(1))], default=_num(0))
    return exp.select(exp.Star(), alias(over_key(exp.Max(this=flag), ordered=False),
                                        COMPLEX)).from_(_sub(keyed, "k"))


def _group_versions(p: Params, ctx: BuildContext, groups: str, snaps: str,
                    names: list[str]) -> exp.Select:
    """The versions of the keys whose groups are unbroken runs (from the CTE ``groups``): one
    per group."""
    others = _others(p, names)
    if p.invalidate_hard_deletes:
        # The version ends at the snapshot after its last one (the key then has other
        # values or is missing), or is current if that was the last snapshot.
        valid_to: exp.Expr = col(NEXT_SNAP, "e")
    else:
        valid_to = col(NEXT_FIRST, "g")
    query = exp.select(*(col(c, "g") for c in [*p.keys, *p.tracked]),
                       *(col(c, "o") for c in others),
                       alias(col(FIRST, "g"), "valid_from"), alias(valid_to, "valid_to")).from_(
        _table(groups, "g"))
    if p.invalidate_hard_deletes:
        query = query.join(_table(snaps, "e"), join_type="left",
                           on=exp.EQ(this=col(SNAP, "e"), expression=col(LAST, "g")))
    if others:
        # The other columns come from the version's first snapshot: the key's only row there.
        query = query.join(ctx.input.table("o"), on=exp.and_(
            *(exp.NullSafeEQ(this=col(k, "o"), expression=col(k, "g")) for k in p.keys),
            exp.EQ(this=col(p.snapshot_time, "o"), expression=col(FIRST, "g"))))
    return query.where(exp.EQ(this=col(COMPLEX, "g"), expression=_num(0)))


def _row_versions(p: Params, names: list[str], src: exp.Expr, snaps: str) -> exp.Select:
    """The versions of the keys in ``src`` (aliased ``i``) by one ordered pass over their rows.

    Also fails on a key repeated in a snapshot, naming it.
    """
    ts = p.snapshot_time
    data = _data(p, names)
    by_key = [col(k) for k in p.keys]
    not_null_ts = exp.Not(this=exp.Is(this=col(ts, "i"), expression=exp.Null()))
    hard = p.invalidate_hard_deletes

    def over_key(func: exp.Expr) -> exp.Window:
        return exp.Window(this=func, partition_by=[c.copy() for c in by_key],
                          order=_ts_order(ts))

    def changed(helper: str, i: int) -> exp.Expr:
        return exp.NullSafeNEQ(this=col(p.tracked[i]), expression=col(helper))

    # 1. Each row with the key's previous snapshot row (LAG) and, for hard deletes, its next
    #    one (LEAD, same sort) and the neighbouring snapshots of the whole input.
    lagged = exp.select(*(col(c, "i") for c in data),
                        alias(over_key(exp.Lag(this=col(ts))), PREV_TS),
                        *(alias(over_key(exp.Lag(this=col(c))), _prev(i))
                          for i, c in enumerate(p.tracked)))
    lagged = lagged.from_(src).where(not_null_ts)
    if hard:
        lagged = lagged.select(
            alias(over_key(exp.Lead(this=col(ts))), NEXT_TS),
            *(alias(over_key(exp.Lead(this=col(c))), _next(i)) for i, c in enumerate(p.tracked)),
            col(PREV_SNAP, "n"), col(NEXT_SNAP, "n")).join(
            _table(snaps, "n"), on=exp.EQ(this=col(ts, "i"), expression=col(SNAP, "n")))
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
    return versions


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
