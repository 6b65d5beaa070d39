"""Targeting metrics (spec §5): what a control unit with limited capacity cares about.

Selection is the top n% by score, ties broken by expected revenue. Precision@n% is the hit rate
of that selection, Recall@n% the share of all irregular items it catches, Revenue@n% the share of
recoverable revenue it catches; each is also reported as a share of the best possible value at
the same n (a perfect ranking).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

__all__ = [
    "RATES",
    "calibration_curve",
    "json_safe",
    "ranking_intervals",
    "ranking_metrics",
    "selection_order",
    "wilson_interval",
]

RATES: tuple[int, ...] = (1, 2, 5, 10)


def selection_order(score: np.ndarray, tie_break: np.ndarray | None = None) -> np.ndarray:
    """Row order of selection: highest score first, then highest tie-break value."""
    tie = np.zeros(len(score)) if tie_break is None else np.nan_to_num(tie_break)
    return np.lexsort((-tie, -np.nan_to_num(score, nan=-np.inf)))


def _k(n: int, rate: int) -> int:
    return max(1, round(n * rate / 100))


def ranking_metrics(
    y: np.ndarray,
    score: np.ndarray,
    *,
    revenue: np.ndarray | None = None,
    tie_break: np.ndarray | None = None,
    rates: Sequence[int] = RATES,
    with_probabilities: bool = True,
) -> dict[str, Any]:
    """Precision/Recall/Revenue@n%, their normalised values, PR-AUC, ROC-AUC and Brier."""
    y = np.asarray(y, dtype=int)
    score = np.asarray(score, dtype=float)
    n = len(y)
    revenue = np.zeros(n) if revenue is None else np.nan_to_num(np.asarray(revenue, dtype=float))
    positives = int(y.sum())
    order = selection_order(score, tie_break)
    best_revenue_order = np.sort(revenue)[::-1]
    out: dict[str, Any] = {"n_items": n, "n_irregular": positives}
    keys = (
        "precision_at",
        "recall_at",
        "revenue_at",
        "precision_at_normalised",
        "recall_at_normalised",
        "revenue_at_normalised",
    )
    for key in keys:
        out[key] = {}
    for rate in rates:
        k = _k(n, rate) if n else 0
        chosen = order[:k]
        hits = int(y[chosen].sum()) if n else 0
        precision = hits / k if k else float("nan")
        recall = hits / positives if positives else float("nan")
        total_revenue = revenue.sum()
        caught = revenue[chosen].sum() if n else 0.0
        revenue_share = caught / total_revenue if total_revenue > 0 else float("nan")
        best_precision = min(positives, k) / k if k else float("nan")
        best_recall = min(positives, k) / positives if positives else float("nan")
        best_revenue = (
            best_revenue_order[:k].sum() / total_revenue if total_revenue > 0 else float("nan")
        )
        label = str(rate)
        out["precision_at"][label] = precision
        out["recall_at"][label] = recall
        out["revenue_at"][label] = revenue_share
        out["precision_at_normalised"][label] = (
            precision / best_precision if best_precision else float("nan")
        )
        out["recall_at_normalised"][label] = recall / best_recall if best_recall else float("nan")
        out["revenue_at_normalised"][label] = (
            revenue_share / best_revenue if best_revenue else float("nan")
        )
    both_classes = 0 < positives < n
    out["pr_auc"] = float(average_precision_score(y, score)) if both_classes else float("nan")
    out["roc_auc"] = float(roc_auc_score(y, score)) if both_classes else float("nan")
    if with_probabilities:
        out["brier"] = float(brier_score_loss(y, np.clip(score, 0, 1))) if n else float("nan")
    return out


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default): sound with few trials or hits."""
    if n <= 0:
        return float("nan"), float("nan")
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def ranking_intervals(
    y: np.ndarray,
    score: np.ndarray,
    *,
    tie_break: np.ndarray | None = None,
    rates: Sequence[int] = RATES,
    resamples: int = 200,
    seed: int = 7,
) -> dict[str, Any]:
    """95% intervals: Wilson for Precision@n% (over the k selected) and Recall@n% (over the
    irregular items), a percentile bootstrap for PR-AUC and ROC-AUC."""
    y = np.asarray(y, dtype=int)
    score = np.asarray(score, dtype=float)
    n, positives = len(y), int(y.sum())
    order = selection_order(score, tie_break)
    out: dict[str, Any] = {"precision_at_interval": {}, "recall_at_interval": {}}
    for rate in rates:
        k = _k(n, rate) if n else 0
        hits = int(y[order[:k]].sum()) if k else 0
        out["precision_at_interval"][str(rate)] = list(wilson_interval(hits, k))
        out["recall_at_interval"][str(rate)] = list(wilson_interval(hits, positives))
    rng = np.random.default_rng(seed)
    pr, roc = [], []
    if 0 < positives < n:
        for _ in range(resamples):
            rows = rng.integers(0, n, n)
            if 0 < y[rows].sum() < n:
                pr.append(average_precision_score(y[rows], score[rows]))
                roc.append(roc_auc_score(y[rows], score[rows]))
    for name, values in (("pr_auc_interval", pr), ("roc_auc_interval", roc)):
        out[name] = (
            [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]
            if values
            else [float("nan"), float("nan")]
        )
    return out


def calibration_curve(
    y: np.ndarray, probability: np.ndarray, bins: int = 10
) -> dict[str, list[float]]:
    """Mean predicted vs observed rate in equal-count bins of the prediction."""
    y = np.asarray(y, dtype=float)
    probability = np.asarray(probability, dtype=float)
    if len(y) == 0:
        return {"predicted": [], "observed": [], "count": []}
    order = np.argsort(probability)
    groups = np.array_split(order, min(bins, len(y)))
    return {
        "predicted": [float(probability[g].mean()) for g in groups],
        "observed": [float(y[g].mean()) for g in groups],
        "count": [len(g) for g in groups],
    }


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively (strict JSON).

    A metric that does not exist (no hits in a set, no revenue for an area) is written as null,
    not as the bare NaN that strict JSON parsers refuse.
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value
