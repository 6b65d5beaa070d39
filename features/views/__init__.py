"""Feature views, one per file, named ``<entity>_<measure>_<window>`` (file name = view name).

Every view reads the snapshot table of the same name (see ``features.tables``); all features are
float64 so that missing values (cold start) never change a column's type between offline and
online retrieval.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureView, Field
from feast.types import Float64

from features.data_sources import table_source

__all__ = ["OWNER", "snapshot_view"]

OWNER = "risk-analytics@customs.example"
# Snapshots exist for every active day, so a lookup finds a same-day row; the ttl only bounds
# how stale the cut-off snapshot may be for an entity that went quiet.
DEFAULT_TTL = timedelta(days=400)


def snapshot_view(
    name: str,
    entity: Entity,
    features: dict[str, str],
    description: str,
    *,
    pii: bool = False,
    ttl: timedelta = DEFAULT_TTL,
) -> FeatureView:
    """A float64 view over the snapshot table ``name``; ``features`` maps name -> meaning."""
    return FeatureView(
        name=name,
        entities=[entity],
        ttl=ttl,
        schema=[Field(name=f, dtype=Float64, description=d) for f, d in features.items()],
        source=table_source(name),
        online=True,
        description=description,
        owner=OWNER,
        tags={"team": "customs-risk", "pii": str(pii).lower()},
    )
