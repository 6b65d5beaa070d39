"""The raw-column baselines: label-encoded LightGBM (as papers publish it) and native LightGBM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_contracts.dataset import ExtraAttribute
from training.baselines import (
    fit_label_encoded_lightgbm,
    fit_raw_columns_lightgbm,
    predict_raw_columns,
    raw_columns,
)

EXTRA = [
    ExtraAttribute(name="pay", type="categorical"),
    ExtraAttribute(name="rate", type="numeric"),
]


def _records(n: int, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Declarations whose irregularity is carried by an importer and a national attribute."""
    rng = np.random.default_rng(seed)
    importer = rng.choice(["I1", "I2", "I3", "I4"], n)
    pay = rng.choice(["11", "12", "13"], n)
    y = ((importer == "I3") | (pay == "13")).astype(int) & (rng.random(n) < 0.9)
    records = pd.DataFrame(
        {
            "declaration_type": "H1",
            "customs_office": "NL000396",
            "declarant_id": "D1",
            "importer_id": importer,
            "hs_code": rng.choice(["610910", "851713"], n),
            "origin_country": rng.choice(["CN", "TR"], n),
            "dispatch_country": "CN",
            "transport_mode": 1,
            "procedure_code": "4000",
            "net_mass_kg": rng.uniform(1, 100, n),
            "gross_mass_kg": rng.uniform(100, 200, n),
            "customs_value_eur": rng.uniform(10, 1000, n),
            "duty_eur": rng.uniform(0, 100, n),
            "container": rng.random(n) < 0.5,
            "extra": [{"pay": p, "rate": float(i)} for i, p in enumerate(pay)],
        }
    )
    return records, y.astype(int)


def test_raw_columns_hold_codes_amounts_and_extra_attributes() -> None:
    records, _ = _records(50)
    frame, categorical = raw_columns(records, "declaration", EXTRA, with_unit_price=True)
    assert {"importer_id", "hs_code", "extra_pay"} <= set(categorical)
    assert "extra_rate" in frame and "extra_rate" not in categorical
    expected = records["customs_value_eur"] / records["net_mass_kg"]
    assert np.allclose(frame["unit_price"], expected)
    assert "unit_price" not in raw_columns(records, "declaration", EXTRA, False)[0]
    assert frame["container"].isin([0.0, 1.0]).all()


def test_label_encoding_and_scaling_are_learned_on_the_training_window_only() -> None:
    records, y = _records(400)
    model = fit_label_encoded_lightgbm(records, y, "declaration", EXTRA)
    later = records.head(3).copy()
    later["importer_id"] = ["I1", "NEW", None]
    later["net_mass_kg"] = [1000.0, records["net_mass_kg"].min(), np.nan]
    matrix = model.matrix(later)
    codes = model.categories["importer_id"]
    assert matrix["importer_id"].iloc[0] == codes.index("I1")
    assert matrix["importer_id"].iloc[1] == -1  # unseen on the training window
    assert np.isnan(matrix["importer_id"].iloc[2])  # missing stays missing
    assert matrix["net_mass_kg"].iloc[0] > 1 and matrix["net_mass_kg"].iloc[1] == 0.0
    assert matrix.dtypes.map(lambda d: d.kind == "f").all()  # label codes are numbers


@pytest.mark.parametrize("fit", [fit_label_encoded_lightgbm, fit_raw_columns_lightgbm])
def test_both_baselines_learn_from_raw_columns_and_extra_attributes(fit) -> None:
    records, y = _records(2000)
    model = fit(records, y, "declaration", EXTRA)
    test, y_test = _records(1000, seed=2)
    score = predict_raw_columns(model, test)
    assert score.shape == (1000,)
    top = np.argsort(-score)[:100]
    assert y_test[top].mean() > 2 * y_test.mean() * 0.9  # far above the base rate


def test_native_categories_unseen_later_are_missing_and_one_class_gives_a_constant() -> None:
    records, y = _records(300)
    model = fit_raw_columns_lightgbm(records, y, "declaration", EXTRA)
    later = records.head(2).copy()
    later["importer_id"] = ["NEW", "NEW"]
    assert model.matrix(later)["importer_id"].isna().all()
    assert np.isfinite(predict_raw_columns(model, later)).all()
    constant = fit_raw_columns_lightgbm(
        records, np.zeros(len(records), dtype=int), "declaration", []
    )
    assert constant.booster is None
    assert (predict_raw_columns(constant, later) == 0.0).all()
