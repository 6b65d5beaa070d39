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


def _texts(values: Any) -> list[str]:
    """Entity keys as text (a numpy array is read as Python values in one call)."""
    listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if set(map(type, listed)) <= {str}:
        return listed
    return [k if type(k) is str else str(k) for k in listed]


class _KeyTable:
    """Cached values of the views that share one join key: one row per entity key seen, with
    the time each view's row was fetched (never: -inf)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self._views: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def rows(self, keys: list[str]) -> np.ndarray:
        """Row numbers of ``keys`` (new keys get rows, not yet fetched)."""
        index = self.index
        try:  # every key seen before (the usual case): one C-level pass
            return np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=len(keys))
        except KeyError:
            for key in keys:
                index.setdefault(key, len(index))
            return np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=len(keys))

    def view(self, name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The values and fetch times of view ``name``, with a row for every known key."""
        entry = self._views.get(name)
        values, fetched = entry if entry is not None else (np.empty((0, width)), np.empty(0))
        if len(fetched) < len(self.index):
            # Grown by half again each time: a batch of new keys costs one copy, not one each.
            size = max(len(self.index), len(fetched) * 3 // 2, 1024)
            grown = np.full((size, width), np.nan)
            grown[: len(values)] = values
            times = np.full(size, -np.inf)
            times[: len(fetched)] = fetched
            values, fetched = grown, times
            self._views[name] = (values, fetched)
        return values, fetched


class OnlineFeatureReader:
    """Features of one FeatureService for batches of entity rows."""

    def __init__(self, settings: FeatureStoreSettings, service_name: str) -> None:
        self.settings = settings
        self.service_name = service_name
        self.store = feature_store(settings)
        self.layout: ServiceLayout = service_layout(self.store, service_name)
        # join key -> the cached rows of the views keyed by it
        self._cache: dict[str, _KeyTable] = {}
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
            # Views that share a join key share one table of cached rows: a batch's keys are
            # resolved to row numbers once per join key, each view's values are then one
            # vectorised take (the store is asked once per view for what is missing or stale).
            resolved: dict[str, tuple[_KeyTable, list[str], np.ndarray]] = {}
            for index, view in enumerate(self.layout.views):
                join_key = view.join_keys[0]
                if join_key not in resolved:
                    table = self._cache.setdefault(join_key, _KeyTable())
                    keys = _texts(entities[join_key])
                    resolved[join_key] = (table, keys, table.rows(keys))
                table, keys, rows = resolved[join_key]
                values, fetched = table.view(view.name, len(view.features))
                stale = (fetched[rows] < now - ttl).nonzero()[0]
                missing = list(dict.fromkeys(keys[i] for i in stale)) if len(stale) else []
                self.misses += len(missing)
                self.hits += len(keys) - len(missing)
                if missing:
                    at = np.array([table.index[key] for key in missing], dtype=np.int64)
                    fresh = self._fetch(index, missing)
                    values[at] = np.array([fresh[key] for key in missing], dtype=float).reshape(
                        len(missing), len(view.features)
                    )
                    fetched[at] = now
                block = values[rows]
                for j, name in enumerate(view.features):
                    frame[name] = block[:, j]
        n = len(next(iter(entities.values()))) if entities else 0
        for name in self.layout.missing:  # views the workspace has no records for
            frame[name] = np.full(n, np.nan)
        for odfv in self.layout.on_demand:
            outputs = odfv.feature_transformation.udf(frame)
            for name, values in outputs.items():
                frame[name] = np.asarray(values, dtype=float)
        return frame
