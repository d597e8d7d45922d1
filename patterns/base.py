"""The pattern interface: what every block in the palette declares, and the registry.

A pattern is one module under ``patterns/`` that defines

* a module docstring: the help text users see (first line is the summary),
* ``Params``: a pydantic model (types, defaults, ``Literal`` choices, a description per field;
  the app builds its form from it; column fields are marked with :func:`column_field` etc. so the
  app shows pickers and validation checks the names against the input's schema),
* ``build(params, ctx) -> exp.Query | Built``: sqlglot expressions, never SQL strings,
* ``PATTERN = Pattern(...)``: name, category, input arity, an example.

``patterns/__init__.py`` lists the modules explicitly; :class:`Registry` refuses duplicates and
checks each pattern when it is declared (docstring, param model, an example that validates).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

import sqlglot
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from builder.errors import CompileError, did_you_mean
from builder.pipeline.params import (
    Masked,
    bind_params,
    check_param_names,
    mask_params,
    misplaced_message,
    misplaced_param,
    non_finite_literal,
)
from builder.plan import sqlcheck

ARITY_N = "n"
Arity = Union[int, Literal["n"]]

CATEGORIES = (
    "Columns & rows", "Combine", "Aggregate & window", "Time", "Slowly changing",
    "Reshape", "Keys & privacy", "Quality",
)

FieldKind = Literal["column", "columns", "column_map", "order_by", "sql", "sql_map",
                    "join_keys"]


# ---- param field helpers -----------------------------------------------------------------

def _field(kind: FieldKind, description: str, input: int | None, default: Any,
           **kw: Any) -> Any:
    extra: dict[str, Any] = {"dy_kind": kind, "dy_input": input}
    if default is ...:
        return Field(..., description=description, json_schema_extra=extra, **kw)
    if isinstance(default, (list, dict)):
        return Field(default_factory=lambda d=default: type(d)(d), description=description,
                     json_schema_extra=extra, **kw)
    return Field(default, description=description, json_schema_extra=extra, **kw)


def column_field(description: str, *, input: int | None = 0, default: Any = ...) -> Any:
    """A field holding one column name of input ``input`` (None: any input)."""
    return _field("column", description, input, default)


def columns_field(description: str, *, input: int | None = 0, default: Any = ...) -> Any:
    """A field holding a list of column names of input ``input``."""
    return _field("columns", description, input, default)


def column_map_field(description: str, *, input: int | None = 0, default: Any = ...) -> Any:
    """A mapping whose keys are column names of input ``input`` (values are pattern-specific)."""
    return _field("column_map", description, input, default)


def order_by_field(description: str, *, input: int | None = 0, default: Any = ...) -> Any:
    """An ``order_by`` list: ``col``, ``"col desc"`` or ``{column, descending, nulls_last}``."""
    return _field("order_by", description, input, default)


def sql_field(description: str, *, input: int | None = 0, default: Any = ...) -> Any:
    """A SQL expression (DuckDB dialect) over the input's columns; ``{{ name }}`` allowed."""
    return _field("sql", description, input, default)


def sql_map_field(description: str, *, input: int | None = 0, default: Any = ...) -> Any:
    """A mapping ``name: SQL expression``."""
    return _field("sql_map", description, input, default)


def join_keys_field(description: str) -> Any:
    """Join keys: a list of columns both inputs share, or a ``{left: right}`` mapping."""
    return _field("join_keys", description, None, [])


def _not_blank(name: str | None) -> str | None:
    if name is not None and not name.strip():
        raise ValueError("the column name is empty; leave 'as' out for the default name")
    return name


# The optional ``as`` param of a pattern or function: the name of the column it writes
# (blank refused). Declare it as ``as_: OutputName = Field(None, alias="as", ...)``.
OutputName = Annotated[str | None, AfterValidator(_not_blank)]


def function_output(function: str, column: str | None, as_: str | None) -> str:
    """The column an aggregate or window function writes: ``as``, else ``sum_amount`` (or
    ``count`` for a function without a column)."""
    return as_ or (function if column is None else f"{function}_{column}")


def field_kind(model: type[BaseModel], name: str) -> tuple[str | None, int | None]:
    """(kind, input index) of a param field, from its ``column_field``-style declaration."""
    extra = model.model_fields[name].json_schema_extra
    if isinstance(extra, dict) and "dy_kind" in extra:
        return str(extra["dy_kind"]), extra.get("dy_input")  # type: ignore[return-value]
    return None, None


class PatternParams(BaseModel):
    """Base of every param model: unknown params are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class OrderSpec(BaseModel):
    """One ``order_by`` item in its long form."""

    model_config = ConfigDict(extra="forbid")
    column: str = Field(description="Column to sort by.")
    descending: bool = Field(False, description="Sort from high to low.")
    nulls_last: bool = Field(True, description="NULLs after the other values (the default).")


OrderItem = Union[str, OrderSpec]
_ORDER_RE = re.compile(r"^(?P<col>.+?)\s+(?P<dir>asc|desc)$", re.IGNORECASE)


def order_specs(items: Iterable[OrderItem]) -> list[OrderSpec]:
    """Normalise ``order_by`` items: ``"ts desc"`` -> OrderSpec(column='ts', descending=True)."""
    specs = []
    for item in items:
        if isinstance(item, OrderSpec):
            specs.append(item)
            continue
        m = _ORDER_RE.match(item.strip())
        if m:
            specs.append(OrderSpec(column=m["col"].strip(), descending=m["dir"].lower() == "desc"))
        else:
            specs.append(OrderSpec(column=item.strip()))
    return specs


# ---- the build context -------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnInfo:
    """A column of a relation: name and DuckDB type name (e.g. ``BIGINT``, ``TIMESTAMP``)."""

    name: str
    type: str


@dataclass(frozen=True)
class Relation:
    """An input of a step as patterns see it: a table name and its (propagated) schema."""

    name: str
    columns: tuple[ColumnInfo, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def type_of(self, column: str) -> str:
        for c in self.columns:
            if c.name == column:
                return c.type
        raise KeyError(column)

    def has(self, column: str) -> bool:
        return any(c.name == column for c in self.columns)

    def table(self, alias: str | None = None) -> exp.Table:
        """This relation as a quoted table reference (optionally aliased)."""
        t = exp.Table(this=exp.to_identifier(self.name, quoted=True))
        if alias:
            t.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        return t


@lru_cache(maxsize=4096)
def _parsed(sql: str) -> exp.Expr:
    # Too deep a text is a parse error like any other (callers name the step and param).
    issue = sqlcheck.nesting_issue(sql)
    if issue is not None:
        raise ParseError.new(issue.message, description=sqlcheck.NESTED_TOO_DEEP,
                             line=issue.line, col=issue.col, highlight="(")
    try:
        return sqlglot.parse_one(sql, dialect="duckdb")
    except RecursionError:  # NOT NOT NOT ...: no parentheses, still too deep for sqlglot
        raise ParseError.new("nested too deeply", description="nested too deeply to parse",
                             highlight=sql[:20]) from None


def parse_expression(sql: str, *, copy: bool = True) -> exp.Expr:
    """Parse SQL text (DuckDB dialect). Parsed once per text: validation and build both read an
    expression, and the app re-plans on every edit. ``copy=False`` returns the shared tree,
    which the caller must only read."""
    tree = _parsed(sql)
    return tree.copy() if copy else tree


def checked_expression(text: str, inputs: list[str],
                       param: str | None = None) -> tuple[exp.Expr, Masked]:
    """A SQL expression param parsed (a copy) with its ``{{ name }}`` masked, and checked.

    Every expression param of every pattern comes through here (``BuildContext.expr``, and
    validation of ``sql_field``/``sql_map_field`` params): it gets the statement check of SQL
    steps (no statements, no file or environment functions, no table functions) and may read
    only ``inputs``; each ``{{ name }}`` must stand where a value goes. Raises
    :class:`ParamError` naming ``param``.
    """
    try:
        masked = mask_params(text)
        tree = parse_expression(masked.text)
    except CompileError as e:
        raise ParamError(param, e.problems[0].message) from None
    except (ParseError, TokenError) as e:
        what = f"param '{param}'" if param else "the expression"
        raise ParamError(param, masked.unmask(f"{what} is not a valid SQL expression: "
                                              f"{parse_error_text(e)}")) from None
    issue = sqlcheck.check_expression(tree, inputs)
    if issue:
        raise ParamError(param, masked.unmask(issue.message))
    bad = misplaced_param(masked, tree)
    if bad:
        why, ref = bad
        raise ParamError(param, misplaced_message(why, ref, position=True))
    return tree, masked


def parse_error_text(e: Exception) -> str:
    """The first parse error of sqlglot in one line: what and near which token."""
    if isinstance(e, ParseError) and e.errors:
        err = e.errors[0]
        return f"{str(err.get('description', 'cannot parse')).rstrip('.')} near " \
               f"'{err.get('highlight', '')}'."
    return str(e).splitlines()[0]


def clear_parse_cache() -> None:
    """Forget parsed expressions (the benchmark times planning as a new process would)."""
    _parsed.cache_clear()


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: every column or alias a pattern writes goes through this."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, optionally qualified by a (quoted) table alias."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def alias(expression: exp.Expr, name: str) -> exp.Alias:
    """``expression AS "name"`` with the alias quoted."""
    return exp.Alias(this=expression, alias=ident(name))


def ordered(spec: OrderSpec, table: str | None = None) -> exp.Ordered:
    """An ORDER BY item with explicit NULLS placement (engines differ in their defaults)."""
    return exp.Ordered(this=col(spec.column, table), desc=spec.descending,
                       nulls_first=not spec.nulls_last)


def distinct_names(values: list[str], what: str = "column",
                   empty: str | None = None) -> list[str]:
    """Validator body for name lists: refuse repeats and, with ``empty``, an empty list."""
    if empty is not None and not values:
        raise ValueError(empty)
    dup = next((v for v in values if values.count(v) > 1), None)
    if dup is not None:
        raise ValueError(f"{what} '{dup}' is listed twice")
    return values


INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                           "USMALLINT", "UINTEGER", "UBIGINT"})


# Prefixes of DuckDB's number types (DECIMAL(18,3) starts with DECIMAL).
NUMBER_TYPES = (*sorted(INTEGER_TYPES), "FLOAT", "DOUBLE", "REAL", "DECIMAL")


def is_number_type(type_name: str | None) -> bool:
    """True for DuckDB's integer, floating-point and decimal types."""
    return bool(type_name) and str(type_name).upper().startswith(NUMBER_TYPES)


def is_integer_type(type_name: str | None) -> bool:
    """True for DuckDB integer types. Their sums differ in type between engines (DuckDB:
    HUGEINT, Spark: BIGINT), so patterns cast integer sums to BIGINT."""
    return (type_name or "").split("(")[0].strip().upper() in INTEGER_TYPES


_SIMPLE_AGGREGATES: dict[str, type[exp.AggFunc]] = {
    "sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "median": exp.Median}


def simple_aggregate(function: str, arg: exp.Expr | None) -> exp.Expr:
    """count (``arg`` None: count(*)), count_distinct, sum, avg, min, max or median of ``arg``.

    One place for the mapping the aggregate, pivot and window patterns share.
    """
    if function == "count":
        return exp.Count(this=arg if arg is not None else exp.Star())
    if arg is None:
        raise ValueError(f"function '{function}' needs a column")
    if function == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[arg]))
    return _SIMPLE_AGGREGATES[function](this=arg)


def fresh_name(base: str, taken: Iterable[str]) -> str:
    """A helper column name that no input column uses (compared case-insensitively)."""
    lowered = {t.lower() for t in taken}
    name = base
    while name.lower() in lowered:
        name = "_" + name
    return name


def tie_breakers(rel: Relation, used: Iterable[str]) -> list[exp.Ordered]:
    """The columns not in ``used``, ascending NULLs last: makes a row order deterministic.

    MAP columns are skipped: Spark cannot sort by them.
    """
    skip = set(used)
    return [ordered(OrderSpec(column=c.name)) for c in rel.columns
            if c.name not in skip and not c.type.upper().startswith("MAP")]


def literal(value: Any) -> exp.Expr:
    """A Python value as a SQL literal expression (strings quoted by sqlglot)."""
    special = non_finite_literal(value)  # inf/nan: never bare words (column names)
    return special if special is not None else exp.convert(value)


class ParamError(Exception):
    """Raised by a build function for a bad param value; becomes a one-line validation error.

    ``param`` names the param (``aggregations[1].column`` style paths are fine); the message
    says what is wrong and how to fix it, names in single quotes.
    """

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


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
    import inspect

    return inspect.cleandoc(doc)


class Registry:
    """The patterns by name; refuses duplicate names.

    Entries are Pattern objects or names of modules in this package (``"sessionize"`` for
    ``patterns/sessionize.py``). A module is imported the first time its pattern is needed:
    building its param model costs ~8 ms, and a pipeline uses a handful of the 38 patterns,
    so ``dockyard validate`` does not pay for the whole palette at start-up.
    """

    def __init__(self, patterns: Iterable[Pattern | str] = ()) -> None:
        self._patterns: dict[str, Pattern | None] = {}
        for p in patterns:
            self.register(p)

    def register(self, pattern: Pattern | str) -> None:
        name = pattern if isinstance(pattern, str) else pattern.name
        if name in self._patterns:
            raise ValueError(f"pattern '{name}' is registered twice")
        self._patterns[name] = None if isinstance(pattern, str) else pattern

    def get(self, name: str) -> Pattern:
        found = self._patterns[name]
        if found is None:
            module = importlib.import_module(f"{__package__}.{name}")
            found = getattr(module, "PATTERN", None)
            if not isinstance(found, Pattern) or found.name != name:
                raise ValueError(f"patterns/{name}.py must declare PATTERN = Pattern(name="
                                 f"'{name}', ...)")
            self._patterns[name] = found
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._patterns

    def __iter__(self) -> Iterator[Pattern]:
        return iter([self.get(name) for name in self._patterns])

    def __len__(self) -> int:
        return len(self._patterns)

    def names(self) -> list[str]:
        return list(self._patterns)

    def suggest(self, name: str) -> str:
        return did_you_mean(name, self._patterns)

    def by_category(self) -> dict[str, list[Pattern]]:
        out: dict[str, list[Pattern]] = {c: [] for c in CATEGORIES}
        for p in self:
            out[p.category].append(p)
        return {c: ps for c, ps in out.items() if ps}
