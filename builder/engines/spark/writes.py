"""Writing Spark outputs: a temporary folder next to the target, renamed into place when
complete (local paths and any Hadoop URI). A local folder gets the marker of a Dockyard output
(:data:`builder.plan.targets.MARKER`): only such a folder may be replaced by a later run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from builder import fsio
from builder.engines.duckdb import TMP_MARK, cleanup_stale_tmp
from builder.plan.targets import refuse_unsafe_target, write_marker

OLD_MARK = ".dockyard-old-"


def writer(df: DataFrame, fmt: str) -> Any:
    """Spark's writer of ``df`` in ``fmt``, with the options that give DuckDB's files."""
    w = df.write.mode("overwrite").format(fmt)
    if fmt == "csv":
        w = w.option("header", "true").option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss.SSSSSS")
    elif fmt == "json":
        w = w.option("ignoreNullFields", "false")
    return w


def count_written(spark: SparkSession, path: str, fmt: str, df: DataFrame) -> int:
    """Rows in the written files (parquet: from the footers, without scanning the data)."""
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").schema(df.schema)
    elif fmt == "json":
        reader = reader.schema(df.schema)
    return int(reader.load(path).count())


@contextmanager
def atomic_dir(spark: SparkSession, target: str, fmt: str) -> Iterator[str]:
    """A temp directory next to ``target`` that replaces it on success (any Hadoop URI).

    A local folder gets the marker of a Dockyard output (:data:`builder.plan.targets.MARKER`) before
    it is renamed into place: only such a folder may be replaced by a later run.
    """
    if "://" in target and not target.startswith("file://"):
        yield from atomic_remote(spark, target)
        return
    final = Path(target.removeprefix("file://"))
    refuse_unsafe_target(final)  # a folder Dockyard did not write, or a link: never replaced
    final.parent.mkdir(parents=True, exist_ok=True)
    cleanup_stale_tmp(final)
    tmp = final.parent / f".{final.name}{TMP_MARK}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield str(tmp)
        write_marker(tmp, "spark", fmt)
        old = final.parent / f".{final.name}{OLD_MARK}{os.getpid()}"
        if final.exists() or final.is_symlink():
            os.replace(final, old)  # a file (DuckDB output) or a directory (earlier Spark run)
        fsio.replace(tmp, final)  # its part files synced first
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        elif old.exists() or old.is_symlink():
            old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_remote(spark: SparkSession, target: str) -> Iterator[str]:
    """:func:`atomic_dir` on a Hadoop file system (s3a://, hdfs://, ...)."""
    jvm: Any = spark._jvm  # noqa: SLF001 - Hadoop's FileSystem has no Python API
    conf = spark._jsc.hadoopConfiguration()  # noqa: SLF001
    hpath = jvm.org.apache.hadoop.fs.Path
    final = hpath(target)
    fs = final.getFileSystem(conf)
    parent = final.getParent()
    tmp = hpath(parent, f".{final.getName()}{TMP_MARK}{os.getpid()}")
    old = hpath(parent, f".{final.getName()}{OLD_MARK}{os.getpid()}")
    fs.delete(tmp, True)
    try:
        yield tmp.toString()
        if fs.exists(final):
            fs.rename(final, old)
        if not fs.rename(tmp, final):
            raise OSError(f"cannot rename '{tmp.toString()}' to '{target}'")
        fs.delete(old, True)
    except BaseException:
        fs.delete(tmp, True)
        raise
