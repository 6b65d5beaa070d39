"""Choosing the feature tables' engine: settings, and a clear error without Java."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.config import FeatureStoreSettings
from features.tables import engine_description
from features.tables.spark import JavaMissing, spark_session


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
