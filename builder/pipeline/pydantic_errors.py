"""Pydantic validation errors in Dockyard's wording: one line per param, names in quotes.

Pattern params, catalog entries and the pipeline file are pydantic models; whichever fails,
users read ``param 'how' got 'outer_left'. Valid values: ...`` rather than pydantic's report.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import ValidationError

from builder.errors import did_you_mean


def _literal_choices(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    if len(loc) != 1 or loc[0] not in getattr(model, "model_fields", {}):
        return None
    ann = model.model_fields[loc[0]].annotation  # type: ignore[attr-defined]
    for t in [ann, *typing.get_args(ann)]:
        if typing.get_origin(t) is typing.Literal:
            return [str(a) for a in typing.get_args(t)]
    return None


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "int", "float", "bool", "list[...]", "dict[...]",
                      "OrderSpec", "function-after", "function-plain", "literal"):
            continue
        elif re.match(r"^(list|dict|literal|str|int|float|union|tagged-union)\[", str(part)):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def pydantic_messages(model: Any, e: ValidationError) -> list[tuple[str, str]]:
    """(param, message) pairs in Dockyard's wording for a pydantic ValidationError."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for err in e.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        param = _loc_text(loc) or "params"
        typ = err.get("type", "")
        value = err.get("input")
        if typ == "extra_forbidden":
            allowed = list(getattr(model, "model_fields", {}))
            msg = f"unknown param '{param}'." + (did_you_mean(str(loc[-1]), allowed) or (
                " Valid params: " + ", ".join(allowed) + "."))
        elif typ == "missing":
            desc = model.model_fields[loc[0]].description if len(loc) == 1 and loc[0] in \
                getattr(model, "model_fields", {}) else None
            if desc and not desc[:2].isupper():
                desc = desc[0].lower() + desc[1:]
            msg = f"param '{param}' is required" + (f": {desc}" if desc else ".")
            msg = msg if msg.endswith(".") else msg + "."
        elif typ == "literal_error":
            choices = _literal_choices(model, loc) or re.findall(
                r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            msg = f"param '{param}' got '{value}'." + (
                " Valid values: " + ", ".join(choices) + "." if choices else "")
        elif typ in ("value_error", "assertion_error"):
            text = str(err.get("msg", "")).removeprefix("Value error, ").removeprefix(
                "Assertion failed, ")
            msg = f"param '{param}': {text}" if param != "params" else text
            msg = msg if msg.endswith(".") else msg + "."
        else:
            text = str(err.get("msg", "invalid value"))
            text = text[0].lower() + text[1:]
            shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
            msg = f"param '{param}': {text}, got {shown}."
        if msg in seen:
            continue
        seen.add(msg)
        out.append((param, msg))
    # A union failing on every branch yields one error per branch; keep the first per param.
    firsts: dict[str, str] = {}
    for param, msg in out:
        firsts.setdefault(param, msg)
    return list(firsts.items())

