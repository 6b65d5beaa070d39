"""Vectorised feature transformations shared by Feast's on-demand views, training and serving.

Each function takes a mapping of column name -> array-like (a pandas frame works, so does
Feast's python-mode dict of lists) and returns a dict of numpy arrays. Keeping the arithmetic
here, and calling it from the on-demand feature views, is what makes offline and online values
identical: there is one implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "HIT_RATE_PRIOR",
    "HIT_RATE_PRIOR_WEIGHT",
    "MIN_BASELINE_OBSERVATIONS",
    "float_array",
    "importer_novelty",
    "price_deviation",
    "registration_age",
    "smoothed_rate",
]

# Smoothed hit rates shrink towards a fixed prior so one control does not make a 100% rate;
# fixed (not learned from the data) so offline and online values can never differ.
HIT_RATE_PRIOR = 0.05
HIT_RATE_PRIOR_WEIGHT = 5.0
# A commodity × origin price cell needs this many past observations to be trusted; below it the
# HS6-wide baseline is used.
MIN_BASELINE_OBSERVATIONS = 8
_MIN_SPREAD = 0.05

Columns = Mapping[str, Any]


def float_array(values: Any) -> np.ndarray:
    """Array of float64 with None -> NaN (Feast's python mode hands over lists with None)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(np.float64, copy=False)
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def smoothed_rate(hits: Any, trials: Any, prior: float = HIT_RATE_PRIOR) -> np.ndarray:
    """(hits + w·prior) / (trials + w); unknown counts count as zero."""
    h = np.nan_to_num(float_array(hits))
    t = np.nan_to_num(float_array(trials))
    return (h + HIT_RATE_PRIOR_WEIGHT * prior) / (t + HIT_RATE_PRIOR_WEIGHT)


def price_deviation(columns: Columns) -> dict[str, np.ndarray]:
    """Declared unit value against the commodity × origin baseline (the THESEUS idea).

    Uses the commodity × origin cell when it has enough history, else the HS6-wide baseline.
    A strongly negative ``price_z_score`` is the undervaluation signal.
    """
    value = float_array(columns["customs_value_eur"])
    mass = float_array(columns["net_mass_kg"])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_unit_value = np.where((value > 0) & (mass > 0), np.log(value / mass), np.nan)
    cell_n = np.nan_to_num(float_array(columns["co_observations"]))
    use_cell = cell_n >= MIN_BASELINE_OBSERVATIONS
    median = np.where(
        use_cell,
        float_array(columns["co_median_log_unit_value"]),
        float_array(columns["hs6_median_log_unit_value"]),
    )
    spread = np.where(
        use_cell,
        float_array(columns["co_spread_log_unit_value"]),
        float_array(columns["hs6_spread_log_unit_value"]),
    )
    spread = np.maximum(spread, _MIN_SPREAD)
    z = (log_unit_value - median) / spread
    level = np.where(use_cell, 2.0, np.where(np.isnan(median), 0.0, 1.0))
    return {
        "log_unit_value": log_unit_value,
        "price_z_score": z,
        "price_ratio_to_baseline": np.exp(log_unit_value - median),
        "price_baseline_level": level,
    }


def importer_novelty(columns: Columns) -> dict[str, np.ndarray]:
    """How usual this commodity chapter and origin are for the importer (share of its past year)."""
    total = float_array(columns["importer_declarations_365d"])
    chapter = np.nan_to_num(float_array(columns["importer_chapter_declarations_365d"]))
    origin = np.nan_to_num(float_array(columns["importer_origin_declarations_365d"]))
    with np.errstate(divide="ignore", invalid="ignore"):
        chapter_share = np.where(total > 0, chapter / total, np.nan)
        origin_share = np.where(total > 0, origin / total, np.nan)
    return {"chapter_share_365d": chapter_share, "origin_share_365d": origin_share}


def registration_age(columns: Columns) -> dict[str, np.ndarray]:
    """Days between the operator's EORI registration and the event."""
    registered = float_array(columns["registered_epoch_day"])
    event_day = float_array(columns["event_epoch_day"])
    return {"registration_age_days": event_day - registered}
