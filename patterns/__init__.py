"""The pattern palette: every block is one module here, listed explicitly below.

Add a pattern by writing ``patterns/<name>.py`` (see :mod:`patterns.base` for the contract), a
case file ``tests/fixtures/patterns/<name>.yaml``, and one line in the right list below.
"""

from __future__ import annotations

from patterns import (
    filter,
    select,
)
from patterns.base import Pattern, Registry

# --- Columns & rows, Combine --------------------------------------------------------------
_COLUMNS_AND_COMBINE: list[Pattern] = [
    filter.PATTERN,
    select.PATTERN,
]

# --- Aggregate & window, Time -------------------------------------------------------------
_AGGREGATE_AND_TIME: list[Pattern] = [
]

# --- Slowly changing, Reshape, Keys & privacy, Quality ------------------------------------
_SCD_RESHAPE_KEYS_QUALITY: list[Pattern] = [
]

PATTERNS = Registry(_COLUMNS_AND_COMBINE + _AGGREGATE_AND_TIME + _SCD_RESHAPE_KEYS_QUALITY)

__all__ = ["PATTERNS", "Pattern", "Registry"]
