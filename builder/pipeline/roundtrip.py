"""Saving a pipeline keeps the comments of the file it was read from (ruamel.yaml round trip).

:func:`builder.pipeline.model.dump` writes a pipeline in Dockyard's canonical layout, which knows
nothing of comments. When the file the pipeline came from has comments, :func:`keep_comments`
lays the new content over that file's round-trip tree (ruamel.yaml): keys and values that did
not change keep their comments and the way they were written (quotes, flow or block style), new
keys and values come in the canonical layout, removed ones go with their comments. Steps are
matched by their ``id``, so moving a step moves its comments with it.

The old file is read with ruamel only after :func:`builder.pipeline.yamlio.loads` accepted it
(the alias, depth and value bounds of every read; ruamel's round-trip loader builds no Python
objects from tags). The result is read back with that same loader and must hold exactly the
data of the canonical text, or the canonical text is written instead: keeping a comment is
never worth a changed value (an alias shared by two places, a style that reads back
differently).
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError

from builder.errors import ConfigError
from builder.pipeline.yamlio import loads


def _yaml() -> YAML:
    """ruamel.yaml set to Dockyard's layout: 2-space maps, list items indented under their key,
    lines up to 100 characters, quotes kept as written. Round-trip mode reads YAML 1.2, whose
    only booleans are true/false, as :mod:`builder.pipeline.yamlio` does."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def has_comments(text: str) -> bool:
    """True when ``text`` may hold a YAML comment (a '#' anywhere: cheap, and the merge below
    is exact whatever the answer)."""
    return "#" in text


def keep_comments(previous: str, canonical: str) -> str:
    """``canonical`` (the pipeline as :func:`~builder.pipeline.model.dump` writes it) with the
    comments of ``previous`` (the text it was read from) where their keys are still there.

    Returns ``canonical`` unchanged when ``previous`` has no comments, cannot be read, or the
    merge would not read back as exactly the same data.
    """
    if not has_comments(previous):
        return canonical
    try:
        loads(previous)  # the bounds of every read, before ruamel sees the text
    except ConfigError:
        return canonical
    yaml = _yaml()
    try:
        old = yaml.load(previous)
        new = yaml.load(canonical)
    except (RuamelError, ValueError, RecursionError):
        return canonical
    if not isinstance(old, CommentedMap) or not isinstance(new, CommentedMap):
        return canonical
    merged = _merge(old, new)
    out = io.StringIO()
    try:
        yaml.dump(merged, out)
    except (RuamelError, ValueError, RecursionError):
        return canonical
    text = out.getvalue()
    try:
        same = loads(text) == loads(canonical)
    except ConfigError:
        same = False
    return text if same else canonical


def _merge(old: Any, new: Any) -> Any:
    """``new``'s content, in ``old``'s nodes (and so with their comments) where they match."""
    if isinstance(old, CommentedMap) and isinstance(new, CommentedMap):
        return _merge_map(old, new)
    if isinstance(old, CommentedSeq) and isinstance(new, CommentedSeq):
        return _merge_seq(old, new)
    if type(old) is type(new) and old == new:
        return old  # unchanged: as it was written (quotes, block style)
    if not isinstance(old, (CommentedMap, CommentedSeq)) and \
            not isinstance(new, (CommentedMap, CommentedSeq)) and old == new:
        return old  # the same value written another way ('1' vs "1"): keep the user's way
    return new


def _merge_map(old: CommentedMap, new: CommentedMap) -> CommentedMap:
    for key in [k for k in old if k not in new]:
        del old[key]
    for key, value in new.items():
        old[key] = _merge(old[key], value) if key in old else value
    for key in new:  # the new order (a key the app added goes where dump puts it)
        old.move_to_end(key)
    return old


def _merge_seq(old: CommentedSeq, new: CommentedSeq) -> CommentedSeq:
    by_id = {item.get("id"): item for item in old
             if isinstance(item, CommentedMap) and isinstance(item.get("id"), str)}
    if by_id and all(isinstance(item, CommentedMap) and item.get("id") for item in new):
        # Steps: matched by id, so a moved step keeps its comments; a renamed one is matched
        # with the step that is gone from the same place in the order of the unmatched ones.
        new_ids = {item["id"] for item in new}
        gone = [item for item in old if isinstance(item, CommentedMap)
                and item.get("id") not in new_ids]
        items = []
        for item in new:
            match = by_id.get(item["id"]) or (gone.pop(0) if gone else None)
            items.append(item if match is None else _merge(match, item))
    elif len(old) == len(new):
        items = [_merge(a, b) for a, b in zip(old, new)]
    else:
        return new
    if len(items) == len(old) and all(a is b for a, b in zip(items, old)):
        return old  # same items in the same order: the list keeps its own comments too
    if by_id:
        # Steps added, removed or moved: the comments inside each step go with it.
        new[:] = items
        return new
    old[:] = items
    return old
