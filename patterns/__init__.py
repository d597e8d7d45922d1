"""The pattern palette: every block is one module here, listed explicitly below.

Add a pattern by writing ``patterns/<name>.py`` (see :mod:`patterns.base` for the contract), a
case file ``tests/fixtures/patterns/<name>.yaml``, and one line in the right list below.
"""

from __future__ import annotations

from patterns import (
    aggregate,
    asof_join,
    case_map,
    cast,
    date_spine,
    dedupe,
    derive,
    distinct,
    drop,
    expect,
    fill_nulls,
    filter,
    gap_fill,
    join,
    json_extract,
    limit,
    mask,
    pivot,
    regex_extract,
    rename,
    sample,
    scd2,
    select,
    sessionize,
    sort,
    surrogate_key,
    time_bucket,
    top_n,
    union,
    unnest,
    unpivot,
    window,
)
from patterns.base import Pattern, Registry

# --- Columns & rows, Combine --------------------------------------------------------------
_COLUMNS_AND_COMBINE: list[Pattern] = [
    filter.PATTERN,
    select.PATTERN,
    rename.PATTERN,
    drop.PATTERN,
    derive.PATTERN,
    cast.PATTERN,
    fill_nulls.PATTERN,
    case_map.PATTERN,
    regex_extract.PATTERN,
    sort.PATTERN,
    limit.PATTERN,
    distinct.PATTERN,
    sample.PATTERN,
    join.PATTERN,
    union.PATTERN,
    asof_join.PATTERN,
]

# --- Aggregate & window, Time -------------------------------------------------------------
_AGGREGATE_AND_TIME: list[Pattern] = [
    sessionize.PATTERN,
    aggregate.PATTERN,
    dedupe.PATTERN,
    top_n.PATTERN,
    time_bucket.PATTERN,
    window.PATTERN,
    date_spine.PATTERN,
    gap_fill.PATTERN,
]

# --- Slowly changing, Reshape, Keys & privacy, Quality ------------------------------------
_SCD_RESHAPE_KEYS_QUALITY: list[Pattern] = [
    scd2.PATTERN,
    pivot.PATTERN,
    unpivot.PATTERN,
    unnest.PATTERN,
    json_extract.PATTERN,
    surrogate_key.PATTERN,
    mask.PATTERN,
    expect.PATTERN,
]

PATTERNS = Registry(_COLUMNS_AND_COMBINE + _AGGREGATE_AND_TIME + _SCD_RESHAPE_KEYS_QUALITY)

__all__ = ["PATTERNS", "Pattern", "Registry"]
