"""Point-in-time feature tables: the batch sources of the Feast views, computed with DuckDB.

Feast stores and serves features; it does not aggregate. This package turns validated records
into one table per view (``builders``: one small function per view, declaring the record kinds
it reads), each row a snapshot of an entity's features *as of the start of a day*
(``event_timestamp``), computed only from what was known before that instant:

- declaration activity counts only items lodged before the day;
- control outcomes count only from the first day start after they were reported
  (``reported_at``), a correction only from its own report, and the version it corrected until
  then (``records``): a past snapshot never changes when a later result or correction arrives;
- snapshots exist for every day an entity is active (the days training looks up) and for the
  cut-off (what ``materialize`` loads into the online store for serving);
- an entity's first active day has no snapshot: it had no history, exactly like an unknown
  operator at serving time, so the cold-start path is the same offline and online.

Price baselines are monthly snapshots of the robust median and spread (IQR / 1.349) of the log
unit value per commodity × origin and per HS6, over the previous 365 days.

A view whose record kinds the workspace lacks (no ENS, no operator register) gets no table; a
table left from an earlier build is removed, so the feature store never serves stale data.

The builders generate SQL; an engine runs it (``engines``): DuckDB in process by default, or
Spark (``spark``) when ``CRISK_FEATURES_TABLE_ENGINE=spark``. Both run the same text, so the
windows and measures of a view are defined once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data_contracts.offline_data import (
    dataset_rows,
    partition_values,
    remove_dataset,
    replace_dataset,
    write_empty_partition,
)
from data_contracts.workspace import PARTITION_COLUMN, OfflineLayout
from features.config import FeatureStoreSettings
from features.tables.builders import BUILDERS, TableBuilder, TableContext
from features.tables.engines import SqlEngine, TableEngine
from features.tables.records import FeatureTableInputs, RecordKind
from features.tables.snapshots import cutoff_of

__all__ = [
    "BUILDERS",
    "FeatureTableInputs",
    "FeatureTables",
    "RecordKind",
    "TableBuilder",
    "TableEngine",
    "build_feature_tables",
    "build_tables",
    "cutoff_of",
    "engine_description",
    "workspace_table_rows",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureTables:
    """What a build wrote (view -> path), what it skipped (view -> missing kinds), its cut-off."""

    written: dict[str, Path]
    skipped: dict[str, frozenset[RecordKind]]
    cutoff: pd.Timestamp


def build_feature_tables(
    inputs: FeatureTableInputs,
    out_dir: Path,
    engine: SqlEngine | None = None,
    views: Collection[str] | None = None,
    layout: OfflineLayout = "file",
) -> FeatureTables:
    """Compute the table of every view whose records exist, under ``out_dir``.

    ``engine`` runs the builders' SQL (default: a DuckDB connection of this build); it is
    closed at the end. ``views`` limits the build to those views (None: every view); the
    tables of the others are left as they are. ``layout``: ``file`` writes
    ``out_dir/<view>.parquet``, ``partitioned`` the directory ``out_dir/<view>/`` of
    ``event_month=YYYY-MM`` partitions (written by ``engine``).
    """
    if not inputs.declarations.exists():
        raise FileNotFoundError(
            f"{inputs.declarations}: no validated declarations yet; run `crisk ingest` first"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    context = TableContext(inputs, engine)
    written: dict[str, Path] = {}
    skipped: dict[str, frozenset[RecordKind]] = {}
    try:
        for builder in BUILDERS:
            if views is not None and builder.view not in views:
                continue
            missing = builder.missing(context.kinds)
            if missing:
                skipped[builder.view] = missing
                remove_dataset(out_dir, builder.view)
                logger.info("feature table %s skipped: no %s", builder.view, ", ".join(missing))
                continue
            frame = builder.build(context)
            written[builder.view] = _write_table(
                context.engine, frame, out_dir, builder.view, layout
            )
            logger.info("feature table %s: %d rows (%s)", builder.view, len(frame), layout)
        cutoff = context.cutoff
    finally:
        context.close()
    logger.info("feature tables cut-off %s", cutoff.isoformat())
    return FeatureTables(written=written, skipped=skipped, cutoff=cutoff)


def _write_table(
    engine: SqlEngine, frame: pd.DataFrame, out_dir: Path, view: str, layout: OfflineLayout
) -> Path:
    if layout == "file":
        return replace_dataset(
            out_dir, view, layout, lambda path: frame.to_parquet(path, index=False)
        )
    partitioned = frame.assign(**{PARTITION_COLUMN: partition_values(frame["event_timestamp"])})

    def write(path: Path) -> None:
        if partitioned.empty:
            write_empty_partition(path, partitioned)
        else:
            engine.write_partitioned(partitioned, path, PARTITION_COLUMN)

    return replace_dataset(out_dir, view, layout, write)


def engine_description(settings: FeatureStoreSettings) -> str:
    """The engine a build with ``settings`` runs on, in a few words (for progress lines)."""
    layout = "" if settings.offline_layout == "file" else ", partitioned Parquet"
    if settings.table_engine == "spark":
        return f"Spark, master {settings.spark_master}{layout}"
    return f"DuckDB{layout}"


def build_tables(
    settings: FeatureStoreSettings, inputs: FeatureTableInputs, out_dir: Path
) -> FeatureTables:
    """:func:`build_feature_tables` on the engine ``settings.table_engine`` names.

    Spark gets a session of its own for the build (``settings.spark_master``), stopped after.
    """
    if settings.table_engine == "spark":
        from features.tables.spark import SparkEngine, spark_session

        with spark_session(settings.spark_master, settings.spark_driver_memory) as session:
            return build_feature_tables(
                inputs, out_dir, SparkEngine(session), layout=settings.offline_layout
            )
    return build_feature_tables(inputs, out_dir, layout=settings.offline_layout)


def workspace_table_rows(
    home: Path,
    engine: TableEngine = "duckdb",
    *,
    out_dir: Path | None = None,
    spark_master: str = "local[2]",
    layout: OfflineLayout = "file",
) -> dict[str, int]:
    """Build every table of the workspace at ``home`` with ``engine``; rows per table written.

    What the scaling benchmark times. The tables go to ``out_dir`` (default: a temporary
    directory, removed after), so the workspace's own tables are left as they are.
    """
    import tempfile

    from data_contracts.workspace import Workspace

    settings = FeatureStoreSettings(
        home=home, table_engine=engine, spark_master=spark_master, offline_layout=layout
    )
    inputs = FeatureTableInputs.of(Workspace.at(home))
    with tempfile.TemporaryDirectory(prefix="crisk-tables-") as scratch:
        target = out_dir if out_dir is not None else Path(scratch)
        tables = build_tables(settings, inputs, target)
        return {view: dataset_rows(path) for view, path in tables.written.items()}
