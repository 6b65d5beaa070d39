"""On-demand transformations: the one implementation offline and online share."""

from __future__ import annotations

import numpy as np

from features.transforms import MIN_BASELINE_OBSERVATIONS, price_deviation, smoothed_rate


def test_price_deviation_uses_the_cell_when_it_has_history() -> None:
    out = price_deviation(
        {
            "customs_value_eur": [100.0, 100.0, None],
            "net_mass_kg": [10.0, 10.0, 1.0],
            "co_median_log_unit_value": [np.log(20.0), np.log(20.0), None],
            "co_spread_log_unit_value": [0.5, 0.5, None],
            "co_observations": [MIN_BASELINE_OBSERVATIONS, 1, None],
            "hs6_median_log_unit_value": [np.log(10.0), np.log(10.0), None],
            "hs6_spread_log_unit_value": [0.25, 0.25, None],
        }
    )
    np.testing.assert_allclose(out["price_z_score"][:2], [np.log(0.5) / 0.5, 0.0])
    assert out["price_baseline_level"].tolist() == [2.0, 1.0, 0.0]
    assert np.isnan(out["price_z_score"][2])


def test_smoothed_rate_shrinks_small_counts() -> None:
    rates = smoothed_rate([1, 10, None], [1, 10, None])
    assert rates[0] < rates[1] < 1.0
    assert 0 < rates[2] < 0.1
