"""The reader options a file source may set, per format, and their SQL as literal arguments.

A source's ``options`` become named arguments of DuckDB's ``read_csv``/``read_parquet``/
``read_json``. Keys are checked against the allow-lists below, so an option name can never
carry SQL; values are rendered by sqlglot as literal nodes (strings quoted, lists and maps as
literals). The lists are DuckDB's documented named parameters of each reader (the same names
``duckdb_functions()`` reports; tests/attacks/test_sql_injection.py checks they still exist),
without the ones that make DuckDB write tables of its own (``store_rejects``, ``rejects_*``) or
that only matter for debugging or key management (``debug_use_openssl``,
``encryption_config``).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from builder.errors import did_you_mean

# Named parameters every multi-file reader takes.
_FILES = ("filename", "hive_partitioning", "union_by_name", "hive_types", "hive_types_autocast",
          "schema", "file_row_number", "allow_empty")

READER_OPTIONS: dict[str, frozenset[str]] = {
    "csv": frozenset(_FILES + (
        "sep", "delim", "separator", "delimiter", "null", "nullstr", "quote", "escape",
        "new_line", "header", "auto_detect", "sample_size", "all_varchar", "columns",
        "column_types", "dtypes", "types", "names", "column_names", "auto_type_candidates",
        "date_format", "dateformat", "timestamp_format", "timestampformat", "normalize_names",
        "compression", "skip", "max_line_size", "maximum_line_size", "ignore_errors",
        "force_not_null", "buffer_size", "decimal_separator", "parallel", "null_padding",
        "allow_quoted_nulls", "comment", "encoding", "strict_mode", "thousands",
        "files_to_sniff")),
    "parquet": frozenset(_FILES + (
        "binary_as_string", "compression", "can_have_nan", "int96_as")),
    "json": frozenset(_FILES + (
        "format", "records", "columns", "auto_detect", "sample_size", "maximum_object_size",
        "ignore_errors", "compression", "dateformat", "date_format", "timestampformat",
        "timestamp_format", "maximum_depth", "maximum_sample_files", "case_insensitive_keys",
        "field_appearance_threshold", "convert_strings_to_integers", "map_inference_threshold",
        "array")),
}

READER_FUNCTIONS = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json"}


def option_problems(options: dict[Any, Any], fmt: str | None) -> list[str]:
    """One message per option key that ``fmt``'s reader does not take (empty: all fine).

    >>> option_problems({"delimter": ";"}, "csv")
    ["unknown csv reader option 'delimter'. Did you mean 'delimiter'?"]
    """
    allowed = READER_OPTIONS.get(fmt or "parquet", frozenset())
    out = []
    for key in options:
        if str(key).lower() in allowed:
            continue
        out.append(f"unknown {fmt or 'parquet'} reader option '{key}'."
                   + (did_you_mean(str(key), sorted(allowed)) or
                      " Valid options: " + ", ".join(sorted(allowed)) + "."))
    return out


def option_args(options: dict[Any, Any], fmt: str | None) -> list[exp.Expr]:
    """``name := value`` arguments for a reader call; raises ValueError for an unknown key."""
    problems = option_problems(options, fmt)
    if problems:
        raise ValueError(problems[0])
    return [exp.PropertyEQ(this=exp.to_identifier(str(key).lower()),
                           expression=option_value(value))
            for key, value in options.items()]


def option_value(value: Any) -> exp.Expr:
    """A reader option's value as a literal: a mapping is a STRUCT literal, which is what
    DuckDB's readers take (``types: {amount: DECIMAL(10,2)}``); sqlglot would make it a MAP.

    >>> option_value({"amount": "DOUBLE"}).sql(dialect="duckdb")
    "{'amount': 'DOUBLE'}"
    """
    if isinstance(value, dict):
        return exp.Struct(expressions=[
            exp.PropertyEQ(this=exp.Literal.string(str(k)), expression=option_value(v))
            for k, v in value.items()])
    return exp.convert(value)
