"""Batch sources of the Feast views: one parquet table per view, written by ``features.tables``.

Paths are relative to the Feast repo path, which is the workspace's ``feast/`` directory, so the
definitions stay free of any machine-specific location. ``crisk features apply`` registers each
source with the workspace's absolute path; Feast's own CLI, run in ``features/`` with
``CRISK_FEAST_DIR`` set (``feature_store.yaml`` needs it), reads the same absolute paths from it.
"""

from __future__ import annotations

import os

from feast import Field, FileSource, RequestSource
from feast.types import Float64

__all__ = ["TABLES_SUBDIR", "declaration_request", "table_path", "table_source"]

TABLES_SUBDIR = "tables"


def table_path(view_name: str) -> str:
    """Where the snapshot table of ``view_name`` lives, relative to the Feast repo path."""
    return f"{TABLES_SUBDIR}/{view_name}.parquet"


def _source_path(view_name: str) -> str:
    # Feast's CLI resolves relative paths against the repository (features/), not the
    # workspace: with the workspace's feast dir given, the definition names the real file.
    feast_dir = os.environ.get("CRISK_FEAST_DIR")
    relative = table_path(view_name)
    return f"{feast_dir.rstrip('/')}/{relative}" if feast_dir else relative


def table_source(view_name: str) -> FileSource:
    """The parquet source of ``view_name`` (event time column ``event_timestamp``)."""
    return FileSource(
        name=f"{view_name}_source",
        path=_source_path(view_name),
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
