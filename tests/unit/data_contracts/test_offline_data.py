"""Offline tables in both layouts: names, partitions, whole replacement, layout-blind reading."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data_contracts.offline_data import (
    EMPTY_PARTITION,
    dataset_rows,
    existing_dataset,
    located_dataset,
    parquet_scan,
    partition_values,
    read_dataset,
    remove_dataset,
    replace_dataset,
    write_empty_partition,
)
from data_contracts.workspace import PARTITION_COLUMN, Workspace, offline_dataset_name
from features.tables.engines import DuckDBEngine


def _table(*days: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "importer_id": [f"NL{i}" for i in range(len(days))],
            "event_timestamp": pd.to_datetime(list(days), utc=True),
            "importer_declarations_30d": [float(i) for i in range(len(days))],
        }
    )


def _write_partitioned(frame: pd.DataFrame, folder: Path, name: str = "view") -> Path:
    partitioned = frame.assign(**{PARTITION_COLUMN: partition_values(frame["event_timestamp"])})
    engine = DuckDBEngine()
    try:
        return replace_dataset(
            folder,
            name,
            "partitioned",
            lambda path: engine.write_partitioned(partitioned, path, PARTITION_COLUMN),
        )
    finally:
        engine.close()


def _months(path: Path) -> set[str]:
    return {p.name for p in path.iterdir() if p.is_dir()}


def test_layout_names(tmp_path: Path) -> None:
    assert (
        offline_dataset_name("importer_hit_rate_365d", "file") == "importer_hit_rate_365d.parquet"
    )
    assert offline_dataset_name("importer_hit_rate_365d", "partitioned") == "importer_hit_rate_365d"
    workspace = Workspace.at(tmp_path)
    assert workspace.feature_table("v") == workspace.feature_tables_dir / "v.parquet"
    assert workspace.feature_table("v", "partitioned") == workspace.feature_tables_dir / "v"


def test_partition_is_the_utc_month_of_the_event() -> None:
    moments = pd.Series(
        [pd.Timestamp("2026-01-31T23:30:00-01:00"), pd.Timestamp("2026-01-01T00:00:00Z")]
    )
    assert partition_values(moments).tolist() == ["2026-02", "2026-01"]


def test_partitioned_write_reads_back_without_the_partition_column(tmp_path: Path) -> None:
    frame = _table("2026-01-05", "2026-01-20", "2026-03-02")
    path = _write_partitioned(frame, tmp_path)
    assert path == tmp_path / "view" and path.is_dir()
    assert _months(path) == {"event_month=2026-01", "event_month=2026-03"}
    back = read_dataset(path).sort_values("importer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert dataset_rows(path) == 3
    # What the DuckDB ASOF retrieval reads: hive partitions, columns chosen by name.
    sql = f"SELECT importer_id, importer_declarations_30d FROM {parquet_scan(path)}"
    assert sorted(duckdb.sql(sql).df()["importer_id"]) == ["NL0", "NL1", "NL2"]
    months = duckdb.sql(f"SELECT DISTINCT {PARTITION_COLUMN} FROM {parquet_scan(path)}").df()
    assert sorted(months[PARTITION_COLUMN]) == ["2026-01", "2026-03"]


def test_a_rewrite_replaces_every_partition_and_the_other_layout(tmp_path: Path) -> None:
    _write_partitioned(_table("2025-11-05", "2025-12-20"), tmp_path)
    path = _write_partitioned(_table("2026-02-01"), tmp_path)
    assert _months(path) == {"event_month=2026-02"}, "no partition of the earlier run is left"
    assert read_dataset(path)["importer_id"].tolist() == ["NL0"]
    # Back to one file: the partitioned directory goes, and the file is what is read.
    replace_dataset(tmp_path, "view", "file", lambda p: _table("2026-03-01").to_parquet(p))
    assert existing_dataset(tmp_path, "view") == tmp_path / "view.parquet"
    assert not (tmp_path / "view").exists()
    _write_partitioned(_table("2026-04-01"), tmp_path)
    assert not (tmp_path / "view.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view"], "no staging leftovers"


def test_a_failed_write_keeps_the_previous_table(tmp_path: Path) -> None:
    path = _write_partitioned(_table("2026-01-05"), tmp_path)

    def broken(staging: Path) -> None:
        (staging / "event_month=2026-09").mkdir(parents=True)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_dataset(tmp_path, "view", "partitioned", broken)
    assert _months(path) == {"event_month=2026-01"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view"]


def test_an_empty_table_still_has_its_columns(tmp_path: Path) -> None:
    empty = _table().assign(**{PARTITION_COLUMN: pd.Series(dtype=object)})
    path = replace_dataset(
        tmp_path, "view", "partitioned", lambda p: write_empty_partition(p, empty)
    )
    assert _months(path) == {f"event_month={EMPTY_PARTITION}"}
    assert dataset_rows(path) == 0
    assert list(read_dataset(path).columns) == list(_table().columns)
    assert len(duckdb.sql(f"SELECT importer_id FROM {parquet_scan(path)}").df()) == 0


def test_located_and_removed_in_either_layout(tmp_path: Path) -> None:
    assert existing_dataset(tmp_path, "view") is None
    assert located_dataset(tmp_path, "view", "partitioned") == tmp_path / "view"
    assert located_dataset(tmp_path, "view", "file") == tmp_path / "view.parquet"
    _write_partitioned(_table("2026-01-05"), tmp_path)
    assert located_dataset(tmp_path, "view", "file") == tmp_path / "view", "what is on disk"
    remove_dataset(tmp_path, "view")
    assert not any(tmp_path.iterdir())
