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
import re
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

__all__ = [
    "JavaMissing",
    "SparkEngine",
    "SparkJobFailed",
    "SparkUnavailable",
    "spark_reason",
    "spark_session",
]

logger = logging.getLogger(__name__)

# Few, small shuffles: the tables are keyed by entity, and a local master has few cores.
SHUFFLE_PARTITIONS = 4


class SparkUnavailable(LookupError):
    """Spark cannot run here: no Java runtime, or the session did not start."""


class JavaMissing(SparkUnavailable):
    """Spark needs a Java runtime and none is installed or configured."""


class SparkJobFailed(RuntimeError):
    """A feature table's Spark job failed; the message is Spark's own reason, in one line."""


# Spark's error classes read "[AGGREGATE_OUT_OF_MEMORY] No enough memory ..." somewhere inside a
# Java stack trace of a hundred lines: that line is the reason a person needs.
_SPARK_REASON = re.compile(r"\[[A-Z][A-Z0-9_.]{3,}\][^\n]*")


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
def spark_session(master: str = "local[2]", driver_memory: str = "4g") -> Iterator[SparkSession]:
    """A Spark session for one build (UTC, no UI, few shuffle partitions), stopped at the end."""
    _java()
    with (
        tempfile.NamedTemporaryFile(prefix="crisk-spark-", suffix=".log", delete=False) as log,
        _stderr_to(log.fileno()),
    ):
        try:
            session = _start(master, driver_memory)
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


def _start(master: str, driver_memory: str) -> SparkSession:
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName("crisk-feature-tables")
        # Read when the driver JVM starts (a session already running in this process keeps
        # its own heap).
        .config("spark.driver.memory", driver_memory)
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


def spark_reason(error: BaseException) -> str:
    """Spark's reason for a failed job in one line, with what to change when memory ran out."""
    text = str(error)
    found = _SPARK_REASON.search(text)
    reason = found.group(0).strip() if found else (text.strip().splitlines() or ["?"])[0]
    hint = (
        "; give the driver more memory (CRISK_FEATURES_SPARK_DRIVER_MEMORY)"
        if "MEMORY" in reason.upper()
        else ""
    )
    return f"a feature table's Spark job failed: {reason}{hint}"


def _spark_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns as pandas strings, so an empty or all-missing column still has a type."""
    objects = [c for c in frame.columns if frame[c].dtype == object]
    return frame.astype(dict.fromkeys(objects, "string")) if objects else frame


@contextmanager
def _spark_job() -> Iterator[None]:
    """A failed Spark job as one SparkJobFailed with Spark's reason (other errors unchanged)."""
    try:
        yield
    except Exception as error:
        if type(error).__module__.split(".")[0] not in ("py4j", "pyspark"):
            raise
        raise SparkJobFailed(spark_reason(error)) from error


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
        with _spark_job():
            return self._session.sql(sql).toPandas()

    def write_partitioned(self, frame: pd.DataFrame, directory: Path, column: str) -> None:
        # On a cluster the executors write: the directory must be on storage they all see
        # (the shared workspace).
        with _spark_job():
            data = self._session.createDataFrame(_spark_ready(frame))
            data.write.mode("errorifexists").partitionBy(column).parquet(str(directory))

    def close(self) -> None:
        # The session belongs to the caller (one per build or per test module): drop only
        # what this build registered.
        for name in self._views:
            self._session.catalog.dropTempView(name)
        self._views.clear()
