"""The feature tables on Spark (PySpark): the scale profile's engine for the builders' SQL.

``CRISK_FEATURES_TABLE_ENGINE=spark`` runs every builder's generated SQL (the daily snapshot
windows, the price quantiles) as Spark SQL instead of DuckDB: the windows and measures of a view
are written once, in ``features.tables.builders``, and both engines execute the same text. The
parity test (``tests/integration/test_spark_tables.py``) proves the tables equal, row for row.

``spark_master`` (``CRISK_FEATURES_SPARK_MASTER``, default ``local[2]``) is any Spark master
URL: ``local[N]`` on this machine, or a cluster's ``spark://host:7077``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.tables.engines import TableEngine

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["JavaMissing", "SparkEngine", "SparkUnavailable", "spark_session"]

logger = logging.getLogger(__name__)

# Few, small shuffles: the tables are keyed by entity, and a local master has few cores.
SHUFFLE_PARTITIONS = 4


class SparkUnavailable(LookupError):
    """Spark cannot run here: no Java runtime, or the session did not start."""


class JavaMissing(SparkUnavailable):
    """Spark needs a Java runtime and none is installed or configured."""


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    candidate = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on PATH, JAVA_HOME unset"
    raise JavaMissing(
        f"CRISK_FEATURES_TABLE_ENGINE=spark: Spark needs Java 17 or newer ({where}); install a "
        "JRE (Debian: openjdk-17-jre-headless) or use CRISK_FEATURES_TABLE_ENGINE=duckdb"
    )


@contextmanager
def spark_session(master: str = "local[2]") -> Iterator[SparkSession]:
    """A Spark session for one build (UTC, no UI, few shuffle partitions), stopped at the end."""
    _java()
    with (
        tempfile.NamedTemporaryFile(prefix="crisk-spark-", suffix=".log", delete=False) as log,
        _stderr_to(log.fileno()),
    ):
        try:
            session = _start(master)
        except Exception as error:
            raise SparkUnavailable(
                f"CRISK_FEATURES_SPARK_MASTER={master}: Spark did not start ({error}); "
                f"its log: {log.name}"
            ) from error
    logger.info("Spark %s on %s; its JVM logs to %s", session.version, master, log.name)
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@contextmanager
def _stderr_to(fd: int) -> Iterator[None]:
    """Point this process's stderr at ``fd`` while Spark's JVM starts: the JVM inherits it, so
    its start-up notices (and later warnings) go to a log file, not into the CLI's output."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _start(master: str) -> SparkSession:
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName("crisk-feature-tables")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(SHUFFLE_PARTITIONS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Standard microsecond timestamps (UTC-adjusted) instead of Spark's legacy INT96, so
        # DuckDB, pyarrow and Feast read the partitioned tables' event_timestamp as they read
        # DuckDB's.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _spark_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns as pandas strings, so an empty or all-missing column still has a type."""
    objects = [c for c in frame.columns if frame[c].dtype == object]
    return frame.astype(dict.fromkeys(objects, "string")) if objects else frame


class SparkEngine:
    """The builders' SQL on a Spark session; relations are session temporary views."""

    name: TableEngine = "spark"
    quantile_function = "percentile"  # exact, linear between ranks, as DuckDB's quantile_cont

    def __init__(self, session: SparkSession) -> None:
        self._session = session
        self._views: set[str] = set()

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self._session.createDataFrame(_spark_ready(frame)).createOrReplaceTempView(name)
        self._views.add(name)

    def query(self, sql: str) -> pd.DataFrame:
        return self._session.sql(sql).toPandas()

    def write_partitioned(self, frame: pd.DataFrame, directory: Path, column: str) -> None:
        # On a cluster the executors write: the directory must be on storage they all see
        # (the shared workspace).
        data = self._session.createDataFrame(_spark_ready(frame))
        data.write.mode("errorifexists").partitionBy(column).parquet(str(directory))

    def close(self) -> None:
        # The session belongs to the caller (one per build or per test module): drop only
        # what this build registered.
        for name in self._views:
            self._session.catalog.dropTempView(name)
        self._views.clear()
