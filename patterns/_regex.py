"""Which regular-expression syntax a pattern uses that RE2 (DuckDB) or Java (Spark) lack.

Read from the pattern's text after Python has compiled it (so it is well formed): the public
``re`` module says whether a pattern is valid and how many groups it has, not which constructs
it uses, and the stdlib's parser that does (``re._parser``) is private.
"""

from __future__ import annotations

import re

_OCTAL = re.compile(r"[0-7]{3}")
_QUANTIFIER = re.compile(r"\{\d*(,\d*)?\}")
_LOOKAHEAD = "lookahead/lookbehind '(?=...)', '(?<=...)'"
_NEGATIVE = "negative lookahead/lookbehind '(?!...)', '(?<!...)'"
_EXTENSIONS = (("=", _LOOKAHEAD), ("<=", _LOOKAHEAD), ("!", _NEGATIVE), ("<!", _NEGATIVE),
               (">", "atomic groups '(?>...)'"), ("(", "conditional groups '(?(1)...)'"),
               ("P=", "backreferences like '\\1'"))


def unportable(text: str, verbose: bool) -> str | None:
    """The first construct of ``text`` no engine but Python's has (what to tell the user), or
    None. ``verbose``: the pattern is compiled with re.VERBOSE (whitespace and '#' comments
    outside classes are not pattern text).

    >>> unportable("a(?=b)", False)
    "lookahead/lookbehind '(?=...)', '(?<=...)'"
    >>> unportable(r"[(?=]\(?=", False) is None
    True
    """
    found: list[tuple[int, int, str]] = []  # (where its construct starts, outer first, what)
    i, n = 0, len(text)
    in_class = False
    stack: list[tuple[bool, int]] = []  # each open group: the verbose flag outside it, start
    atom = 0  # where the last atom starts (what a quantifier applies to)
    while i < n:
        c = text[i]
        if c == "\\":
            nxt = text[i + 1:i + 2]
            if in_class or not nxt:
                i += 2
                continue
            if _OCTAL.match(text, i + 1) or nxt == "0":  # an octal escape, not a group
                atom = i
                i += 2
                continue
            if nxt.isdigit():
                found.append((i, 1, "backreferences like '\\1'"))
            elif nxt == "Z":
                found.append((i, 1, "'\\Z' (use '$')"))
            atom = i
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            i += 1
            continue
        if verbose and c in " \t\n\r\f\v":
            i += 1
            continue
        if verbose and c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if c == "[":
            atom = i
            i += 1
            if text[i:i + 1] == "^":
                i += 1
            if text[i:i + 1] == "]":  # a ']' first in a class is a literal
                i += 1
            in_class = True
            continue
        if c == "(":
            if text.startswith("(?#", i):  # a comment, to the first unescaped ')'
                i += 3
                while i < n and text[i] != ")":
                    i += 2 if text[i] == "\\" else 1
                i += 1
                continue
            stack.append((verbose, i))
            if text.startswith("(?", i):
                for prefix, what in _EXTENSIONS:
                    if text.startswith(prefix, i + 2):
                        found.append((i, 1, what))
                        break
                m = re.match(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?:", text[i:])
                if m:
                    verbose = ("x" in m.group(1) or verbose) and "x" not in (m.group(2) or "")
                    i += m.end()
                    continue
                i += 2
                continue
            i += 1
            continue
        if c == ")":
            if stack:
                verbose, atom = stack.pop()
            i += 1
            continue
        if c in "*+?":
            if text[i + 1:i + 2] == "+":
                found.append((atom, 0, "possessive quantifiers like '*+'"))
                i += 1
            i += 1
            continue
        if c == "{":
            m = _QUANTIFIER.match(text, i)
            if m and m.group() != "{}":  # '{' that starts no quantifier is a literal
                if text[m.end():m.end() + 1] == "+":
                    found.append((atom, 0, "possessive quantifiers like '*+'"))
                i = m.end()
                continue
        atom = i
        i += 1
    # The construct that starts first; a possessive quantifier before what it applies to.
    return min(found)[2] if found else None
