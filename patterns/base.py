"""The pattern contract: what every block in the palette declares.

A pattern is one module under ``patterns/`` that defines

* a module docstring: the help text users see (first line is the summary),
* ``Params``: a pydantic model subclassing :class:`~patterns.fields.PatternParams` (types,
  defaults, ``Literal`` choices, a description per field; the app builds its form from it;
  column fields are marked with :func:`~patterns.fields.column_field` etc. so the app shows
  pickers and validation checks the names against the input's schema),
* ``build(params, ctx) -> exp.Query | Built``: sqlglot expressions, never SQL strings (helpers in
  :mod:`patterns.sql`),
* ``PATTERN = Pattern(...)``: name, category, input arity, an example, and what the planner
  must know about it without naming it: a side output (:class:`RejectedRows`), whether an input
  may be listed twice, the capabilities it provides to the catalog (:data:`CAPABILITIES`).

``patterns/__init__.py`` lists the modules explicitly; :class:`~patterns.registry.Registry`
refuses duplicates and checks each pattern when it is declared (docstring, param model, an
example that validates).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from pydantic import ValidationError
from sqlglot import exp

from builder.errors import did_you_mean
from builder.pipeline.params import bind_params, check_param_names, mask_params
from builder.plan.types import ParamError, Relation
from patterns.fields import PatternParams
from patterns.sql import checked_expression

ARITY_N = "n"
Arity = Union[int, Literal["n"]]

CATEGORIES = (
    "Columns & rows", "Combine", "Aggregate & window", "Time", "Slowly changing",
    "Reshape", "Keys & privacy", "Quality",
)

# What a pattern may provide to the catalog's read stages, and the params the catalog passes.
# The registry maps each capability to the one pattern that provides it (patterns/__init__.py).
CAPABILITIES: dict[str, str] = {
    "cast": "casts columns: {'columns': {column: type}}",
    "latest_per_key": "keeps the latest row per key: {'keys': [...], 'order_by': ['col desc']}",
    "mask": "masks PII columns: {'columns': {column: method}, 'salt': text}",
    "checks": "builds data checks: {'checks': [...], 'on_fail': 'error'} -> Built.checks",
}


@dataclass
class BuildContext:
    """Everything a pattern's build function may use besides its params."""

    step_id: str
    inputs: list[Relation]
    pipeline_params: dict[str, Any] = field(default_factory=dict)
    # Reads data while planning (input index, column, limit) -> distinct non-NULL values,
    # sorted, at most limit + 1; None where no data can be read (e.g. catalog stages).
    value_reader: Callable[[int, str, int], list[Any]] | None = None

    @property
    def input(self) -> Relation:
        """The single input of a one-input pattern."""
        return self.inputs[0]

    def expr(self, text: str, param: str | None = None) -> exp.Expr:
        """Parse a user's SQL expression (DuckDB dialect), with ``{{ name }}`` as literals.

        It gets the statement check of SQL steps and may read only this step's inputs (see
        :func:`checked_expression`); ``param`` names it in the errors.
        """
        masked = mask_params(text)
        check_param_names(masked, self.pipeline_params)
        tree, masked = checked_expression(text, [r.name for r in self.inputs], param)
        return bind_params(tree, masked, self.pipeline_params)

    def check_column(self, name: str, param: str, input: int = 0) -> str:
        """Raise :class:`ParamError` unless input ``input`` has column ``name``; returns it.

        Use for column names nested inside params (e.g. ``aggregations[0].column``); top-level
        fields declared with ``column_field`` and friends are checked before build is called.
        Names match ignoring case, as DuckDB's do: the input's own spelling is returned (use it).
        """
        rel = self.inputs[input]
        if not rel.has(name):
            same = [c for c in rel.column_names if c.lower() == name.lower()]
            if len(same) == 1:
                return same[0]
            raise ParamError(param, f"column '{name}' not found in input '{rel.name}'."
                             + (did_you_mean(name, rel.column_names)
                                or " Columns: " + ", ".join(rel.column_names[:12]) + "."))
        return name

    def distinct_values(self, column: str, param: str, limit: int, input: int = 0) -> list[Any]:
        """The distinct non-NULL values of a column of input ``input``, sorted, read from the
        data while the pipeline is planned. Raises :class:`ParamError` (naming ``param``) when
        there are more than ``limit`` or the data cannot be read here."""
        rel = self.inputs[input]
        if self.value_reader is None:
            raise ParamError(param, f"the values of '{column}' cannot be read here; list them "
                             f"in '{param}'.")
        values = self.value_reader(input, column, limit)
        if len(values) > limit:
            raise ParamError(param, f"column '{column}' of input '{rel.name}' has more than "
                             f"{limit} distinct values; list the ones to use in '{param}'.")
        return values

    def data_type(self, text: str) -> exp.DataType:
        """Parse a type name (DuckDB dialect), e.g. ``DECIMAL(10,2)``."""
        return exp.DataType.build(text, dialect="duckdb")


@dataclass
class Check:
    """A data check a step runs after it is computed: ``failing`` selects the offending rows."""

    name: str
    failing: exp.Query
    on_fail: Literal["error", "warn", "quarantine"] = "error"


@dataclass
class Built:
    """What a build function may return instead of a bare query."""

    query: exp.Query
    checks: list[Check] = field(default_factory=list)
    rejected: exp.Query | None = None  # becomes readable as '<step id>.rejected'


BuildFn = Callable[[Any, BuildContext], "exp.Query | Built"]

REJECTED_SUFFIX = ".rejected"


@dataclass(frozen=True)
class RejectedRows:
    """A pattern's side output: rows it sets aside (:attr:`Built.rejected`), readable by later
    steps as ``<step id>.rejected`` when the step's param ``param`` is ``value``."""

    param: str
    value: str

    def hint(self, pattern: str) -> str:
        """Where rejected rows come from, for a step reading a side output that does not exist."""
        return f"'{pattern}' steps with {self.param}: {self.value}"


@dataclass(frozen=True)
class Pattern:
    """A declared pattern. Checked when declared: a docstring, a param model, a valid example."""

    name: str
    category: str
    arity: Arity
    params: type[PatternParams]
    build: BuildFn
    doc: str | None
    example: dict[str, Any]
    # Words users type when they look for this block ("remove duplicates" -> dedupe); the
    # palette's search reads them with the name, category and help text.
    keywords: tuple[str, ...] = ()
    # A side output ('<step id>.rejected'), and under which param value the step makes it.
    rejected_rows: RejectedRows | None = None
    # Whether one input may be listed twice (a self-join); other steps refuse it.
    repeated_inputs: bool = False
    # Capabilities it provides to the catalog's read stages (keys of CAPABILITIES).
    provides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z][a-z0-9_]*$", self.name):
            raise ValueError(f"pattern name '{self.name}' must be snake_case")
        if not self.doc or not self.doc.strip():
            raise ValueError(f"pattern '{self.name}' has no docstring (its help text)")
        if not (isinstance(self.params, type) and issubclass(self.params, PatternParams)):
            raise ValueError(f"pattern '{self.name}': params must subclass PatternParams")
        if any(not k or k != k.strip().lower() for k in self.keywords):
            raise ValueError(f"pattern '{self.name}': keywords must be lowercase, non-empty words")
        if self.category not in CATEGORIES:
            raise ValueError(f"pattern '{self.name}': unknown category '{self.category}'")
        if not (self.arity == ARITY_N or self.arity in (0, 1, 2)):
            raise ValueError(f"pattern '{self.name}': arity must be 0, 1, 2 or 'n'")
        try:
            self.params.model_validate(self.example)
        except ValidationError as e:
            raise ValueError(f"pattern '{self.name}': its example does not validate: {e}") from e
        unknown = [c for c in self.provides if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"pattern '{self.name}': unknown capability '{unknown[0]}'."
                             + did_you_mean(unknown[0], CAPABILITIES))
        if self.rejected_rows and self.rejected_rows.param not in self.params.model_fields:
            raise ValueError(f"pattern '{self.name}': rejected_rows names param "
                             f"'{self.rejected_rows.param}', which its model does not have")

    def has_rejected(self, params: dict[str, Any]) -> bool:
        """Whether a step with these (raw) params makes a '<step id>.rejected' side output."""
        side = self.rejected_rows
        if side is None:
            return False
        default = self.params.model_fields[side.param].default
        return str(params.get(side.param, default)) == side.value

    @property
    def summary(self) -> str:
        return (self.doc or "").strip().splitlines()[0]

    @property
    def help(self) -> str:
        return _dedent(self.doc or "")

    def arity_text(self) -> str:
        texts: dict[Arity, str] = {0: "no inputs", 1: "1 input", 2: "2 inputs"}
        return texts.get(self.arity, "1 or more inputs")

    def accepts(self, n_inputs: int) -> bool:
        return n_inputs >= 1 if self.arity == ARITY_N else n_inputs == self.arity


def _dedent(doc: str) -> str:
    return inspect.cleandoc(doc)


