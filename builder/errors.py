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


# DuckDB's function-resolution errors: an unknown name (with its own did-you-mean), or a known
# name whose argument types match none of its overloads (followed by every overload: ~50 lines
# for '+').
_NO_FUNCTION_RE = re.compile(r"(Scalar|Aggregate|Table|Pragma|Macro) Function with name "
                             r"(\S+) does not exist!(?:\s*Did you mean \"([^\"]+)\"\?)?")
_NO_MATCH_RE = re.compile(r"No function matches the given name and argument types "
                          r"'(.+?)\((.*)\)'\.")
_OVERLOAD_RE = re.compile(r'^\s*"?([^"(]+?)"?\((.*)\) -> .+$')
_TEMPORAL = ("DATE", "TIME", "TIMESTAMP")
_EVERYDAY = {"BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "VARCHAR", "DATE", "TIME",
             "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "INTERVAL"}
_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL"}


@dataclass(frozen=True)
class FunctionError:
    """A DuckDB function-resolution error in one line, and the name to locate in the SQL."""

    message: str
    name: str


def function_error(text: str) -> FunctionError | None:
    """One line for DuckDB's unknown-function and no-matching-overload errors, or None.

    >>> function_error('Scalar Function with name cont does not exist!\\nDid you mean "count"?')
    FunctionError(message="function 'cont' does not exist. Did you mean 'count'?", name='cont')
    """
    m = _NO_FUNCTION_RE.search(text)
    if m:
        kind = "table function" if m.group(1) == "Table" else "function"
        hint = f" Did you mean '{m.group(3)}'?" if m.group(3) else ""
        return FunctionError(f"{kind} '{m.group(2)}' does not exist.{hint}", m.group(2))
    m = _NO_MATCH_RE.search(text)
    if not m:
        return None
    name, given = m.group(1), [_plain_type(t) for t in _split_args(m.group(2))]
    operator = not name[:1].isalpha() and name[:1] != "_"
    what = f"operator '{name}'" if operator else f"function '{name}'"
    overloads = [_overload_types(o.group(2)) for line in text.splitlines()
                 if (o := _OVERLOAD_RE.match(line)) and o.group(1) == name]
    same_arity = [args for args in overloads if len(args) == len(given)]
    if not same_arity:
        takes = ", ".join("(" + ", ".join(a) + ")" for a in overloads[:3])
        n = len(given)
        return FunctionError(f"{what} does not take {n} argument{'s' * (n != 1)} "
                             f"({', '.join(given)})." + (f" It takes {takes}." if takes else ""),
                             name)
    # The overloads closest to what was given first: most argument types in common, earlier
    # arguments first (ts + 1 wants (TIMESTAMP, INTERVAL), not (INTEGER, INTEGER)), then the
    # everyday types before the exotic ones (BIGINT before UTINYINT).
    def closeness(args: list[str]) -> tuple[int, tuple[bool, ...], int]:
        same = tuple(a != g for a, g in zip(args, given))
        return (same.count(False) * -1, same, sum(a not in _EVERYDAY for a in args))

    best = sorted(same_arity, key=closeness)
    takes = ", ".join("(" + ", ".join(a) + ")" for a in best[:3])
    msg = f"{what} does not take ({', '.join(given)}). It takes {takes}."
    if operator and name in "+-" and any(g.startswith(_TEMPORAL) for g in given):
        return FunctionError(msg + " Add or subtract an INTERVAL, e.g. ts + INTERVAL 1 DAY.", name)
    # Suggest a cast of the first argument that fits no overload, to the likeliest wanted type.
    i = next((i for i, g in enumerate(given) if all(a[i] != g for a in same_arity)), 0)
    options = [a[i] for a in best]
    to = "DOUBLE" if options[0] in _NUMERIC and "DOUBLE" in options else options[0]
    return FunctionError(msg + f" Cast argument {i + 1}, e.g. CAST(x AS {to}).", name)


def _split_args(text: str) -> list[str]:
    """Split an argument list at top-level commas (types like DECIMAL(18,3) hold commas)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([" and 1 or (ch in ")]" and -1 or 0)
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur.strip()] if p]


def _plain_type(t: str) -> str:
    """DuckDB names a literal's type INTEGER_LITERAL, STRING_LITERAL: users wrote a value."""
    return {"STRING_LITERAL": "VARCHAR"}.get(t, t.removesuffix("_LITERAL"))


def _overload_types(args: str) -> list[str]:
    """The types of an overload's arguments: '"left" DATE, "right" INTEGER, /' -> DATE, INTEGER."""
    types = []
    for arg in _split_args(args):
        if arg == "/" or arg.startswith("*"):
            continue
        name_end = arg.index('"', 1) + 1 if arg.startswith('"') else arg.find(" ")
        types.append(arg[name_end:].strip() if name_end > 0 else arg)
    return types


def engine_message(e: BaseException) -> str:
    """The first meaningful line of a DuckDB error, without its 'LINE 1:' excerpt."""
    text = str(e).strip()
    fn = function_error(text)
    if fn:
        return fn.message
    first = text.split("\n\nLINE")[0].split("\nLINE ")[0].strip()
    # DuckDB's CSV errors append pages of advice and sniffer settings: keep the diagnosis.
    first = re.split(r"\n\s*(?:Possible (?:Solution|fixes)|The search space used|file = )",
                     first)[0].strip()
    first = _DUCK_PREFIX_RE.sub("", first)
    first = " ".join(first.split())
    return first if first.endswith((".", "!", "?")) else first + "."
