"""The engine interface: what the runner and the app ask of DuckDB, Spark or any other engine.

An engine only executes: it computes the nodes of a :class:`~builder.plan.runspec.RunSpec` and
writes its outputs. Taking the run lock, recording the run and publishing staging tables in the
warehouse are the runner's (:mod:`builder.runner`); a staging output reaches the warehouse
through the ``staging`` writer the runner passes in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from builder.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from builder.plan.compiler import Plan
    from builder.plan.runspec import RunSpec


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
# Writes a staging output: (a DuckDB connection on which the step's rows are the table or view
# named after the step, the step) -> what was written. The runner makes it from the warehouse.
StagingWriter = Callable[[Any, str], OutputResult]


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
    """Executes a run spec: computes its nodes and writes its outputs."""

    name: str = "engine"

    @abstractmethod
    def run(self, spec: RunSpec, progress: ProgressFn | None = None, *,
            staging: StagingWriter | None = None, result: RunResult | None = None
            ) -> RunResult:
        """Compute what the spec's outputs need and write every output atomically.

        Args:
            spec: the run, from :meth:`RunSpec.from_plan` (or the run cache, for DuckDB).
            progress: called with ("start" | "done" | "write", node, stat) as the run goes.
            staging: writes staging outputs; a spec with one fails without it.
            result: filled in as the run goes, so a caller sees what was done before a
                failure (the run history records it); a new one by default.
        """

    @abstractmethod
    def preview(self, plan: Plan, node: str, limit: int = 20) -> PreviewResult:
        """The first ``limit`` rows of a node, its schema and row count; writes nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, sessions)."""
