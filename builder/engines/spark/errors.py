"""The Spark engine's error and how Spark's messages are cut to one line."""

from __future__ import annotations

import re

from pyspark.errors import PySparkException

from builder.errors import ExecutionError


class SparkEngineError(ExecutionError):
    """A run that failed on Spark (the message names the node and Spark's reason)."""


# Spark's prefix of an error() raised by a step's SQL (e.g. scd2's repeated key).
USER_RAISED = "[USER_RAISED_EXCEPTION]"


def first_line(e: BaseException) -> str:
    """The first line of a Spark (or other) error, without its SQLSTATE, ending in a period."""
    text = str(getattr(e, "getMessage", lambda: None)() or e) if isinstance(
        e, PySparkException) else str(e)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    first = lines[0] if lines else type(e).__name__
    first = re.sub(r"\s*SQLSTATE: \w+\s*$", "", first)
    return first.rstrip(".") + "."
