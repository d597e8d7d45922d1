"""Give each left row the latest right row at or before its time (an as-of join).

The first input is the left side, the second the right side. For each left row, the right rows
with the same `on` keys and `right_time <= left_time` are candidates, and the one with the
latest `right_time` is attached, for example the exchange rate in force when an order was
placed. `on` is a list of key columns both inputs share, or a mapping from left to right names
(`{currency: code}`); leave it empty to match on time only. Every left row appears exactly once,
with NULLs in the right columns when nothing matches (left join semantics): keys match with SQL
equality, so a NULL key, a NULL `left_time` or a NULL `right_time` never matches.

The result has the left columns, then the right columns except the keys; a right column whose
name is already taken gets `suffix` appended (`name_right`). When several candidates share the
latest `right_time`, the one that sorts first by the other right columns in column order
(ascending, NULLs last; MAP columns are skipped) wins, so the result is deterministic. The
query is portable SQL (a left join on the keys and times, then the latest candidate per left
row), so its cost grows with the number of earlier right rows per key.
"""

from __future__ import annotations

from sqlglot import exp

from patterns.base import BuildContext, Pattern
from patterns.fields import OrderSpec, column_field, join_keys_field
from patterns.join import KeyedParams, right_outputs
from patterns.sql import alias, col, fresh_name, ident, literal, ordered

L, R = "l", "r"


class Params(KeyedParams):
    on: list[str] | dict[str, str] = join_keys_field(
        "Key columns shared by both inputs, or {left_column: right_column}; empty: match on "
        "time only.")
    left_time: str = column_field("Time column of the left input: the moment to look up.")
    right_time: str = column_field(
        "Time column of the right input: from when a right row is valid.", input=1)



def _sortable(type_name: str) -> bool:
    return not type_name.upper().startswith("MAP")  # Spark cannot sort by MAP columns


def build(p: Params, ctx: BuildContext) -> exp.Query:
    left, right = ctx.inputs
    pairs = p.key_pairs(ctx)
    left_keys = [lk for lk, _ in pairs]
    right_keys = {rk for _, rk in pairs}

    # Output columns: all left columns, then the non-key right columns (renamed on collision).
    right_out = right_outputs(left.column_names, right.column_names, right_keys, p.suffix)
    outputs = list(left.column_names) + [name for _, name in right_out]
    every = left.column_names + right.column_names + outputs
    row_id, rank = fresh_name("_dy_left_row", every), fresh_name("_dy_match_rank", every)

    # 1. Number the left rows within (keys, left_time): with them, a left row's identity even
    #    when rows repeat. Ordering by the other columns keeps the numbering deterministic.
    id_partition = left_keys + [p.left_time]
    id_order = [ordered(OrderSpec(column=c.name)) for c in left.columns
                if c.name not in id_partition and _sortable(c.type)] \
        or [ordered(OrderSpec(column=p.left_time))]
    numbered = exp.select(exp.Star(), alias(exp.Window(
        this=exp.RowNumber(), partition_by=[col(c) for c in id_partition],
        order=exp.Order(expressions=id_order)), row_id)).from_(left.table())

    # 2. Left join every earlier right row with the same keys; rank them latest first.
    condition = exp.and_(
        *(exp.EQ(this=col(lk, L), expression=col(rk, R)) for lk, rk in pairs),
        exp.LTE(this=col(p.right_time, R), expression=col(p.left_time, L)))
    latest_first = [ordered(OrderSpec(column=p.right_time, descending=True), R)] + [
        ordered(OrderSpec(column=c.name), R) for c in right.columns
        if c.name not in right_keys and c.name != p.right_time and _sortable(c.type)]
    ranking = exp.Window(this=exp.RowNumber(),
                         partition_by=[col(c, L) for c in id_partition + [row_id]],
                         order=exp.Order(expressions=latest_first))
    projections: list[exp.Expr] = [col(c, L) for c in left.column_names]
    projections += [col(c, R) if c == name else alias(col(c, R), name) for c, name in right_out]
    projections.append(alias(ranking, rank))
    matched = (exp.select(*projections)
               .from_(numbered.subquery(ident(L)))
               .join(exp.Join(this=right.table(R), on=condition, side="LEFT")))

    # 3. Keep the latest candidate (or the unmatched left row itself).
    return (exp.select(*(col(c) for c in outputs))
            .from_(matched.subquery(ident("matched")))
            .where(exp.EQ(this=col(rank), expression=literal(1))))


PATTERN = Pattern(
    name="asof_join", category="Combine", arity=2, params=Params, build=build, doc=__doc__,
    example={"on": ["currency"], "left_time": "ordered_at", "right_time": "valid_from"},
    keywords=("as of", "point in time", "nearest earlier", "latest before", "temporal join",
              "prices at time"),
)
