"""Pattern reference generated from the registry: ``dockyard patterns`` and docs/patterns.md.

The reference is derived from each pattern's docstring and param model, so it cannot drift from
the code; a test fails when the committed docs/patterns.md differs from :func:`patterns_markdown`.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from builder import fsio
from builder.pipeline.yamlio import dumps
from patterns import PATTERNS
from patterns.base import Pattern
from patterns.fields import field_kind

DOC_PATH = "docs/patterns.md"


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        parts = [_type_text(a) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + (" (optional)" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {_type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping {_type_text(args[0])} -> {_type_text(args[1])}" if args else "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "{" + ", ".join(item_keys(annotation)) + "}"
    return getattr(annotation, "__name__", str(annotation))


def item_keys(model: type[BaseModel]) -> list[str]:
    """The YAML keys of a nested item (an aggregation, a check): aliases where a field has one
    (``as`` is a Python keyword, so the field is ``as_`` with the alias ``as``)."""
    return [f.alias or n for n, f in model.model_fields.items()]


def item_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a param's nested items (``list[Model]``, ``Model | None``, ...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = item_model(arg)
        if found is not None:
            return found
    return None


def param_rows(pattern: Pattern) -> list[dict[str, Any]]:
    """One row per param: name, type, required, default, description, kind (and ``keys``, the
    YAML keys of its nested items, for a list of mappings such as aggregations)."""
    rows = []
    for name, f in pattern.params.model_fields.items():
        kind, inp = field_kind(pattern.params, name)
        required = f.is_required()
        default: Any = None
        if not required:
            default = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
            if default is PydanticUndefined:
                default = None
        row = {"name": f.alias or name, "type": _type_text(f.annotation),
               "required": required, "default": default,
               "description": f.description or "", "kind": kind, "input": inp}
        nested = item_model(f.annotation)
        if nested is not None:
            row["keys"] = item_keys(nested)
        rows.append(row)
    return rows


def patterns_json() -> list[dict[str, Any]]:
    return [{"name": p.name, "category": p.category, "inputs": p.arity,
             "summary": p.summary, "help": p.help, "params": param_rows(p),
             "example": p.example, "keywords": list(p.keywords)} for p in PATTERNS]


def patterns_table() -> str:
    lines = []
    for category, pats in PATTERNS.by_category().items():
        lines.append(f"{category}")
        for p in pats:
            params = ", ".join(r["name"] + ("" if r["required"] else "?") for r in param_rows(p))
            lines.append(f"  {p.name:<16} {p.summary}")
            lines.append(f"  {'':<16} inputs: {p.arity_text()}; params: {params or '-'}")
        lines.append("")
    lines.append(f"{len(PATTERNS)} patterns. Details: docs/patterns.md or "
                 "'dockyard patterns --format json'.")
    return "\n".join(lines)


def _default_text(value: Any) -> str:
    if value is None:
        return ""
    return f"`{dumps(value).strip()}`" if not isinstance(value, str) else f"`{value}`"


def patterns_markdown() -> str:
    """The whole reference page, deterministic."""
    out = ["# Pattern reference", "",
           "Generated from the code by `python -m builder.cli.docs` (a test fails when it is out of "
           "date). Each pattern is a step: `pattern: NAME` plus `params:`. Column names in "
           "params match the input's columns ignoring case, as DuckDB, Spark and dbt_utils "
           "match them (`drop: [FIELD_3]` drops `field_3`); the step uses the input's "
           "spelling, so output names such as `sum_amount` follow the data, not the param.",
           ""]
    for category, pats in PATTERNS.by_category().items():
        out.append(f"- **{category}**: " + ", ".join(f"[`{p.name}`](#{p.name})" for p in pats))
    out.append("")
    for category, pats in PATTERNS.by_category().items():
        out += [f"## {category}", ""]
        for p in pats:
            out += [f"### {p.name}", "", f"Inputs: {p.arity_text()}."
                    + (f" Found in the app's palette by: {', '.join(p.keywords)}." if p.keywords
                       else ""), "", p.help, ""]
            rows = param_rows(p)
            if rows:
                out += ["| param | type | required | default | description |",
                        "|---|---|---|---|---|"]
                for r in rows:
                    desc = r["description"].replace("|", "\\|").replace("\n", " ")
                    typ = r["type"].replace("|", "\\|")
                    out.append(f"| `{r['name']}` | {typ} | {'yes' if r['required'] else 'no'} "
                               f"| {_default_text(r['default']).replace('|', chr(92) + '|')} "
                               f"| {desc} |")
                out.append("")
            example: dict[str, Any] = {"id": f"my_{p.name}", "pattern": p.name}
            if p.arity != 0:
                example["inputs"] = ["input_a", "input_b"][: 2 if p.arity in (2, "n") else 1]
            example["params"] = p.example
            out += ["Example:", "", "```yaml", dumps([example]).rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / DOC_PATH
    fsio.write_text(path, patterns_markdown())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
