"""Offline tables in either layout: one Parquet file, or a hive-partitioned Parquet dataset.

``CRISK_FEATURES_OFFLINE_LAYOUT`` decides how a table is *written* (``data_contracts.workspace``
names the two layouts). Readers follow what is on disk: a directory is a partitioned dataset,
a file is a file, so a table written before the setting changed is still read correctly until
it is rewritten. Each write replaces the whole table (in either layout) and removes the other
layout's copy of it: no partition of an earlier run, and no file of the other layout, is left
for a reader to pick up.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts.workspace import (
    OFFLINE_LAYOUTS,
    PARTITION_COLUMN,
    OfflineLayout,
    offline_dataset_name,
)

__all__ = [
    "EMPTY_PARTITION",
    "dataset_rows",
    "existing_dataset",
    "located_dataset",
    "parquet_scan",
    "partition_values",
    "read_dataset",
    "remove_dataset",
    "replace_dataset",
    "write_empty_partition",
]

# Hive's name for a missing partition value; DuckDB, Spark and pyarrow all read it as null.
EMPTY_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def existing_dataset(directory: Path, name: str) -> Path | None:
    """The table ``name`` under ``directory`` as it is on disk (either layout), or None."""
    for layout in OFFLINE_LAYOUTS:
        path = directory / offline_dataset_name(name, layout)
        if path.exists():
            return path
    return None


def located_dataset(directory: Path, name: str, layout: OfflineLayout) -> Path:
    """The table on disk if there is one, else where ``layout`` would write it."""
    return existing_dataset(directory, name) or directory / offline_dataset_name(name, layout)


def partition_values(timestamps: pd.Series) -> pd.Series:
    """The partition of each row: the UTC month of its timestamp, ``YYYY-MM``."""
    moments = pd.to_datetime(timestamps, utc=True).dt.tz_localize(None)
    # numpy prints a month-unit datetime as YYYY-MM, about 50 times faster than strftime.
    months = moments.to_numpy(dtype="datetime64[ns]").astype("datetime64[M]").astype(str)
    # A missing time (never in a feature table) goes to Hive's null partition, not to "NaT".
    return pd.Series(months, index=timestamps.index, dtype=object).where(moments.notna(), None)


def parquet_scan(path: Path) -> str:
    """A DuckDB ``read_parquet`` over the table at ``path`` (a file, or a partitioned
    directory read with its hive partitions; select columns by name so that the partition
    column never reaches a result)."""
    quoted = str(path).replace("'", "''")
    if path.is_dir():
        return f"read_parquet('{quoted}/**/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{quoted}')"


def _hive_partitioning() -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    # Declared, not inferred: a table of only an empty partition has no value to infer from.
    return ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")


def read_dataset(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of the table at ``path`` (either layout), without the partition column."""
    if not path.is_dir():
        return pd.read_parquet(path, columns=columns)
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns, partitioning=_hive_partitioning())
    return table.to_pandas().drop(columns=[PARTITION_COLUMN], errors="ignore")


def dataset_rows(path: Path) -> int:
    """How many rows the table at ``path`` holds (from the Parquet footers only)."""
    import pyarrow.dataset as ds

    partitioning = _hive_partitioning() if path.is_dir() else None
    return int(ds.dataset(path, format="parquet", partitioning=partitioning).count_rows())


def write_empty_partition(directory: Path, frame: pd.DataFrame) -> None:
    """A table without rows as one schema-only file, so that readers still find its columns
    (an engine writing no partitions would leave a directory no reader accepts)."""
    part = directory / f"{PARTITION_COLUMN}={EMPTY_PARTITION}"
    part.mkdir(parents=True, exist_ok=True)
    frame.drop(columns=[PARTITION_COLUMN], errors="ignore").to_parquet(
        part / "part-0.parquet", index=False
    )


def remove_dataset(directory: Path, name: str) -> None:
    """Remove the table ``name`` in every layout (a view that is no longer built)."""
    for layout in OFFLINE_LAYOUTS:
        _remove(directory / offline_dataset_name(name, layout))


def replace_dataset(
    directory: Path, name: str, layout: OfflineLayout, write: Callable[[Path], None]
) -> Path:
    """Write the table ``name`` in ``layout`` with ``write(path)``, replacing it whole.

    ``write`` fills a staging path next to the table (a file, or a directory it creates); only
    when it has finished does the staging path take the table's place, so a failed write
    leaves the previous table as it was. The previous partitions are removed, never merged
    with the new ones, and so is the table in the other layout.
    """
    target = directory / offline_dataset_name(name, layout)
    staging = directory / f".{target.name}.{os.getpid()}.staging"
    previous = directory / f".{target.name}.{os.getpid()}.previous"
    for leftover in (staging, previous):
        _remove(leftover)
    try:
        write(staging)
    except BaseException:
        _remove(staging)
        raise
    if target.is_dir():
        # A directory cannot be replaced in one rename: move the old one aside first.
        target.rename(previous)
    os.replace(staging, target)
    _remove(previous)
    for other in OFFLINE_LAYOUTS:
        if other != layout:
            _remove(directory / offline_dataset_name(name, other))
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
