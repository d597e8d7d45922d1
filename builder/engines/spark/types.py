"""DuckDB types as Spark types: the same values on both engines, or a refusal naming the column."""

from __future__ import annotations

from typing import Any

from pyspark.sql import types as T
from sqlglot import exp

from builder.engines.spark.errors import SparkEngineError
from builder.plan.types import ColumnInfo

_SIMPLE_TYPES: dict[Any, T.DataType] = {}


def _simple_types() -> dict[Any, T.DataType]:
    if not _SIMPLE_TYPES:
        t = exp.DataType.Type
        pairs: list[tuple[list[str], T.DataType]] = [
            (["BOOLEAN", "BIT"], T.BooleanType()),
            (["TINYINT"], T.ByteType()),
            (["SMALLINT", "UTINYINT"], T.ShortType()),
            (["INT", "USMALLINT"], T.IntegerType()),
            (["BIGINT", "UINT"], T.LongType()),
            (["UBIGINT"], T.DecimalType(20, 0)),
            (["INT128", "UINT128", "UINT256", "INT256"], T.DecimalType(38, 0)),
            (["FLOAT"], T.FloatType()),
            (["DOUBLE"], T.DoubleType()),
            (["VARCHAR", "TEXT", "CHAR", "NVARCHAR", "NCHAR", "UUID", "JSON", "ENUM", "NAME"],
             T.StringType()),
            (["VARBINARY", "BINARY", "BLOB"], T.BinaryType()),
            (["DATE"], T.DateType()),
            (["TIMESTAMPNTZ", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS",
              "DATETIME"], T.TimestampNTZType()),
            (["TIMESTAMPTZ", "TIMESTAMPLTZ"], T.TimestampType()),
        ]
        for names, st in pairs:
            for n in names:
                if hasattr(t, n):
                    _SIMPLE_TYPES[getattr(t, n)] = st
    return _SIMPLE_TYPES


def spark_type(duckdb_type: str | exp.DataType) -> T.DataType | None:
    """The Spark type holding the same values as a DuckDB type, or None when there is none.

    >>> spark_type("TIMESTAMP")
    TimestampNTZType()
    >>> spark_type("HUGEINT")
    DecimalType(38,0)
    """
    dt = duckdb_type if isinstance(duckdb_type, exp.DataType) else \
        exp.DataType.build(duckdb_type, dialect="duckdb")
    t = exp.DataType.Type
    kind = dt.this
    if kind == t.DECIMAL:
        args = [int(e.this.this) if isinstance(e.this, exp.Literal) else int(e.name)
                for e in dt.expressions if isinstance(e, exp.DataTypeParam)]
        precision, scale = (args + [18, 3][len(args):])[:2] if args else (18, 3)
        return T.DecimalType(precision, scale)
    if kind == t.ARRAY:
        inner = spark_type(dt.expressions[0]) if dt.expressions else None
        return T.ArrayType(inner) if inner is not None else None
    if kind == t.MAP:
        if len(dt.expressions) != 2:
            return None
        k, v = spark_type(dt.expressions[0]), spark_type(dt.expressions[1])
        return T.MapType(k, v) if k is not None and v is not None else None
    if kind == t.STRUCT:
        fields = []
        for f in dt.expressions:
            if not isinstance(f, exp.ColumnDef) or f.args.get("kind") is None:
                return None
            ft = spark_type(f.args["kind"])
            if ft is None:
                return None
            fields.append(T.StructField(f.name, ft, True))
        return T.StructType(fields)
    return _simple_types().get(kind)


def spark_schema(columns: tuple[ColumnInfo, ...], what: str) -> T.StructType:
    """A Spark schema for DuckDB-typed columns; refuses types Spark cannot hold."""
    fields = []
    for c in columns:
        st = spark_type(c.type)
        if st is None:
            raise SparkEngineError(f"{what}: column '{c.name}' has the DuckDB type '{c.type}', "
                                   "which Spark cannot hold with the same values. Cast it to a "
                                   "plain type (VARCHAR, BIGINT, DOUBLE, TIMESTAMP, ...) first.")
        fields.append(T.StructField(c.name, st, True))
    return T.StructType(fields)


def same_type(a: T.DataType, b: T.DataType) -> bool:
    """True when two Spark types are the same (as Spark writes them)."""
    return a.simpleString() == b.simpleString()


def bq(name: str) -> str:
    """A backquoted Spark identifier."""
    return "`" + name.replace("`", "``") + "`"
