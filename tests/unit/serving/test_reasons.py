"""Reason sentences: the value, the comparison that makes it meaningful, the effect in
probability terms; generic over the model's features (extra attributes included)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.model_input import calibrate
from serving.reasons import ReferenceProfile, format_probability, top_reasons

PLATT = {"method": "platt", "a": 1.0, "b": 0.0}


def _reference() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    chapter = np.where(np.arange(n) < 200, "61", "85")
    return pd.DataFrame(
        {
            "hs_chapter": chapter,
            # importers of chapter 61 goods are usually at 2%, of chapter 85 at 10%
            "importer_vague_description_share_365d": np.where(chapter == "61", 0.02, 0.10)
            + rng.uniform(0, 0.001, n),
            "price_ratio_to_baseline": np.linspace(0.0, 2.0, n),
            "log_customs_value": np.log(np.linspace(10, 1000, n)),
            "warning_vague_description": (np.arange(n) % 20 == 0).astype(float),
            "origin_country": np.where(np.arange(n) % 4 == 0, "CN", "TR"),
            "extra_payment_type": np.where(np.arange(n) % 2 == 0, "11", "22"),
            "seller_hit_rate_365d": np.where(np.arange(n) % 10 == 0, np.nan, 0.05),
        }
    )


FEATURES = [
    "importer_vague_description_share_365d",
    "price_ratio_to_baseline",
    "log_customs_value",
    "warning_vague_description",
    "origin_country",
    "extra_payment_type",
    "seller_hit_rate_365d",
]
LABELS = {
    "importer_vague_description_share_365d": "importer's share of vague descriptions",
    "price_ratio_to_baseline": "declared price as a multiple of the usual price",
    "log_customs_value": "declared customs value (log EUR)",
    "warning_vague_description": "vague goods description",
    "origin_country": "country of origin",
    "extra_payment_type": "Payment type",
    "seller_hit_rate_365d": "seller's past hit rate",
}


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return ReferenceProfile.from_frame(
        _reference(), FEATURES, LABELS, {"origin_country", "extra_payment_type", "hs_chapter"}
    )


def _reasons(profile: ReferenceProfile, values: list, contributions: list[float], group="61"):
    row = np.array([*contributions, -3.0])  # the last column is the bias
    return top_reasons(
        row,
        FEATURES,
        values,
        LABELS,
        "financial",
        k=len(FEATURES),
        profile=profile,
        group=group,
        calibration=PLATT,
    )


def test_a_party_feature_is_compared_with_the_same_goods(profile: ReferenceProfile) -> None:
    values = [0.375, 1.0, np.log(100.0), 0.0, "CN", "11", 0.05]
    reason = _reasons(profile, values, [0.8, 0, 0, 0, 0, 0, 0])[0]
    assert reason["feature"] == "importer_vague_description_share_365d"
    assert "38%" in reason["sentence"]
    assert "against a typical 2.1% for importers of goods in HS chapter 61" in reason["sentence"]
    assert reason["typical"] == pytest.approx(0.0205, abs=0.001)
    assert reason["percentile"] == 100.0


def test_the_effect_is_the_calibrated_probability_with_and_without(
    profile: ReferenceProfile,
) -> None:
    contributions = [0.8, 0.4, 0, 0, 0, 0, 0]
    reasons = _reasons(profile, [0.375, 1.9, np.log(100.0), 0.0, "CN", "11", 0.05], contributions)
    margin = sum(contributions) - 3.0
    with_all = float(calibrate(np.array([margin]), PLATT)[0])
    first = reasons[0]
    assert first["probability_with"] == pytest.approx(with_all, abs=1e-6)
    assert first["probability_without"] == pytest.approx(
        float(calibrate(np.array([margin - 0.8]), PLATT)[0]), abs=1e-6
    )
    assert f"from {format_probability(first['probability_without'])} to " in first["sentence"]
    assert first["sentence"].endswith(f"to {format_probability(with_all)}.")
    assert "raises the financial risk" in first["sentence"]


def test_percentile_flag_category_log_scale_missing_and_extra(profile: ReferenceProfile) -> None:
    values = [0.02, 1.5, np.log(500.0), 1.0, "CN", "11", None]
    contributions = [0.01, 0.5, 0.3, 0.2, 0.1, 0.05, -0.2]
    by_feature = {r["feature"]: r for r in _reasons(profile, values, contributions)}
    price = by_feature["price_ratio_to_baseline"]
    assert (
        "higher than 75% of recent items" in price["sentence"]
        and "(typical 1)" in price["sentence"]
    )
    assert price["percentile"] == pytest.approx(75.0, abs=0.5)
    value = by_feature["log_customs_value"]["sentence"]
    assert value.startswith("Declared customs value: about 500 EUR"), "log scale undone"
    flag = by_feature["warning_vague_description"]["sentence"]
    assert flag.startswith("Vague goods description: yes (yes for 5.0% of recent items)")
    assert "Country of origin: CN (25% of recent items)" in by_feature["origin_country"]["sentence"]
    assert by_feature["extra_payment_type"]["sentence"].startswith("Payment type: 11 (50% of")
    missing = by_feature["seller_hit_rate_365d"]["sentence"]
    assert missing.startswith("Seller's past hit rate: unknown, no history (as for 10% of")
    assert "lowers the financial risk" in missing


def test_raising_reasons_come_first_and_k_is_kept(profile: ReferenceProfile) -> None:
    values = [0.02, 1.5, np.log(500.0), 1.0, "CN", "11", None]
    row = np.array([-0.9, 0.1, 0.3, -0.2, 0.0, 0.05, 0.0, -3.0])
    reasons = top_reasons(
        row, FEATURES, values, LABELS, "financial", k=3, profile=profile, calibration=PLATT
    )
    assert [r["feature"] for r in reasons] == [
        "log_customs_value",
        "price_ratio_to_baseline",
        "extra_payment_type",
    ]


def test_without_a_profile_or_calibration_a_sentence_still_reads() -> None:
    row = np.array([0.4, -3.0])
    (reason,) = top_reasons(row, ["importer_hit_rate_365d"], [0.3], {}, "ipr")
    assert (
        reason["sentence"] == "Importer_hit_rate_365d: 0.3. This raises the IPR (counterfeit) risk."
    )


@pytest.mark.parametrize(
    ("value", "text"), [(0.0004, "<0.1%"), (0.041, "4.1%"), (0.123, "12%"), (0.9995, ">99.9%")]
)
def test_probabilities_read_as_percentages(value: float, text: str) -> None:
    assert format_probability(value) == text
