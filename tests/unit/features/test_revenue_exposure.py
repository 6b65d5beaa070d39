"""The revenue model's exposure offset: the declared value the revenue at risk scales with."""

from __future__ import annotations

import numpy as np

from features.model_input import EXPOSURE_FEATURE, expected_revenue, revenue_exposure


def test_the_prediction_scales_with_the_declared_value() -> None:
    spec = {
        "features": ["other", EXPOSURE_FEATURE],
        "exposure": {"feature": EXPOSURE_FEATURE, "missing": np.log(200.0)},
    }
    matrix = np.array([[0.0, np.log1p(1_000.0)], [0.0, np.log1p(10_000.0)], [1.0, np.nan]])
    revenue = expected_revenue(np.full(3, np.log(0.1)), matrix, spec)
    # The margin is the log share of the value at risk: 10% of 1,000, 10,000 and the median.
    np.testing.assert_allclose(revenue, [100.0, 1_000.0, 20.0])


def test_models_without_exposure_keep_their_own_prediction() -> None:
    spec = {"features": [EXPOSURE_FEATURE]}
    matrix = np.array([[np.log1p(1_000.0)]])
    np.testing.assert_allclose(revenue_exposure(matrix, spec), [0.0])
    np.testing.assert_allclose(expected_revenue(np.log([42.0]), matrix, spec), [42.0])
