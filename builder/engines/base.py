"""The engine interface: what the runner and the app ask of DuckDB, Spark or any other engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from builder.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from builder.pipeline.model import Output
    from builder.plan.compiler import Plan


class EngineUnavailable(ConfigError):
    """The engine asked for cannot start here (missing package, bad option)."""


@dataclass
class StepStat:
    """What happened to one node during a run."""

    node: str
    rows: int | None
    seconds: float
    status: str = "ok"  # ok | skipped | failed
    message: str | None = None


@dataclass
class CheckResult:
    """A data check's outcome: how many rows failed and a few of them."""

    step: str
    check: str
    on_fail: str
    failed_rows: int
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OutputResult:
    output: str
    target: str
    rows: int
    seconds: float


@dataclass
class RunResult:
    steps: list[StepStat] = field(default_factory=list)
    outputs: list[OutputResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0


ProgressFn = Callable[[str, str, "StepStat | None"], None]  # (event, node, stat)


@dataclass
class PreviewResult:
    """First rows of a node plus its schema and row count."""

    node: str
    columns: list[tuple[str, str]]
    rows: pd.DataFrame
    row_count: int | None
    seconds: float
    approximate: bool = False  # computed on sampled sources
    cached: bool = False


class Engine(ABC):
    """Runs a compiled plan."""

    name: str = "engine"

    @abstractmethod
    def run(self, plan: Plan, outputs: dict[str, Output] | None = None,
            progress: ProgressFn | None = None) -> RunResult:
        """Compute what the outputs need and write every output atomically."""

    @abstractmethod
    def preview(self, plan: Plan, node: str, limit: int = 20) -> PreviewResult:
        """The first ``limit`` rows of a node, its schema and row count; writes nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, sessions)."""
