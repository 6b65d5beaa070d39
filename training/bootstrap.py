"""Paired bootstrap of targeting metrics: several rankings judged on the same resampled items.

Each resample draws the evaluation set's items with replacement (multiplicities), and every
ranking is scored on that same resample, so the interval of a *difference* between two rankings
reflects only how they differ on the items, not the luck of which items were drawn — the paired
design that makes a small labelled set informative. The selection of a ranking on a resample is
its top n% by weight: items in the ranking's order (score, ties by the tie-break) until the
resample's k = round(n × size) is reached, the boundary item counted in part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from training.metrics import selection_order

__all__ = ["Interval", "PairedBootstrap", "paired_bootstrap"]

_CHUNK = 128  # resamples per block: bounds memory at n × 128 values per ranking


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile interval."""

    value: float
    low: float
    high: float

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.value))


@dataclass(frozen=True)
class PairedBootstrap:
    """Per ranking, the metric on every resample (``precision``/``revenue``: name -> array)."""

    precision: dict[str, np.ndarray]
    revenue: dict[str, np.ndarray]
    point_precision: dict[str, float]
    point_revenue: dict[str, float]
    confidence: float

    def _interval(self, point: float, draws: np.ndarray) -> Interval:
        draws = draws[np.isfinite(draws)]
        if not np.isfinite(point) or len(draws) == 0:
            return Interval(float("nan"), float("nan"), float("nan"))
        tail = (1 - self.confidence) / 2 * 100
        low, high = np.percentile(draws, [tail, 100 - tail])
        return Interval(float(point), float(low), float(high))

    def difference(self, metric: str, first: str, second: str) -> Interval:
        """``first`` minus ``second`` on ``metric`` (``precision`` or ``revenue``)."""
        draws, point = (
            (self.precision, self.point_precision)
            if metric == "precision"
            else (self.revenue, self.point_revenue)
        )
        return self._interval(point[first] - point[second], draws[first] - draws[second])

    def value(self, metric: str, name: str) -> Interval:
        draws, point = (
            (self.precision, self.point_precision)
            if metric == "precision"
            else (self.revenue, self.point_revenue)
        )
        return self._interval(point[name], draws[name])


def _top_share(
    weights: np.ndarray, y: np.ndarray, revenue: np.ndarray, order: np.ndarray, k: float
) -> tuple[np.ndarray, np.ndarray]:
    """Hits and revenue in the top-``k`` weight of each resample (rows of ``weights``)."""
    w = weights[:, order]
    before = np.cumsum(w, axis=1) - w
    taken = np.clip(k - before, 0.0, w)  # the boundary item counts in part
    return taken @ y[order], taken @ revenue[order]


def paired_bootstrap(
    y: np.ndarray,
    rankings: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    *,
    rate: float,
    revenue: np.ndarray | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 7,
) -> PairedBootstrap:
    """Precision@rate% and Revenue@rate% of each ranking, on the same resamples.

    Args:
        y: 1 for an irregular item.
        rankings: name -> (score, tie-break or None); higher is selected first.
        rate: the inspection rate in percent (5 for Precision@5%).
        revenue: revenue recovered per item (None: Revenue@n% is NaN).
        resamples: number of bootstrap resamples.
        confidence: level of the percentile intervals.
        seed: random seed of the resamples.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    money = np.zeros(n) if revenue is None else np.nan_to_num(np.asarray(revenue, dtype=float))
    orders = {name: selection_order(score, tie) for name, (score, tie) in rankings.items()}
    k = float(max(1, round(n * rate / 100))) if n else 0.0
    precision = {name: np.full(resamples, np.nan) for name in rankings}
    captured = {name: np.full(resamples, np.nan) for name in rankings}
    point_precision: dict[str, float] = {}
    point_revenue: dict[str, float] = {}
    total = money.sum()
    for name, order in orders.items():
        hits, caught = _top_share(np.ones((1, n)), y, money, order, k) if n else ([0.0], [0.0])
        point_precision[name] = float(hits[0] / k) if n else float("nan")
        point_revenue[name] = float(caught[0] / total) if total > 0 else float("nan")
    if n == 0:
        return PairedBootstrap(precision, captured, point_precision, point_revenue, confidence)
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(size, n))
        weights = np.stack([np.bincount(row, minlength=n) for row in draws]).astype(float)
        totals = weights @ money
        for name, order in orders.items():
            hits, caught = _top_share(weights, y, money, order, k)
            precision[name][start : start + size] = hits / k
            with np.errstate(invalid="ignore", divide="ignore"):
                captured[name][start : start + size] = np.where(totals > 0, caught / totals, np.nan)
    return PairedBootstrap(precision, captured, point_precision, point_revenue, confidence)
