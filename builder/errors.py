"""One error hierarchy for every way a pipeline can be wrong.

A :class:`Problem` is one finding with its location (file, YAML line, step, param, SQL
line:column). Validation collects problems instead of stopping at the first, and raises them
together inside a :class:`PipelineError` subclass so the CLI can print one line each and the app
can put each next to the step it belongs to.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


# Every character str.splitlines() breaks at, written as its escape (\n, \x0c, ...).
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


@dataclass(frozen=True)
class Problem:
    """One finding about a pipeline, with everything needed to locate it."""

    message: str
    file: str | None = None
    line: int | None = None
    step: str | None = None
    param: str | None = None
    sql_line: int | None = None
    sql_col: int | None = None
    severity: Severity = "error"
    kind: str = "config"  # config | graph | compile | execution

    def __post_init__(self) -> None:
        # One problem, one line: a value quoted from the user's file may hold line breaks.
        text = self.message.translate(_LINE_BREAKS)
        if text != self.message:
            object.__setattr__(self, "message", text)

    def location(self) -> str:
        """``file:line`` (either part may be missing)."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or (f"line {self.line}" if self.line else "")

    def __str__(self) -> str:
        parts = []
        loc = self.location()
        if loc:
            parts.append(loc)
        if self.step and f"'{self.step}'" not in self.message.split(":")[0]:
            parts.append(f"step '{self.step}':")
        text = " ".join(parts)
        msg = self.message
        if self.sql_line is not None and "line " not in msg:
            msg = f"{msg} (SQL line {self.sql_line}, column {self.sql_col or 1})"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{text} {prefix}{msg}".strip() if text else f"{prefix}{msg}"


class PipelineError(Exception):
    """Base of every error Dockyard reports to a user: carries one or more problems."""

    kind = "pipeline"

    def __init__(self, problems: Problem | str | Iterable[Problem], **location: object) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems, kind=self.kind, **location)]  # type: ignore[arg-type]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.summary())

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def summary(self, limit: int = 10) -> str:
        """All problems, one per line, the tail folded into '... and N more'."""
        shown = [str(p) for p in self.problems[:limit]]
        rest = len(self.problems) - limit
        if rest > 0:
            shown.append(f"... and {rest} more")
        return "\n".join(shown)


class ConfigError(PipelineError):
    """The pipeline file or its values are malformed (YAML, keys, types, params)."""

    kind = "config"


class GraphError(PipelineError):
    """The step graph is wrong: unknown inputs, duplicates, cycles, arity."""

    kind = "graph"


class CompileError(PipelineError):
    """A step cannot be turned into SQL: parse errors, forbidden statements, unknown columns."""

    kind = "compile"


class ExecutionError(PipelineError):
    """Something failed while running: unreadable files, engine errors, failed expectations."""

    kind = "execution"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest candidate, or an empty string.

    >>> did_you_mean("sesion_id", ["session_id", "user_id"])
    " Did you mean 'session_id'?"
    """
    cands = [str(c) for c in candidates]
    lowered = {c.lower(): c for c in cands}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f" Did you mean '{lowered[name.lower()]}'?"
    match = difflib.get_close_matches(name, cands, n=1, cutoff=0.6)
    if not match:
        match = [lowered[m] for m in difflib.get_close_matches(name.lower(), lowered, n=1, cutoff=0.6)]
    return f" Did you mean '{match[0]}'?" if match else ""


def valid_values(values: Iterable[object]) -> str:
    """`` Valid values: a, b, c.``"""
    return " Valid values: " + ", ".join(str(v) for v in values) + "."


@dataclass
class ProblemCollector:
    """Accumulates problems during validation; raise once at the end."""

    file: str | None = None
    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, *, kind: str = "config", severity: Severity = "error",
            **location: object) -> None:
        location.setdefault("file", self.file)
        self.problems.append(Problem(message, kind=kind, severity=severity, **location))  # type: ignore[arg-type]

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_if_errors(self, cls: type[PipelineError] = ConfigError) -> None:
        if self.errors:
            raise cls(self.problems)


# DuckDB prefixes its messages with the error class ("Binder Error: ", "Invalid Input Error: ").
_DUCK_PREFIX_RE = re.compile(r"^(?:\w+ ){1,3}Error: ")


def engine_message(e: BaseException) -> str:
    """The first meaningful line of a DuckDB error, without its 'LINE 1:' excerpt."""
    text = str(e).strip()
    first = text.split("\n\nLINE")[0].split("\nLINE ")[0].strip()
    # DuckDB's CSV errors append pages of advice and sniffer settings: keep the diagnosis.
    first = re.split(r"\n\s*(?:Possible (?:Solution|fixes)|The search space used|file = )",
                     first)[0].strip()
    first = _DUCK_PREFIX_RE.sub("", first)
    first = " ".join(first.split())
    return first if first.endswith((".", "!", "?")) else first + "."
