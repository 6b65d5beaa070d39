"""Inverse-propensity weights: (1/p)**power, known rate for random controls, clipped, mean 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import TrainingSettings
from training.weights import inverse_propensity_weights


def _reasons(n: int, random_rows: int = 0) -> pd.Series:
    return pd.Series(["random"] * random_rows + ["rule"] * (n - random_rows))


def test_weights_are_inverse_propensities_normalised_to_mean_one() -> None:
    # 100 rows of 0.5 and 100 of 0.25: twice the weight where control was half as likely.
    propensity = np.repeat([0.5, 0.25], 100)
    weights = inverse_propensity_weights(propensity, _reasons(200))
    assert weights.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(weights[:100], 2 / 3)
    np.testing.assert_allclose(weights[100:], 4 / 3)


def test_power_tempers_the_spread_of_the_weights() -> None:
    propensity = np.repeat([0.4, 0.1], 100)
    plain = inverse_propensity_weights(propensity, _reasons(200), power=1.0)
    tempered = inverse_propensity_weights(propensity, _reasons(200), power=0.5)
    assert plain.max() / plain.min() == pytest.approx(4.0)
    assert tempered.max() / tempered.min() == pytest.approx(2.0)
    assert tempered.mean() == pytest.approx(1.0)


def test_power_zero_switches_weighting_off() -> None:
    propensity = np.random.default_rng(0).uniform(0.01, 1.0, 500)
    np.testing.assert_allclose(inverse_propensity_weights(propensity, _reasons(500), power=0), 1.0)


def test_the_largest_weights_are_clipped_at_the_99th_percentile() -> None:
    # One row with p = 0.001 (raw weight 1000) among 99 with p = 0.5 (raw weight 2).
    propensity = np.array([0.5] * 99 + [0.001])
    weights = inverse_propensity_weights(propensity, _reasons(100))
    cap = np.quantile(np.array([2.0] * 99 + [1000.0]), 0.99)  # 2 + 0.01 * 998 = 11.98
    assert cap == pytest.approx(11.98)
    expected = np.array([2.0] * 99 + [cap])
    np.testing.assert_allclose(weights, expected / expected.mean())
    assert weights.max() / weights.min() == pytest.approx(11.98 / 2)


def test_extreme_propensities_are_bounded_so_weights_stay_finite_and_positive() -> None:
    # 0 would divide by zero and > 1 is not a probability: both are clipped to [1e-3, 1].
    propensity = np.array([0.0, 1e-9, 1.0, 1.5] + [0.5] * 196)
    weights = inverse_propensity_weights(propensity, _reasons(200))
    assert np.all(np.isfinite(weights))
    assert np.all(weights > 0)
    assert weights[0] == pytest.approx(weights[1])
    assert weights[2] == pytest.approx(weights[3])
    assert weights[2] < weights[4]


def test_random_controls_use_the_known_random_rate() -> None:
    # 100 random controls among 1000; their estimated propensity (0.4) must be ignored.
    n, random_rows, random_rate = 1_000, 100, 0.05
    propensity = np.array([0.4] * random_rows + [0.2] * (n - random_rows))
    reasons = _reasons(n, random_rows)
    weights = inverse_propensity_weights(propensity, reasons, random_rate=random_rate, power=1.0)
    # w_random / w_rule = (p_rule / random_rate) ** power = 0.2 / 0.05.
    assert weights[0] / weights[-1] == pytest.approx(4.0)
    tempered = inverse_propensity_weights(propensity, reasons, random_rate=random_rate, power=0.5)
    assert tempered[0] / tempered[-1] == pytest.approx(2.0)
    assert weights.mean() == pytest.approx(1.0)


def test_without_a_random_rate_random_controls_keep_their_estimated_propensity() -> None:
    propensity = np.array([0.4] * 100 + [0.2] * 900)
    weights = inverse_propensity_weights(propensity, _reasons(1_000, 100), power=1.0)
    assert weights[0] / weights[-1] == pytest.approx(0.5)


def test_accepts_a_propensity_series_as_training_passes_it() -> None:
    propensity = pd.Series(np.repeat([0.5, 0.25], 100))
    weights = inverse_propensity_weights(propensity, _reasons(200), power=0.5)
    assert isinstance(weights, np.ndarray)
    np.testing.assert_allclose(weights[100:] / weights[:100], np.sqrt(2))


def test_settings_temper_the_weights_and_exclude_outcome_driven_controls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("CRISK_TRAIN_IPW_POWER", "CRISK_TRAIN_EXCLUDE_SELECTION_REASONS"):
        monkeypatch.delenv(name, raising=False)
    settings = TrainingSettings()
    assert settings.ipw_power == 0.5
    # An officer's tip-off depends on the outcome itself: those labels are not ignorable.
    assert settings.exclude_selection_reasons == ["other"]
    assert settings.selection_weighting == "ipw"


@pytest.mark.parametrize("power", [-0.1, 1.5])
def test_settings_reject_a_power_outside_zero_to_one(power: float) -> None:
    with pytest.raises(ValueError, match="ipw_power"):
        TrainingSettings(ipw_power=power)


def _population(n: int = 6_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Declaration-like records where controls favour air transport (a rule's doing)."""
    from world.generate import WorldConfig, generate_world

    rng = np.random.default_rng(seed)
    world = generate_world(WorldConfig(seed=seed, declarations=n, ens=100))
    records = world.declarations.drop_duplicates(["declaration_id", "item_number"])
    records = records.reset_index(drop=True)
    n = len(records)
    air = records["transport_mode"].to_numpy() == 4
    controlled = rng.random(n) < np.where(air, 0.3, 0.03)
    return records, controlled


def test_recorded_probabilities_are_used_as_they_are() -> None:
    from training.weights import selection_weights

    records, controlled = _population()
    rows = np.flatnonzero(controlled)
    recorded = np.where(np.arange(len(rows)) % 2 == 0, 0.01, 1.0)  # every row recorded
    result = selection_weights(
        records, rows, recorded, "declaration", fit_rows=np.ones(len(records), bool), power=1.0
    )
    assert result.recorded.all() and result.info["recorded_share"] == 1.0
    np.testing.assert_allclose(result.propensity, recorded)
    assert result.weights[0] / result.weights[1] == pytest.approx(100.0)


def test_estimated_propensities_see_only_the_training_windows() -> None:
    """Changing which test-window items were controlled changes no training weight."""
    from training.weights import selection_weights

    records, controlled = _population(seed=1)
    n = len(records)
    fit_rows = np.arange(n) < int(n * 0.7)  # the training windows; the rest is the test window
    other = controlled.copy()
    other[~fit_rows] = ~controlled[~fit_rows]  # a different history in the test window
    weights = []
    for flags in (controlled, other):
        rows = np.flatnonzero(flags)
        result = selection_weights(
            records, rows, np.full(len(rows), np.nan), "declaration", fit_rows=fit_rows,
            power=1.0,
        )  # fmt: skip
        train = fit_rows[rows]
        assert result.info["estimated_rows"] == int(train.sum())
        assert np.isnan(result.propensity[~train]).all(), "test-window rows are not estimated"
        weights.append(pd.Series(result.weights[train], index=rows[train]))
    pd.testing.assert_series_equal(weights[0], weights[1])


def test_estimated_propensities_follow_the_selection_and_are_cross_fitted() -> None:
    from training.weights import estimate_propensity

    records, controlled = _population(seed=2)
    air = records["transport_mode"].to_numpy() == 4
    p = estimate_propensity(records, controlled, "declaration", seed=3)
    assert p[air].mean() > 3 * p[~air].mean(), "the rule's preference is learnt"
    # Cross-fitted: a row's own label does not set its propensity (flipping it moves little).
    flipped = controlled.copy()
    flipped[0] = not flipped[0]
    q = estimate_propensity(records, flipped, "declaration", seed=3)
    assert abs(q[0] - p[0]) < 0.05
