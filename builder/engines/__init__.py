"""Execution engines behind one small interface (:class:`builder.engines.base.Engine`).

The model, the patterns and the compiler know nothing about engines; an engine takes a
:class:`builder.plan.runspec.RunSpec` and runs it. ``get_engine(name)`` imports the Spark engine
only when asked for it, so the core never needs PySpark.
"""

from __future__ import annotations

from typing import Any

from builder.engines.base import Engine, EngineUnavailable
from builder.engines.duckdb import DuckDBEngine
from builder.errors import did_you_mean

ENGINES = ("duckdb", "spark")


def get_engine(name: str, **options: Any) -> Engine:
    """An engine by name: 'duckdb' (default) or 'spark' (needs the optional pyspark extra)."""
    if name == "duckdb":
        return DuckDBEngine(**options)
    if name == "spark":
        try:
            from builder.engines.spark import SparkEngine
        except ImportError as e:  # pragma: no cover - depends on the install
            raise EngineUnavailable(
                "the Spark engine needs PySpark and Java 17+: pip install 'dockyard[spark]'"
                f" ({e}).") from None
        return SparkEngine(**options)
    raise EngineUnavailable(f"unknown engine '{name}'." + (did_you_mean(name, ENGINES) or
                            " Valid values: " + ", ".join(ENGINES) + "."))


__all__ = ["Engine", "EngineUnavailable", "get_engine", "ENGINES"]
