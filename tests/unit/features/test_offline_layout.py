"""CRISK_FEATURES_OFFLINE_LAYOUT: the setting, the profile default, where tables and sources go."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.config import FeatureStoreSettings
from features.data_sources import table_location, table_path, table_source
from features.tables import engine_description


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("CRISK_PROFILE", "CRISK_FEATURES_OFFLINE_LAYOUT", "CRISK_FEATURES_TABLE_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_layout_is_file_unless_set_or_scale(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert FeatureStoreSettings(home=tmp_path).offline_layout == "file"
    clean_env.setenv("CRISK_FEATURES_OFFLINE_LAYOUT", "partitioned")
    settings = FeatureStoreSettings(home=tmp_path)
    assert settings.offline_layout == "partitioned"
    assert engine_description(settings) == "DuckDB, partitioned Parquet"
    clean_env.delenv("CRISK_FEATURES_OFFLINE_LAYOUT")
    clean_env.setenv("CRISK_PROFILE", "scale")
    scale = FeatureStoreSettings(home=tmp_path)
    assert (scale.offline_layout, scale.table_engine) == ("partitioned", "spark")
    assert engine_description(scale) == "Spark, master local[2], partitioned Parquet"


def test_the_components_own_layout_wins_over_the_profile(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("CRISK_PROFILE", "scale")
    clean_env.setenv("CRISK_FEATURES_OFFLINE_LAYOUT", "file")
    assert FeatureStoreSettings(home=tmp_path).offline_layout == "file"
    assert FeatureStoreSettings(home=tmp_path, offline_layout="file").offline_layout == "file"


def test_unknown_layout_is_refused(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("CRISK_FEATURES_OFFLINE_LAYOUT", "delta")
    with pytest.raises(ValueError, match="offline_layout"):
        FeatureStoreSettings(home=tmp_path)


def test_sources_name_the_table_on_disk_in_parquet_format(tmp_path: Path) -> None:
    assert table_path("route_hit_rate_365d") == "tables/route_hit_rate_365d.parquet"
    assert table_path("route_hit_rate_365d", "partitioned") == "tables/route_hit_rate_365d"
    view = "route_hit_rate_365d"
    assert table_location(tmp_path, view, "partitioned") == tmp_path / "tables" / view
    (tmp_path / "tables" / f"{view}.parquet").parent.mkdir(parents=True)
    (tmp_path / "tables" / f"{view}.parquet").touch()
    assert table_location(tmp_path, view, "partitioned") == tmp_path / "tables" / f"{view}.parquet"
    # Feast's DuckDB store reads a directory only when the source declares its format.
    assert type(table_source(view).file_format).__name__ == "ParquetFormat"
