"""Drift measures: population stability, Wilson intervals, hit rates by week."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.monitor import hit_rates_by_week, population_stability, wilson_interval


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 20_000)
    assert population_stability(reference, rng.normal(0, 1, 5_000), False) < 0.02
    assert population_stability(reference, rng.normal(1.0, 1, 5_000), False) > 0.25


def test_psi_counts_missing_values_and_categories() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 10_000)
    gaps = reference.copy()
    gaps[:3_000] = np.nan  # a feature that stopped arriving for 30% of items
    assert population_stability(reference, gaps, False) > 0.25
    origins = np.array(["CN"] * 600 + ["US"] * 300 + ["TR"] * 100, dtype=object)
    moved = np.array(["CN"] * 300 + ["US"] * 300 + ["TR"] * 400, dtype=object)
    assert population_stability(origins, origins.copy(), True) == pytest.approx(0.0, abs=1e-9)
    assert population_stability(origins, moved, True) > 0.25


def test_wilson_interval_holds_at_zero_hits_and_covers_the_rate() -> None:
    low, high = wilson_interval(0, 40)
    assert low == 0.0 and 0.05 < high < 0.12
    low, high = wilson_interval(30, 100)
    assert low < 0.3 < high
    assert np.isnan(wilson_interval(0, 0)[0])


def test_hit_rates_by_week_separate_random_controls_and_count_controls_once() -> None:
    rows = []
    for week in range(3):
        day = pd.Timestamp("2026-03-02", tz="UTC") + pd.Timedelta(weeks=week)
        for k in range(10):
            reason = "random" if k < 4 else "model"
            outcome = "irregularity" if k % 2 == 0 else "no_irregularity"
            # Control 0 found two areas: two result rows, one hit.
            areas = ["financial", "ipr"] if k == 0 else [None if k % 2 else "financial"]
            for area in areas:
                rows.append(
                    {"control_id": f"C{week}{k}", "controlled_at": day, "selection_reason": reason,
                     "outcome": outcome, "risk_area": area}
                )  # fmt: skip
    rates = hit_rates_by_week(pd.DataFrame(rows), weeks=2)
    assert len(rates["week"].unique()) == 2, "only the last two weeks"
    random_rows = rates[rates["set"] == "random_controls"]
    assert (random_rows["controls"] == 4).all() and (random_rows["hits"] == 2).all()
    everything = rates[rates["set"] == "all_controls"]
    assert (everything["controls"] == 10).all() and (everything["hits"] == 5).all()
    assert ((rates["low"] <= rates["hit_rate"]) & (rates["hit_rate"] <= rates["high"])).all()
