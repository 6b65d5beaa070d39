"""Targeting metrics: hand-computed selections at 1/2/5/10% of the items."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import RATES, calibration_curve, ranking_metrics, selection_order


def _descending_scores(n: int) -> np.ndarray:
    """Row i gets the (i+1)-th highest score; all in (0, 1] so Brier is meaningful."""
    return 1.0 - np.arange(n) / n


def test_reports_the_four_capacity_rates_by_default() -> None:
    out = ranking_metrics(np.array([1, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3]))
    assert RATES == (1, 2, 5, 10)
    for key in ("precision_at", "recall_at", "revenue_at", "precision_at_normalised"):
        assert set(out[key]) == {"1", "2", "5", "10"}
    assert out["n_items"] == 4
    assert out["n_irregular"] == 1


def test_precision_and_recall_at_rates_on_a_hand_built_ranking() -> None:
    # 100 items, positives at ranks 0, 2, 4, 7 and 50: the top 5 hold exactly 3 of the 5.
    n = 100
    y = np.zeros(n, dtype=int)
    y[[0, 2, 4, 7, 50]] = 1
    score = _descending_scores(n)
    # Shuffle rows: selection must follow the score, not the row position.
    perm = np.random.default_rng(0).permutation(n)
    out = ranking_metrics(y[perm], score[perm])

    assert out["precision_at"] == pytest.approx({"1": 1.0, "2": 0.5, "5": 0.6, "10": 0.4})
    assert out["recall_at"] == pytest.approx({"1": 0.2, "2": 0.2, "5": 0.6, "10": 0.8})
    # Best possible at k: min(positives, k) / k and min(positives, k) / positives.
    assert out["precision_at_normalised"] == pytest.approx(
        {"1": 1.0, "2": 0.5, "5": 0.6, "10": 0.8}
    )
    assert out["recall_at_normalised"] == pytest.approx({"1": 1.0, "2": 0.5, "5": 0.6, "10": 0.8})


def test_perfect_ranking_catches_min_one_k_over_positives_and_normalises_to_one() -> None:
    n, positives = 200, 8
    y = np.zeros(n, dtype=int)
    y[:positives] = 1
    out = ranking_metrics(y, _descending_scores(n))

    for rate in RATES:
        k = round(n * rate / 100)
        label = str(rate)
        assert out["recall_at"][label] == pytest.approx(min(1.0, k / positives))
        assert out["precision_at"][label] == pytest.approx(min(positives, k) / k)
        assert out["precision_at_normalised"][label] == pytest.approx(1.0)
        assert out["recall_at_normalised"][label] == pytest.approx(1.0)
    assert out["pr_auc"] == pytest.approx(1.0)
    assert out["roc_auc"] == pytest.approx(1.0)


def test_revenue_at_is_the_caught_share_and_normalised_by_the_best_revenue_order() -> None:
    n = 100
    y = np.zeros(n, dtype=int)
    revenue = np.zeros(n)
    revenue[[0, 3, 20]] = [100.0, 300.0, 600.0]
    y[[0, 3, 20]] = 1
    out = ranking_metrics(y, _descending_scores(n), revenue=revenue)

    # k = 1, 2, 5, 10: the top 5 and top 10 hold rows 0 and 3 (400 of 1000).
    assert out["revenue_at"] == pytest.approx({"1": 0.1, "2": 0.1, "5": 0.4, "10": 0.4})
    # A perfect revenue ranking would take 600 first, then 300, then 100.
    assert out["revenue_at_normalised"] == pytest.approx(
        {"1": 0.1 / 0.6, "2": 0.1 / 0.9, "5": 0.4, "10": 0.4}
    )


def test_revenue_metrics_are_nan_without_revenue() -> None:
    out = ranking_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.2]))
    assert all(math.isnan(v) for v in out["revenue_at"].values())
    assert all(math.isnan(v) for v in out["revenue_at_normalised"].values())


def test_selection_order_is_score_then_tie_break_then_nan_scores_last() -> None:
    score = np.array([0.5, 0.9, 0.5, np.nan, 0.1])
    tie = np.array([1.0, 0.0, 3.0, 99.0, np.nan])
    assert selection_order(score, tie).tolist() == [1, 2, 0, 4, 3]


def test_selection_order_treats_missing_tie_break_as_zero() -> None:
    score = np.array([0.5, 0.5, 0.5])
    tie = np.array([np.nan, -1.0, 2.0])
    assert selection_order(score, tie).tolist() == [2, 0, 1]


def test_tied_scores_are_broken_by_expected_revenue() -> None:
    # Every score ties; only the tie-break (expected revenue) separates the 5 positives.
    n = 100
    y = np.zeros(n, dtype=int)
    y[[10, 30, 50, 70, 90]] = 1
    tie = np.where(y == 1, 1_000.0, 1.0)
    with_tie = ranking_metrics(y, np.full(n, 0.3), tie_break=tie)
    against_tie = ranking_metrics(y, np.full(n, 0.3), tie_break=-tie)

    assert with_tie["precision_at"]["5"] == pytest.approx(1.0)
    assert with_tie["recall_at"]["5"] == pytest.approx(1.0)
    assert against_tie["precision_at"]["5"] == pytest.approx(0.0)


def test_selection_takes_at_least_one_item_on_tiny_sets() -> None:
    # 10 items: 1% and 2% round to zero items, but a control unit always controls one.
    y = np.array([1] + [0] * 9)
    out = ranking_metrics(y, _descending_scores(10))
    assert out["precision_at"] == pytest.approx({"1": 1.0, "2": 1.0, "5": 1.0, "10": 1.0})
    assert out["recall_at"]["1"] == pytest.approx(1.0)


def test_no_positives_gives_zero_precision_and_undefined_recall_and_aucs() -> None:
    n = 50
    score = np.linspace(0.0, 1.0, n)
    out = ranking_metrics(np.zeros(n, dtype=int), score)

    assert out["n_irregular"] == 0
    assert out["precision_at"]["5"] == 0.0
    for key in ("recall_at", "precision_at_normalised", "recall_at_normalised"):
        assert all(math.isnan(v) for v in out[key].values()), key
    assert math.isnan(out["pr_auc"])
    assert math.isnan(out["roc_auc"])
    # Brier is still defined: the mean squared probability.
    assert out["brier"] == pytest.approx(float(np.mean(score**2)))


def test_only_positives_leaves_aucs_undefined() -> None:
    out = ranking_metrics(np.ones(20, dtype=int), np.linspace(0.1, 0.9, 20))
    assert out["precision_at"]["10"] == pytest.approx(1.0)
    assert out["recall_at"]["10"] == pytest.approx(2 / 20)
    assert math.isnan(out["pr_auc"])
    assert math.isnan(out["roc_auc"])


def test_empty_input_yields_nan_metrics_without_raising() -> None:
    out = ranking_metrics(np.array([], dtype=int), np.array([], dtype=float))
    assert out["n_items"] == 0
    assert math.isnan(out["precision_at"]["5"])
    assert math.isnan(out["recall_at"]["5"])
    assert math.isnan(out["brier"])


def test_aucs_match_a_hand_computed_case() -> None:
    y = np.array([0, 0, 1, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8])
    out = ranking_metrics(y, score)
    # 3 of the 4 positive/negative pairs are ordered correctly.
    assert out["roc_auc"] == pytest.approx(0.75)
    # Precision at the recall steps: 1/1 at the first positive, 2/3 at the second.
    assert out["pr_auc"] == pytest.approx((1.0 + 2 / 3) / 2)


def test_brier_clips_scores_to_probabilities_and_can_be_left_out() -> None:
    y = np.array([1, 0])
    out = ranking_metrics(y, np.array([1.7, -2.0]))
    assert out["brier"] == pytest.approx(0.0)
    assert "brier" not in ranking_metrics(y, np.array([1.7, -2.0]), with_probabilities=False)


def test_custom_rates_are_reported_under_their_own_labels() -> None:
    y = np.array([1, 0, 1, 0])
    out = ranking_metrics(y, np.array([0.9, 0.8, 0.7, 0.1]), rates=(25, 50))
    assert out["precision_at"] == pytest.approx({"25": 1.0, "50": 0.5})
    assert out["recall_at"] == pytest.approx({"25": 0.5, "50": 0.5})


def test_calibration_curve_uses_equal_count_bins_sorted_by_prediction() -> None:
    probability = np.array([0.9, 0.1, 0.8, 0.2, 0.55, 0.45])
    y = np.array([1, 0, 1, 0, 1, 0])
    curve = calibration_curve(y, probability, bins=3)
    assert curve["count"] == [2, 2, 2]
    assert curve["predicted"] == pytest.approx([0.15, 0.5, 0.85])
    assert curve["observed"] == pytest.approx([0.0, 0.5, 1.0])


def test_calibration_curve_never_has_more_bins_than_items_and_handles_empty() -> None:
    curve = calibration_curve(np.array([0, 1, 1]), np.array([0.2, 0.6, 0.7]), bins=10)
    assert curve["count"] == [1, 1, 1]
    assert curve["observed"] == [0.0, 1.0, 1.0]
    assert calibration_curve(np.array([]), np.array([])) == {
        "predicted": [],
        "observed": [],
        "count": [],
    }


def test_wilson_interval_matches_the_textbook_values() -> None:
    from training.metrics import wilson_interval

    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(0, 20)[1] == pytest.approx(
        0.1611, abs=1e-4
    )
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_ranking_intervals_bracket_the_point_estimates() -> None:
    from training.metrics import ranking_intervals

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.2).astype(int)
    score = y * 0.5 + rng.random(400)
    point = ranking_metrics(y, score)
    intervals = ranking_intervals(y, score, resamples=100)
    for rate in ("1", "5", "10"):
        low, high = intervals["precision_at_interval"][rate]
        assert low <= point["precision_at"][rate] <= high
        low, high = intervals["recall_at_interval"][rate]
        assert low <= point["recall_at"][rate] <= high
    low, high = intervals["roc_auc_interval"]
    assert low < point["roc_auc"] < high and high - low < 0.2
