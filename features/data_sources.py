"""Batch sources of the Feast views: one parquet table per view, written by ``features.tables``.

A table is a file ``tables/<view>.parquet`` or, in the partitioned layout
(``CRISK_FEATURES_OFFLINE_LAYOUT=partitioned``), a directory ``tables/<view>/`` of hive
partitions; the sources declare the Parquet format so Feast's DuckDB offline store reads either
(it reads a path without that declaration only when the name ends in ``.parquet``).

Paths are relative to the Feast repo path, which is the workspace's ``feast/`` directory, so the
definitions stay free of any machine-specific location. ``crisk features apply`` registers each
source with the workspace's absolute path; Feast's own CLI, run in ``features/`` with
``CRISK_FEAST_DIR`` set (``feature_store.yaml`` needs it), reads the same absolute paths from it.
"""

from __future__ import annotations

import os
from pathlib import Path

from feast import Field, FileSource, RequestSource
from feast.data_format import ParquetFormat
from feast.types import Float64

from data_contracts.offline_data import located_dataset
from data_contracts.workspace import OfflineLayout, offline_dataset_name

__all__ = [
    "TABLES_SUBDIR",
    "declaration_request",
    "table_location",
    "table_path",
    "table_source",
]

TABLES_SUBDIR = "tables"


def table_path(view_name: str, layout: OfflineLayout = "file") -> str:
    """Where the snapshot table of ``view_name`` lives in ``layout``, relative to the Feast
    repo path."""
    return f"{TABLES_SUBDIR}/{offline_dataset_name(view_name, layout)}"


def table_location(feast_dir: Path, view_name: str, layout: OfflineLayout) -> Path:
    """The table of ``view_name`` as it is on disk (either layout), else where ``layout``
    writes it: what the registry names and what is materialised."""
    return located_dataset(feast_dir / TABLES_SUBDIR, view_name, layout)


def _source_path(view_name: str) -> str:
    # Feast's CLI resolves relative paths against the repository (features/), not the
    # workspace: with the workspace's feast dir given, the definition names the real table.
    feast_dir = os.environ.get("CRISK_FEAST_DIR")
    if not feast_dir:
        return table_path(view_name)
    return str(table_location(Path(feast_dir), view_name, "file"))


def table_source(view_name: str) -> FileSource:
    """The parquet source of ``view_name`` (event time column ``event_timestamp``)."""
    return FileSource(
        name=f"{view_name}_source",
        path=_source_path(view_name),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=f"Point-in-time snapshots computed by features.tables for {view_name}.",
        owner="risk-analytics@customs.example",
        tags={"team": "customs-risk", "pii": "false"},
    )


def _request_source() -> RequestSource:
    return RequestSource(
        name="declaration_request",
        schema=[
            Field(name="customs_value_eur", dtype=Float64, description="Declared customs value."),
            Field(name="net_mass_kg", dtype=Float64, description="Declared net mass."),
            Field(name="event_epoch_day", dtype=Float64, description="Lodgement day since 1970."),
        ],
        description="Values only the incoming declaration carries.",
        owner="risk-analytics@customs.example",
        tags={"team": "customs-risk", "pii": "false"},
    )


declaration_request = _request_source()
