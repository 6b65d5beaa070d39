"""Choosing the feature tables' engine: settings, and a clear error without Java."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.config import FeatureStoreSettings
from features.tables import engine_description
from features.tables.spark import JavaMissing, spark_reason, spark_session


def test_engine_is_duckdb_unless_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CRISK_FEATURES_TABLE_ENGINE", raising=False)
    assert FeatureStoreSettings(home=tmp_path).table_engine == "duckdb"
    monkeypatch.setenv("CRISK_FEATURES_TABLE_ENGINE", "spark")
    monkeypatch.setenv("CRISK_FEATURES_SPARK_MASTER", "local[3]")
    settings = FeatureStoreSettings(home=tmp_path)
    assert (settings.table_engine, settings.spark_master) == ("spark", "local[3]")
    assert engine_description(settings) == "Spark, master local[3]"


def test_unknown_engine_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRISK_FEATURES_TABLE_ENGINE", "polars")
    with pytest.raises(ValueError, match="table_engine"):
        FeatureStoreSettings(home=tmp_path)


def test_spark_without_java_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with (
        pytest.raises(JavaMissing, match=r"Java 17.*has no bin/java.*TABLE_ENGINE=duckdb"),
        spark_session(),
    ):
        pass
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaMissing, match="no `java` on PATH"), spark_session():
        pass


def test_spark_driver_memory_is_a_jvm_size(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert FeatureStoreSettings(home=tmp_path).spark_driver_memory == "4g"
    monkeypatch.setenv("CRISK_FEATURES_SPARK_DRIVER_MEMORY", "12g")
    assert FeatureStoreSettings(home=tmp_path).spark_driver_memory == "12g"
    monkeypatch.setenv("CRISK_FEATURES_SPARK_DRIVER_MEMORY", "4 GB")
    with pytest.raises(ValueError, match="spark_driver_memory"):
        FeatureStoreSettings(home=tmp_path)


def test_a_failed_spark_job_reads_as_its_reason_in_one_line() -> None:
    java_trace = (
        "An error occurred while calling o112.getResult.\n"
        ": org.apache.spark.SparkException: Exception thrown in awaitResult: \n"
        "\tat org.apache.spark.util.SparkThreadUtils$.awaitResult(SparkThreadUtils.scala:70)\n"
        "Caused by: org.apache.spark.memory.SparkOutOfMemoryError: [AGGREGATE_OUT_OF_MEMORY] "
        "No enough memory for aggregation SQLSTATE: 82001\n"
        "\tat org.apache.spark.sql.errors.QueryExecutionErrors$.aggregateOutOfMemoryError\n"
    )
    reason = spark_reason(RuntimeError(java_trace))
    assert "\n" not in reason
    assert "[AGGREGATE_OUT_OF_MEMORY] No enough memory for aggregation" in reason
    assert reason.endswith("(CRISK_FEATURES_SPARK_DRIVER_MEMORY)")
    other = spark_reason(RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] The table `x` cannot be found."))
    assert "DRIVER_MEMORY" not in other and "TABLE_OR_VIEW_NOT_FOUND" in other
