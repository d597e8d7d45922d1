"""The field DSL of pattern params: how a param model says which fields hold column names,
order specs or SQL expressions.

A pattern's ``Params`` subclasses :class:`PatternParams` and declares its column fields with
:func:`column_field` and friends; the app shows pickers for them and the planner checks the
names against the input's schema before ``build`` is called (see :func:`field_kind`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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


def distinct_names(values: list[str], what: str = "column",
                   empty: str | None = None) -> list[str]:
    """Validator body for name lists: refuse repeats and, with ``empty``, an empty list."""
    if empty is not None and not values:
        raise ValueError(empty)
    dup = next((v for v in values if values.count(v) > 1), None)
    if dup is not None:
        raise ValueError(f"{what} '{dup}' is listed twice")
    return values


