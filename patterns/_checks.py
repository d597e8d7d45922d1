"""The checks of the expect pattern as written in YAML: parsed and validated, not yet SQL.

Not a pattern (the leading underscore keeps it out of the palette). ``expect`` turns each parsed
check into SQL; the catalog's ``expectations`` go through the same parser, so a check is spelled
and refused the same way everywhere. The checks follow dbt's and dbt_utils' data tests (names,
options and what passes), written as one-key mappings, e.g. ``- not_null: [id]``; any check may
also carry ``where:`` (dbt's ``config: where``), a SQL condition that picks the rows it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from builder.errors import did_you_mean

# Checks whose failures are rows of the input (quarantine can set those rows aside).
ROW_KINDS = ("not_null", "unique", "accepted_values", "not_accepted_values", "range",
             "expression", "relationships", "sequential_values", "mutually_exclusive_ranges")
# Checks about the whole table (or each group of it): under quarantine they stop the run.
TABLE_KINDS = ("row_count", "recency", "not_null_proportion", "at_least_one", "not_constant",
               "equality")
KINDS = ROW_KINDS + TABLE_KINDS
WHERE = "where"
# Units of recency's and sequential_values' 'datepart' (as dbt's dateadd takes them).
DATEPARTS = ("second", "minute", "hour", "day", "week", "month", "year")
GAPS = ("allowed", "not_allowed", "required")


@dataclass
class Spec:
    """One parsed check (one item of ``checks``, or one column of a not_null item)."""

    kind: str
    param: str  # where it is written, e.g. 'checks[2].range'
    columns: list[str] = field(default_factory=list)  # checked columns of the first input
    values: list[Any] = field(default_factory=list)
    min: Any = None
    max: Any = None
    sql: str = ""
    where: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # kind-specific, validated

    @property
    def name(self) -> str:
        """The name failures are reported under (unique within a step)."""
        if self.kind == "row_count":
            base = "row_count"
        elif self.kind == "expression":
            base = f"expression({self.sql.strip()})"
        elif self.kind == "relationships":
            to = f"{self.options['to']}." if self.options["to"] else ""
            base = f"relationships({self.columns[0]} -> {to}{self.options['field']})"
        elif self.kind == "equality":
            base = f"equality({self.options['to'] or ''})"
        else:
            base = f"{self.kind}({', '.join(self.columns)})"
        return base if self.where is None else f"{base} where {self.where.strip()}"

    @property
    def row_level(self) -> bool:
        return self.kind in ROW_KINDS


def _column_list(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(
            isinstance(c, str) and c for c in items):
        raise ValueError(f"{where} takes a list of column names, e.g. [email]")
    return list(items)


def _names(value: Any, where: str) -> list[str]:
    """An optional list of column names (a single name is a list of one); repeats refused."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(c, str) and c for c in items):
        raise ValueError(f"{where} takes a list of column names, e.g. [region]")
    dup = next((c for c in items if items.count(c) > 1), None)
    if dup:
        raise ValueError(f"{where}: column '{dup}' is listed twice")
    return list(items)


def _mapping(value: Any, where: str, keys: tuple[str, ...], example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} takes a mapping, e.g. {example}")
    for k in value:
        if k not in keys:
            raise ValueError(f"{where} has an unknown key '{k}'." + did_you_mean(str(k), keys)
                             + f" Valid keys: {', '.join(keys)}")
    return value


def _column(m: dict[str, Any], key: str, where: str, what: str = "the column to check") -> str:
    value = m.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} needs '{key}', {what}")
    return value


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (dict, list)):
        raise ValueError(f"{where} must be a single value (a number, text or date), not "
                         f"{'null' if value is None else type(value).__name__}")
    return value


def _number(value: Any, where: str, *, low: float | None = None,
            high: float | None = None, whole: bool = False) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        not whole or isinstance(value, int))
    if not ok or (low is not None and value < low) or (high is not None and value > high):
        kind = "a whole number" if whole else "a number"
        bounds = "" if low is None else f" >= {low:g}" if high is None else \
            f" between {low:g} and {high:g}"
        raise ValueError(f"{where} must be {kind}{bounds}, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    return value


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{where} got {value!r}." + did_you_mean(str(value), choices)
                         + f" Valid values: {', '.join(choices)}")
    return str(value)


def _values(m: dict[str, Any], where: str) -> list[Any]:
    values = m.get("values")
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where} needs 'values', a non-empty list of values")
    return [_scalar(v, f"{where}.values[{j}]") for j, v in enumerate(values)]


def _bound_pair(m: dict[str, Any], where: str, whole: bool) -> tuple[Any, Any]:
    lo, hi = m.get("min"), m.get("max")
    if lo is None and hi is None:
        raise ValueError(f"{where} needs 'min', 'max' or both")
    if whole:
        for k, v in (("min", lo), ("max", hi)):
            if v is not None:
                _number(v, f"{where}.{k}", low=0, whole=True)
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{where}: min {lo} is above max {hi}")
        return lo, hi
    return (None if lo is None else _scalar(lo, f"{where}.min"),
            None if hi is None else _scalar(hi, f"{where}.max"))


def _parse_one(kind: str, value: Any, where: str) -> list[Spec]:
    """The spec(s) of one check; ``where`` is its place for messages."""
    if kind == "not_null":
        return [Spec(kind, f"{where}[{j}]", [c]) for j, c in enumerate(_column_list(value, where))]
    if kind == "unique":
        columns = _column_list(value, where)
        dup = next((c for c in columns if columns.count(c) > 1), None)
        if dup:
            raise ValueError(f"{where}: column '{dup}' is listed twice")
        return [Spec(kind, where, columns)]
    if kind in ("accepted_values", "not_accepted_values"):
        m = _mapping(value, where, ("column", "values"),
                     "{column: status, values: [active, closed]}")
        return [Spec(kind, where, [_column(m, "column", where)], values=_values(m, where))]
    if kind == "range":
        m = _mapping(value, where, ("column", "min", "max", "inclusive"),
                     "{column: age, min: 0}")
        column = _column(m, "column", where)
        lo, hi = _bound_pair(m, where, whole=False)
        inclusive = _flag(m.get("inclusive", True), f"{where}.inclusive")
        return [Spec(kind, where, [column], min=lo, max=hi, options={"inclusive": inclusive})]
    if kind == "row_count":
        m = _mapping(value, where, ("min", "max"), "{min: 1}")
        lo, hi = _bound_pair(m, where, whole=True)
        return [Spec(kind, where, min=lo, max=hi)]
    if kind == "expression":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where} takes a SQL boolean expression, e.g. 'amount >= 0'")
        return [Spec(kind, where, sql=value)]
    if kind == "relationships":
        m = _mapping(value, where, ("column", "to", "field"),
                     "{column: customer_id, to: customers, field: id}")
        column = _column(m, "column", where)
        to = m.get("to")
        if to is not None and (not isinstance(to, str) or not to):
            raise ValueError(f"{where}.to must name an input of the step, got {to!r}")
        ref = m.get("field", column)
        if not isinstance(ref, str) or not ref:
            raise ValueError(f"{where}.field must be a column name, got {ref!r}")
        return [Spec(kind, where, [column], options={"to": to, "field": ref})]
    if kind == "equality":
        if isinstance(value, str):
            value = {"to": value}
        m = _mapping(value, where, ("to", "compare_columns"),
                     "{to: expected_orders, compare_columns: [id, amount]}")
        to = m.get("to")
        if to is not None and (not isinstance(to, str) or not to):
            raise ValueError(f"{where}.to must name an input of the step, got {to!r}")
        compare = _names(m.get("compare_columns"), f"{where}.compare_columns")
        return [Spec(kind, where, compare, options={"to": to})]
    if kind == "recency":
        m = _mapping(value, where, ("column", "datepart", "interval", "group_by",
                                    "ignore_time_component"),
                     "{column: updated_at, datepart: day, interval: 1}")
        column = _column(m, "column", where, "the date or timestamp column to check")
        if "datepart" not in m or "interval" not in m:
            raise ValueError(f"{where} needs 'datepart' and 'interval', e.g. "
                             "{datepart: day, interval: 1} for data newer than a day")
        return [Spec(kind, where, [column], options={
            "datepart": _choice(m["datepart"], f"{where}.datepart", DATEPARTS),
            "interval": _number(m["interval"], f"{where}.interval", low=0, whole=True),
            "group_by": _names(m.get("group_by"), f"{where}.group_by"),
            "ignore_time_component": _flag(m.get("ignore_time_component", False),
                                           f"{where}.ignore_time_component")})]
    if kind == "sequential_values":
        if isinstance(value, str):
            value = {"column": value}
        m = _mapping(value, where, ("column", "interval", "datepart", "group_by"),
                     "{column: invoice_no, interval: 1}")
        column = _column(m, "column", where)
        datepart = m.get("datepart")
        interval = m.get("interval", 1)
        if datepart is not None:
            datepart = _choice(datepart, f"{where}.datepart", DATEPARTS)
            _number(interval, f"{where}.interval", whole=True)
        else:
            _number(interval, f"{where}.interval")
        return [Spec(kind, where, [column], options={
            "interval": interval, "datepart": datepart,
            "group_by": _names(m.get("group_by"), f"{where}.group_by")})]
    if kind == "mutually_exclusive_ranges":
        m = _mapping(value, where, ("lower_bound_column", "upper_bound_column", "partition_by",
                                    "gaps", "zero_length_range_allowed"),
                     "{lower_bound_column: valid_from, upper_bound_column: valid_to}")
        lower = _column(m, "lower_bound_column", where, "the column where each range starts")
        upper = _column(m, "upper_bound_column", where, "the column where each range ends")
        return [Spec(kind, where, [lower, upper], options={
            "partition_by": _names(m.get("partition_by"), f"{where}.partition_by"),
            "gaps": _choice(m.get("gaps", "allowed"), f"{where}.gaps", GAPS),
            "zero_length_range_allowed": _flag(m.get("zero_length_range_allowed", False),
                                               f"{where}.zero_length_range_allowed")})]
    if kind == "not_null_proportion":
        m = _mapping(value, where, ("column", "at_least", "at_most", "group_by"),
                     "{column: email, at_least: 0.9}")
        column = _column(m, "column", where)
        if "at_least" not in m:
            raise ValueError(f"{where} needs 'at_least', the smallest share of non-NULL "
                             "values (0 to 1), e.g. 0.95")
        lo = _number(m["at_least"], f"{where}.at_least", low=0, high=1)
        hi = _number(m.get("at_most", 1), f"{where}.at_most", low=0, high=1)
        if lo > hi:
            raise ValueError(f"{where}: at_least {lo} is above at_most {hi}")
        return [Spec(kind, where, [column], min=lo, max=hi, options={
            "group_by": _names(m.get("group_by"), f"{where}.group_by")})]
    # at_least_one, not_constant: a column, optionally per group
    if isinstance(value, str):
        value = {"column": value}
    m = _mapping(value, where, ("column", "group_by"), "{column: email, group_by: [region]}")
    column = _column(m, "column", where)
    group_by = _names(m.get("group_by"), f"{where}.group_by")
    if column in group_by:
        raise ValueError(f"{where}: column '{column}' is also in 'group_by'")
    return [Spec(kind, where, [column], options={"group_by": group_by})]


def parse_checks(raw: list[Any]) -> list[Spec]:
    """The checks of a ``checks`` list; raises ValueError naming the bad item."""
    if not raw:
        raise ValueError("list at least one check, e.g. - not_null: [id]")
    specs: list[Spec] = []
    for i, item in enumerate(raw):
        where = f"checks[{i}]"
        kinds = [k for k in item if k != WHERE] if isinstance(item, dict) else []
        if not isinstance(item, dict) or len(kinds) != 1:
            raise ValueError(f"{where} must be a mapping with exactly one check, e.g. "
                             "'- not_null: [email]'")
        kind = kinds[0]
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown check '{kind}'." + (
                did_you_mean(str(kind), KINDS) or "") + f" Valid checks: {', '.join(KINDS)}")
        condition = item.get(WHERE)
        if WHERE in item and (not isinstance(condition, str) or not condition.strip()):
            raise ValueError(f"{where}.where takes a SQL condition that picks the rows to "
                             "check, e.g. \"status = 'active'\"")
        for spec in _parse_one(kind, item[kind], f"{where}.{kind}"):
            spec.where = condition
            specs.append(spec)
    names = [s.name for s in specs]
    dup_name = next((n for n in names if names.count(n) > 1), None)
    if dup_name:
        raise ValueError(f"check '{dup_name}' is listed twice")
    return specs
