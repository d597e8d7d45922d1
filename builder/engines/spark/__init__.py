"""The Spark engine: the same plan, run on Apache Spark, with the same rows as DuckDB.

Parity comes first; where a step cannot mean the same on Spark, the run is refused before
anything starts (see :mod:`builder.plan.portability`). How the plan maps onto Spark:

* **Sources** are read with Spark's readers (local paths, globs and any URI Spark understands,
  e.g. ``s3a://`` or ``hdfs://``). CSV and JSON are read with an explicit schema: the one DuckDB
  inferred for the plan (Spark's own inference gives other types), with DuckDB's sniffed
  delimiter, header and date formats for local CSV files. Parquet is read as is.
* **Steps** are rendered as Spark SQL by sqlglot from the plan's expression trees (SQL steps are
  DuckDB SQL, transpiled) and registered as temporary views. Every node is conformed to the
  plan's propagated schema (DuckDB's column names and types) so outputs have the same shape on
  both engines. All views are defined (analysed) before any job runs, so a step Spark cannot
  analyse fails the run before anything is computed or written.
* Steps read by several consumers, or with data checks, are persisted (memory and disk) and
  counted; their row counts and timings are exact. Other steps stay lazy and are computed as
  part of their consumer: their row count is reported as unknown (``None``), except for output
  steps, whose count is read back from the written files.
* **Outputs** (parquet, csv, json) are written by Spark to a temporary directory next to the
  target and renamed into place when complete. A Spark output is a *directory* of part files
  (``daily.parquet/part-*.parquet``), not a single file; DuckDB reads it as
  ``daily.parquet/*.parquet``. Staging outputs are written by Spark as parquet, then published
  by the warehouse's DuckDB writer (same modes, merge and history semantics as a DuckDB run).
* One SparkSession per process (``getOrCreate``); each run uses ``newSession()`` (own temporary
  views and SQL settings: session time zone UTC, ANSI mode on). ``close()`` leaves the shared
  session running unless the engine was made with ``stop_session=True``.

The package, by job: ``types`` (DuckDB types as Spark types), ``readers`` (how a source is
read), ``session`` (the shared SparkSession), ``engine`` (running a plan), ``writes`` (atomic
output folders), ``errors``. PySpark is an optional dependency: importing this package without
it raises ImportError, which :func:`builder.engines.get_engine` turns into a one-line message.
"""

from __future__ import annotations

from builder.engines.spark.engine import SparkEngine, view_name
from builder.engines.spark.errors import SparkEngineError
from builder.engines.spark.readers import ReadSpec, read_spec
from builder.engines.spark.session import spark_session
from builder.engines.spark.types import spark_schema, spark_type

__all__ = ["SparkEngine", "SparkEngineError", "ReadSpec", "spark_session", "spark_type",
           "spark_schema", "read_spec", "view_name"]
