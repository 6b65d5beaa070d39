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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.tables.builders import BUILDERS, TableBuilder, TableContext
from features.tables.records import FeatureTableInputs, RecordKind
from features.tables.snapshots import cutoff_of

__all__ = [
    "BUILDERS",
    "FeatureTableInputs",
    "FeatureTables",
    "RecordKind",
    "TableBuilder",
    "build_feature_tables",
    "cutoff_of",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureTables:
    """What a build wrote (view -> path), what it skipped (view -> missing kinds), its cut-off."""

    written: dict[str, Path]
    skipped: dict[str, frozenset[RecordKind]]
    cutoff: pd.Timestamp


def build_feature_tables(inputs: FeatureTableInputs, out_dir: Path) -> FeatureTables:
    """Compute the table of every view whose records exist, as ``out_dir/<view>.parquet``."""
    if not inputs.declarations.exists():
        raise FileNotFoundError(
            f"{inputs.declarations}: no validated declarations yet; run `crisk ingest` first"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    context = TableContext(inputs)
    written: dict[str, Path] = {}
    skipped: dict[str, frozenset[RecordKind]] = {}
    try:
        for builder in BUILDERS:
            path = out_dir / f"{builder.view}.parquet"
            missing = builder.missing(context.kinds)
            if missing:
                skipped[builder.view] = missing
                path.unlink(missing_ok=True)
                logger.info("feature table %s skipped: no %s", builder.view, ", ".join(missing))
                continue
            frame = builder.build(context)
            frame.to_parquet(path, index=False)
            written[builder.view] = path
            logger.info("feature table %s: %d rows", builder.view, len(frame))
        cutoff = context.cutoff
    finally:
        context.close()
    logger.info("feature tables cut-off %s", cutoff.isoformat())
    return FeatureTables(written=written, skipped=skipped, cutoff=cutoff)
