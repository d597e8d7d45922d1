"""YAML reading with line numbers and writing in a stable, diff-friendly form.

PyYAML's safe loader is extended so every mapping remembers the line of each key; the model uses
that to point problems at ``file.yaml:LINE``. Dumping keeps insertion order, writes multi-line
strings (SQL) as literal blocks and short lists/maps inline, so a load/save cycle is stable.

Reading is bounded, so a hostile file cannot exhaust memory or the stack: aliases (``*name``) may
expand to at most :data:`MAX_ALIAS_NODES` values in all (a 500-byte "billion laughs" file would
otherwise expand to billions), values nest at most :data:`MAX_DEPTH` levels, and a value PyYAML
cannot build (``2024-02-30``, a 5000-digit number) is a one-line error at its line, not a crash.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from builder.errors import ConfigError, Problem


class LineDict(dict):  # type: ignore[type-arg]
    """A dict that knows the YAML line of itself and of each of its keys (1-based)."""

    line: int | None = None
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int | None:
        return getattr(self, "key_lines", {}).get(key, self.line)


# Values nested deeper than this are refused: composing and building a value takes a few Python
# frames per level, and a 5000-deep list (10 KB of '[') would overflow the stack. Pipeline files
# nest under ten levels.
MAX_DEPTH = 100
# Values reached through aliases, counted with repeats: a few anchors for shared settings expand
# to tens of values; 9 nested aliases of 9 items would expand to 387 million.
MAX_ALIAS_NODES = 10_000


class ValueProblem(yaml.constructor.ConstructorError):
    """A YAML file that parses but is refused: a bound exceeded or a value that cannot exist.

    ``problem`` is the whole one-line message (no "invalid YAML" prefix: the syntax is fine).
    """


class _LineMappings:
    """Mappings become :class:`LineDict` (key lines kept); keys must be plain and unique.

    Also bounds what a file can make the loader do (see the module docstring).
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # The pure-Python composer recurses once per level: stop before the stack does.
        # (libyaml's composer is checked after composing, in construct_document.)
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[attr-defined]
            raise ValueProblem(None, None, _too_deep(), mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[misc, no-any-return]
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        _check_bounds(node)
        return super().construct_document(node)  # type: ignore[misc]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except (ValueError, OverflowError) as e:
            # A scalar that matches YAML's date or number syntax but cannot be built:
            # '2024-02-30', '2024-01-01T24:00:00', a number of 5000 digits.
            raise ValueProblem(None, None, _bad_value(node, e), node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            if not isinstance(key, (str, int, float, bool, dt.date)) or key is None:
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain values", key_node.start_mark
                )
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            result[key] = self.construct_object(value_node, deep=True)  # type: ignore[attr-defined]
            result.key_lines[key] = key_node.start_mark.line + 1
        return result


def _too_deep() -> str:
    return (f"values are nested more than {MAX_DEPTH} levels deep. A pipeline file nests a few "
            "levels: check the brackets and indentation.")


def _check_bounds(root: yaml.Node) -> None:
    """Refuse a document nested too deep or whose aliases expand to too many values.

    Walks the composed nodes without recursion, visiting a node again each time an alias
    reaches it (an alias is the anchored node itself in PyYAML's node graph), so the work is
    bounded by the file's size plus :data:`MAX_ALIAS_NODES`.
    """
    seen: set[int] = set()
    repeats = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueProblem(None, None, _too_deep(), node.start_mark)
        if id(node) in seen:
            repeats += 1
            if repeats > MAX_ALIAS_NODES:
                raise ValueProblem(
                    None, None, f"aliases ('*name') expand to more than {MAX_ALIAS_NODES:,} "
                    "values (an 'alias bomb'). Write the repeated values out, or use fewer "
                    "aliases.", node.start_mark)
        else:
            seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def _bad_value(node: yaml.Node, e: Exception) -> str:
    text = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    shown = f"'{text}'" if len(text) <= 40 else f"'{text[:20]}...' ({len(text):,} characters)"
    kind = "date or time" if node.tag.endswith(":timestamp") else \
        "number" if node.tag.endswith((":int", ":float")) else "value"
    reason = str(e)
    if "digits" in reason:  # Python's int() refuses long texts (CVE-2020-10735)
        limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()  # 3.10.7+
        reason = f"more than {limit:,} digits"
    elif "offset" in reason:  # '+25:00': Python's text names its own types
        reason = "the time zone offset must be less than 24 hours"
    return (f"{shown} is not a valid {kind} ({reason}). Correct it, or put it in quotes to "
            "keep it as text.")


class _Loader(_LineMappings, yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false), so a join's ``on:`` stays ``on``."""


# libyaml's parser (when PyYAML was built with it) reads a 500-step file about 5x faster. Its
# syntax errors are terser ("did not find expected key"), so text it refuses is read again by
# the pure-Python loader, whose message says what was expected instead.
_FastLoader: type[Any] = _Loader
if getattr(yaml, "__with_libyaml__", False):
    class _CLoader(_LineMappings, yaml.CSafeLoader):
        """The same loader on libyaml's parser."""

    _FastLoader = _CLoader

_YAML12_RESOLVERS = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LOADERS: list[type[Any]] = [_Loader] if _FastLoader is _Loader else [_Loader, _FastLoader]
for _cls in _LOADERS:
    _cls.yaml_implicit_resolvers = {k: list(v) for k, v in _YAML12_RESOLVERS.items()}
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    _cls.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        _cls.construct_mapping,
    )


_YAML_TOKENS = {
    "<block sequence start>": "a list item ('-')",
    "<block mapping start>": "a new key",
    "<block end>": "the end of the block",
    "<stream end>": "the end of the file",
}


def loads(text: str, file: str | None = None) -> Any:
    """Parse YAML text; syntax errors become a one-line :class:`ConfigError` with the line."""
    try:
        return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - SafeLoader subclass
    except ValueProblem as e:
        raise _value_error(e, file) from None
    except (yaml.YAMLError, RecursionError):
        pass  # read again below for the clearer message (and the depth bound's line)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except ValueProblem as e:
        raise _value_error(e, file) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        what = (e.problem or e.context or "invalid YAML").strip()
        for token, words in _YAML_TOKENS.items():
            what = what.replace(f"'{token}'", words).replace(token, words)
        raise ConfigError(
            Problem(f"invalid YAML: {what}. Check indentation and quoting.", file=file, line=line)
        ) from None
    except yaml.reader.ReaderError as e:
        # A control character (NUL, ESC, ...) written raw: say which, on what line, and how
        # to write it (the default message spans two lines and counts characters).
        char = e.character if isinstance(e.character, int) else ord(e.character)
        line = text.count("\n", 0, e.position) + 1
        escape = f"\\x{char:02x}" if char < 0x100 else f"\\u{char:04x}"
        raise ConfigError(Problem(
            f"invalid YAML: the character U+{char:04X} is not allowed in YAML text. "
            f'Remove it, or write it as an escape in double quotes ("{escape}").',
            file=file, line=line)) from None
    except yaml.YAMLError as e:
        raise ConfigError(Problem(f"invalid YAML: {e}", file=file)) from None


def _value_error(e: ValueProblem, file: str | None) -> ConfigError:
    mark = e.problem_mark
    return ConfigError(Problem(str(e.problem), file=file, line=mark.line + 1 if mark else None))


def parse_scalar(text: str) -> Any:
    """Read a ``--set`` value as a YAML scalar: ``8`` -> 8, ``2024-01-01`` -> date, else a string.

    Raises :class:`ConfigError` for a value that looks like a date or number but is none
    (``2024-13-45``): taken as text it would reach SQL as a string nobody meant.
    """
    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except ValueProblem as e:
        raise ConfigError(str(e.problem)) from None
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)):
        return text
    return "" if value is None and text.strip() not in ("null", "~") else value


class BlockDict(dict):  # type: ignore[type-arg]
    """A mapping always written in block style (top-level sections of a pipeline file)."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key ("steps:\n  - id: a"), as people write them.
        super().increase_indent(flow, False)


# Same YAML 1.2 booleans as the loader: 'on', 'yes', 'no' are written unquoted.
_Dumper.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


# Line breaks YAML knows besides \n: PyYAML folds them inside single-quoted text, so a value
# holding one would not read back the same. Double quotes escape them.
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(b in value for b in _OTHER_BREAKS):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "\n" in value:
        # Literal block keeps SQL readable. PyYAML cannot write trailing spaces on a line in a
        # block, so such text is written quoted: dropping them would change the value (a
        # column name or a value in a param must survive a save exactly).
        if all(line == line.rstrip() for line in value.split("\n")):
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "'" in value and '"' not in value and "\\" not in value:
        # SQL quotes text with ': prefer "a = 'x'" to 'a = ''x''' where quoting is needed.
        analysis = dumper.analyze_scalar(value)  # type: ignore[attr-defined]
        if not analysis.allow_flow_plain or not analysis.allow_block_plain:
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _is_leaf(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and _is_leaf(v))
                   for v in value.values()) and all(
            not (isinstance(v, str) and "\n" in v) for v in value.values())
    if isinstance(value, list):
        return all(not isinstance(v, (dict, list)) for v in value) and all(
            not (isinstance(v, str) and "\n" in v) for v in value)
    return True


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.MappingNode:  # type: ignore[type-arg]
    flow = bool(value) and _is_leaf(value) and len(str(value)) < 90
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=flow)


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.SequenceNode:  # type: ignore[type-arg]
    flow = _is_leaf(value) and len(str(value)) < 90
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(LineDict, _represent_dict)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(
    BlockDict,
    lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=False),
)


def dumps(data: Any) -> str:
    """Dump data in Dockyard's canonical layout (insertion order, inline leaves, SQL blocks)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def read_text_file(path: Path, what: str = "file") -> str:
    """The UTF-8 text of a regular file; a ConfigError for anything else, before reading.

    Reading a named pipe waits forever for a writer and a device such as /dev/zero never
    ends, so the path is opened without blocking and checked on the open file (no window
    between check and read for the path to be swapped). ``what`` names the file in messages
    ("pipeline file", "catalog file").
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' not found.", file=str(path)) from None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise ConfigError(f"cannot read {what} '{path}': {e}.", file=str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
            raise ConfigError(f"{what} '{path}' is {kind}, not a regular file: give the path "
                              "of a .yaml file.", file=str(path))
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} '{path}': {e}.", file=str(path)) from None
    finally:
        os.close(fd)
