"""Graphviz DOT text: every name is written as a quoted, escaped DOT string.

Pipeline names, file names and staging table names are free text ('a "b"', '"]; evil [',
newlines): pasted into DOT unquoted they would end the statement and add nodes, edges or
attributes of their own.
"""

from __future__ import annotations


def quote(text: str) -> str:
    """A DOT string literal of ``text`` (newlines become line breaks in the box).

    >>> quote('a "b"')
    '"a \\\\"b\\\\""'
    """
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\r\n", "\\n")
               .replace("\n", "\\n").replace("\r", "\\n"))
    return f'"{escaped}"'
