"""The pattern palette: every block is one module here, listed explicitly below.

Add a pattern by writing ``patterns/<name>.py`` (see :mod:`patterns.base` for the contract), a
case file ``tests/fixtures/patterns/<name>.yaml``, and one line in the right list below. The
lists name modules: each is imported when its pattern is first used (see
:class:`~patterns.registry.Registry`). Helpers for writing one: :mod:`patterns.fields` (the param
field DSL) and :mod:`patterns.sql` (sqlglot helpers).
"""

from __future__ import annotations

from patterns.base import Pattern
from patterns.registry import Registry

# --- Columns & rows, Combine --------------------------------------------------------------
_COLUMNS_AND_COMBINE: list[str] = [
    "filter",
    "select",
    "rename",
    "drop",
    "derive",
    "cast",
    "fill_nulls",
    "case_map",
    "regex_extract",
    "safe_divide",
    "safe_add",
    "width_bucket",
    "haversine_distance",
    "parse_url",
    "generate_series",
    "sort",
    "limit",
    "distinct",
    "sample",
    "join",
    "union",
    "asof_join",
]

# --- Aggregate & window, Time -------------------------------------------------------------
_AGGREGATE_AND_TIME: list[str] = [
    "sessionize",
    "aggregate",
    "dedupe",
    "top_n",
    "time_bucket",
    "window",
    "date_spine",
    "gap_fill",
]

# --- Slowly changing, Reshape, Keys & privacy, Quality ------------------------------------
_SCD_RESHAPE_KEYS_QUALITY: list[str] = [
    "scd2",
    "pivot",
    "unpivot",
    "unnest",
    "json_extract",
    "surrogate_key",
    "mask",
    "expect",
]

# The patterns the catalog's read stages use (each declares the capability in 'provides').
_PROVIDERS: dict[str, str] = {
    "cast": "cast",
    "latest_per_key": "dedupe",
    "mask": "mask",
    "checks": "expect",
}

PATTERNS = Registry(_COLUMNS_AND_COMBINE + _AGGREGATE_AND_TIME + _SCD_RESHAPE_KEYS_QUALITY,
                    providers=_PROVIDERS)

__all__ = ["PATTERNS", "Pattern", "Registry"]
