"""The process's shared SparkSession, and the settings each run's own session gets."""

from __future__ import annotations

import os
import tempfile
import threading

from pyspark import SparkConf
from pyspark.sql import SparkSession

from builder.engines.base import EngineUnavailable
from builder.engines.spark.errors import first_line

# Settings every Dockyard run needs for DuckDB parity (set on each run's own session).
PARITY_CONF = {
    "spark.sql.session.timeZone": "UTC",   # DuckDB engines run in UTC
    "spark.sql.ansi.enabled": "true",      # errors, not NULLs, on bad casts and overflow
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",  # TIMESTAMP stays without zone
}
_SESSION_LOCK = threading.Lock()


def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> SparkSession:
    """The process's shared SparkSession (created on first use).

    ``master`` None means the master spark-submit (or spark-defaults) configured, else
    ``local[2]``. ``conf`` entries go to the session builder (static settings only take effect
    when the session is created).
    """
    with _SESSION_LOCK:
        active = SparkSession.getActiveSession()
        builder = SparkSession.builder.appName("dockyard")
        if master:
            builder = builder.master(master)
        elif active is None and not SparkConf().contains("spark.master"):
            builder = builder.master("local[2]")
        # Spark's default metastore folder is the working directory: keep it out of projects.
        local = {"spark.sql.warehouse.dir": os.path.join(tempfile.gettempdir(),
                                                         "dockyard-spark-warehouse")}
        for k, v in {**local, **PARITY_CONF, **(conf or {})}.items():
            builder = builder.config(k, v)
        try:
            return builder.getOrCreate()
        except Exception as e:  # noqa: BLE001 - Java missing, bad master, ...
            raise EngineUnavailable(f"cannot start Spark ({first_line(e)}). The Spark engine "
                                    "needs Java 17+ and pip install 'dockyard[spark]'.") from None
