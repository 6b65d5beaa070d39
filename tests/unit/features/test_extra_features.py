"""National attributes (a record's ``extra`` map) as model features: one reading for the data
store's JSON text and a request's mapping, native categories with unseen values missing."""

from __future__ import annotations

import numpy as np

from data_contracts.dataset import ExtraAttribute
from features.model_input import (
    DECLARATION_FEATURES,
    Encoder,
    extra_features,
    features_from_spec,
    fit_vocabularies,
    model_features,
    model_frame,
    request_features,
)

EXTRAS = extra_features(
    [
        ExtraAttribute(name="payment_type", type="categorical", label="Payment type"),
        ExtraAttribute(name="tax_rate", type="numeric"),
    ]
)


def _records(extra: list[object]) -> dict[str, np.ndarray]:
    values = np.empty(len(extra), dtype=object)
    values[:] = extra
    return {"extra": values}


def test_extra_features_are_named_typed_and_labelled() -> None:
    payment, rate = EXTRAS
    assert (payment.name, payment.kind, payment.label) == (
        "extra_payment_type",
        "categorical",
        "Payment type",
    )
    assert (rate.name, rate.kind, rate.label) == ("extra_tax_rate", "numeric", "Tax rate")
    assert model_features("declaration", EXTRAS)[-2:] == EXTRAS
    assert model_features("declaration") == DECLARATION_FEATURES, "no extras: unchanged"


def test_stored_json_text_and_request_maps_read_the_same() -> None:
    stored = _records(['{"payment_type": "11", "tax_rate": 5.5}', '{"payment_type": 11}', None])
    request = _records([{"payment_type": "11", "tax_rate": 5.5}, {"payment_type": 11}, {}])
    for records in (stored, request):
        columns = request_features(records, "declaration", EXTRAS)  # type: ignore[arg-type]
        assert columns["extra_payment_type"].tolist() == ["11", "11", None]
        np.testing.assert_array_equal(columns["extra_tax_rate"], [5.5, np.nan, np.nan])


def test_a_non_numeric_value_of_a_numeric_attribute_is_missing() -> None:
    columns = request_features(
        _records([{"tax_rate": "n/a"}, {"tax_rate": "7"}]),  # type: ignore[arg-type]
        "declaration",
        EXTRAS,
    )
    np.testing.assert_array_equal(columns["extra_tax_rate"], [np.nan, 7.0])


def test_unseen_and_missing_categories_encode_as_missing() -> None:
    training = request_features(
        _records([{"payment_type": "11"}] * 30 + [{"payment_type": "12"}] * 30),  # type: ignore[arg-type]
        "declaration",
        EXTRAS,
    )
    vocabularies = fit_vocabularies(training, EXTRAS)
    assert vocabularies == {"extra_payment_type": ["11", "12"]}
    served = request_features(
        _records([{"payment_type": "12"}, {"payment_type": "99"}, None]),  # type: ignore[arg-type]
        "declaration",
        EXTRAS,
    )
    frame = model_frame(served, {}, "declaration", EXTRAS)
    matrix = Encoder(["extra_payment_type"], vocabularies)(frame)
    assert matrix[0, 0] == 1.0
    assert np.isnan(matrix[1:, 0]).all()


def test_a_spec_carries_its_extra_features_back() -> None:
    spec = {"extra_features": [f.__dict__ for f in EXTRAS]}
    assert features_from_spec(spec) == EXTRAS
    assert features_from_spec({}) == ()
