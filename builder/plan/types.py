"""The types the planner and the patterns share: a column, a relation, a param error.

They sit at the bottom of the plan layer so that both the planner (:mod:`builder.plan.compiler`,
:mod:`builder.plan.sources`, :mod:`builder.plan.schema`) and every pattern module can import them
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class ColumnInfo:
    """A column of a relation: name and DuckDB type name (e.g. ``BIGINT``, ``TIMESTAMP``)."""

    name: str
    type: str


# The columns of a source or step, in order.
Schema = tuple[ColumnInfo, ...]


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


class ParamError(Exception):
    """A bad param value; the planner turns it into a one-line validation error.

    Raised by a pattern's build function, by the column checks of the planner and by the
    catalog's read stages. ``param`` names the param (``aggregations[1].column`` style paths are
    fine); the message says what is wrong and how to fix it, names in single quotes.
    """

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


class ParamErrors(Exception):
    """Several :class:`ParamError` found at once (pydantic reports every bad field)."""

    def __init__(self, errors: list[ParamError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors
