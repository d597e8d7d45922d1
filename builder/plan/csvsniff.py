"""CSV files that DuckDB would read wrongly without an error (ragged rows).

DuckDB's CSV sniffer copes with a ragged file (a row with more or fewer fields than the others)
by skipping the leading lines that disagree, or by falling back to a delimiter that makes each
whole line one column. Either way rows are lost without an error, so a source whose file is
ragged is refused while planning, with the option that fixes it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from sqlglot import exp

from builder.pipeline.model import Source
from builder.plan.reader_options import option_args
from builder.plan.sandbox import sandboxed_cursor

_SNIFF_CACHE: dict[tuple[object, ...], str] = {}


def ragged_csv(src: Source, files: tuple[tuple[str, int, int], ...],
               dirs: list[str]) -> str | None:
    """Why reading a CSV source would silently lose or garble rows, or None when it would not.

    ``files`` are the source's file identities (path, size, mtime), ``dirs`` the folders the
    sniffing cursor may read. Results are cached by file identity and read options.
    """
    options = tuple(sorted((str(k), repr(v)) for k, v in src.options.items()))
    for ident_ in files[:50]:
        key = (ident_, options)
        if key not in _SNIFF_CACHE:
            if len(_SNIFF_CACHE) > 1024:
                _SNIFF_CACHE.clear()
            _SNIFF_CACHE[key] = _sniff_problem(src, ident_[0], dirs)
        if _SNIFF_CACHE[key]:
            return _SNIFF_CACHE[key]
    return None


def _sniff_problem(src: Source, path: str, dirs: list[str]) -> str:
    """What DuckDB's sniffer found wrong with one CSV file ("" when nothing)."""
    args: list[exp.Expr] = [exp.Literal.string(path), *option_args(src.options, "csv")]
    sniff = exp.select("Delimiter", "SkipRows", "Columns").from_(
        exp.Table(this=exp.Anonymous(this="sniff_csv", expressions=args)))
    con = sandboxed_cursor(dirs)
    try:
        row = con.execute(sniff.sql(dialect="duckdb")).fetchone()
    except duckdb.Error:
        return ""  # the read itself reports what is wrong
    finally:
        con.close()
    if not row:
        return ""
    delim, skipped, columns = str(row[0]), int(row[1] or 0), list(row[2] or [])
    name = Path(path).name
    if skipped and "skip" not in src.options:
        return (f"'{name}' has rows with different numbers of fields: reading it would "
                f"silently skip its first {skipped} line(s). Fix the file, or set "
                f"'options: {{skip: {skipped}}}' if those lines are a preamble.")
    if len(columns) == 1 and "delim" not in src.options and "sep" not in src.options:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                first = f.readline()
        except OSError:
            return ""
        if any(d in first for d in ",;\t" if d != delim):
            return (f"'{name}' has rows with different numbers of fields, so no delimiter "
                    "fits every row: each line would be read as one text column. Fix the "
                    "file, or set 'options: {delim: ...}'.")
    return ""


