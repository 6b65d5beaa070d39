"""Online features for serving: Feast's online store behind an in-process cache.

The reader asks Feast for the views of a FeatureService (by name, as recorded with the model),
one call per view for the keys not in the cache, then runs the service's on-demand views with
Feast's own stored transformation. Values equal the offline ones for the same entity and time
(tested). The cache is dropped as soon as a newer materialisation is seen (the online store file
changes), and entries expire after ``online_cache_seconds`` in any case.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from features.config import FeatureStoreSettings
from features.retrieval import ServiceLayout, service_layout
from features.store import feature_store

__all__ = ["OnlineFeatureReader"]

logger = logging.getLogger(__name__)

_CHANGE_CHECK_SECONDS = 2.0


class OnlineFeatureReader:
    """Features of one FeatureService for batches of entity rows."""

    def __init__(self, settings: FeatureStoreSettings, service_name: str) -> None:
        self.settings = settings
        self.service_name = service_name
        self.store = feature_store(settings)
        self.layout: ServiceLayout = service_layout(self.store, service_name)
        # view name -> entity key -> (fetched at, the view's feature values)
        self._cache: dict[str, dict[str, tuple[float, tuple[float, ...]]]] = {}
        self._lock = threading.Lock()
        self._online_path = (
            Path(self.store.config.online_store.path) if settings.online_store == "sqlite" else None
        )
        self._online_mtime = self._mtime()
        self._last_check = time.monotonic()
        self.hits = 0
        self.misses = 0

    @property
    def feature_names(self) -> list[str]:
        return self.layout.feature_names

    def _mtime(self) -> float | None:
        if self._online_path is None or not self._online_path.exists():
            return None
        return self._online_path.stat().st_mtime

    def _drop_cache_if_materialised(self) -> None:
        now = time.monotonic()
        if now - self._last_check < _CHANGE_CHECK_SECONDS:
            return
        self._last_check = now
        mtime = self._mtime()
        if mtime != self._online_mtime:
            logger.info("online store changed: dropping the feature cache")
            self._cache.clear()
            self._online_mtime = mtime

    def _fetch(self, view_index: int, keys: Sequence[str]) -> dict[str, tuple[float, ...]]:
        view = self.layout.views[view_index]
        join_key = view.join_keys[0]
        response = self.store.get_online_features(
            features=[f"{view.name}:{f}" for f in view.features],
            entity_rows=[{join_key: k} for k in keys],
        ).to_dict()
        columns = [response[f] for f in view.features]
        return {
            key: tuple(np.nan if c[i] is None else float(c[i]) for c in columns)
            for i, key in enumerate(keys)
        }

    def get(self, entities: Mapping[str, Any]) -> dict[str, Any]:
        """Feature columns for ``entities`` (join-key columns plus the request fields)."""
        with self._lock:
            self._drop_cache_if_materialised()
            now = time.monotonic()
            ttl = self.settings.online_cache_seconds
            frame: dict[str, Any] = dict(entities)
            for index, view in enumerate(self.layout.views):
                # One cache per view, keyed by the entity key alone: a batch's look-ups are
                # plain dictionary reads, the store is asked once per view for what is missing.
                cache = self._cache.setdefault(view.name, {})
                keys = [k if type(k) is str else str(k) for k in entities[view.join_keys[0]]]
                missing = [
                    key
                    for key in dict.fromkeys(keys)
                    if (cached := cache.get(key)) is None or now - cached[0] > ttl
                ]
                self.misses += len(missing)
                self.hits += len(keys) - len(missing)
                if missing:
                    for key, values in self._fetch(index, missing).items():
                        cache[key] = (now, values)
                rows = np.array([cache[k][1] for k in keys], dtype=float)
                rows = rows.reshape(len(keys), len(view.features))
                for j, name in enumerate(view.features):
                    frame[name] = rows[:, j]
        n = len(next(iter(entities.values()))) if entities else 0
        for name in self.layout.missing:  # views the workspace has no records for
            frame[name] = np.full(n, np.nan)
        for odfv in self.layout.on_demand:
            outputs = odfv.feature_transformation.udf(frame)
            for name, values in outputs.items():
                frame[name] = np.asarray(values, dtype=float)
        return frame
