"""The model input contract: which features a model sees and how they become a matrix.

Training and serving both call :func:`model_frame` and :func:`encode`, so a model is always fed
exactly what it was trained on: the same request-derived features, the same Feast features (by
feature-service name), the same category vocabularies and the same column order. The feature
list and vocabularies travel with the model (see ``ModelSpec`` in serving and training).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from data_contracts.dataset import ExtraAttribute
from features.columns import Columns, column, floats, is_missing, length, texts
from features.keys import transit_hubs

__all__ = [
    "DECLARATION_FEATURES",
    "ENS_FEATURES",
    "EXPOSURE_FEATURE",
    "EXTRA_PREFIX",
    "FEATURES_BY_SUBJECT",
    "Encoder",
    "ModelFeature",
    "SubjectType",
    "calibrate",
    "encode",
    "expected_revenue",
    "extra_features",
    "features_from_spec",
    "fit_vocabularies",
    "model_features",
    "model_frame",
    "request_features",
    "revenue_exposure",
]

SubjectType = Literal["declaration", "ens"]


@dataclass(frozen=True)
class ModelFeature:
    """A model input column.

    ``label`` is how a reason sentence names the feature; ``monotone`` is the LightGBM
    constraint (+1: a higher value never lowers the risk), set where the direction is a
    business fact rather than something to learn.
    """

    name: str
    label: str
    kind: Literal["numeric", "categorical"] = "numeric"
    source: Literal["request", "feast"] = "feast"
    monotone: int = 0
    unit: str = ""


def _f(name: str, label: str, **kw) -> ModelFeature:
    return ModelFeature(name, label, **kw)


def _req(name: str, label: str, **kw) -> ModelFeature:
    return ModelFeature(name, label, source="request", **kw)


_WARNINGS = (
    _req("warning_vague_description", "vague goods description"),
    _req("warning_description_mismatch", "description at odds with the HS code"),
    _req("warning_value_outlier", "implausible value per kg"),
    _req("warning_mass_outlier", "implausible mass"),
)

_IMPORTER = (
    _f("importer_declarations_30d", "importer's items in the last 30 days"),
    _f("importer_declarations_365d", "importer's items in the last year"),
    _f("importer_customs_value_90d", "importer's declared value in the last 90 days", unit="EUR"),
    _f("importer_vague_description_share_365d", "importer's share of vague descriptions"),
    _f("importer_days_since_first_seen", "days since the importer was first seen"),
    _f("importer_controls_365d", "importer's controls in the last year"),
    _f("importer_hit_rate_365d", "importer's past hit rate", monotone=1),
    _f("importer_financial_hit_rate_365d", "importer's past financial hit rate", monotone=1),
    _f("importer_revenue_recovered_365d", "revenue recovered from the importer", unit="EUR"),
    _f("importer_aeo", "importer holds AEO status"),
    _f("registration_age_days", "days since the importer's EORI registration"),
)

DECLARATION_FEATURES: tuple[ModelFeature, ...] = (
    _req("declaration_type", "declaration type", kind="categorical"),
    _req("transport_mode", "mode of transport", kind="categorical"),
    _req("origin_country", "country of origin", kind="categorical"),
    _req("dispatch_country", "country of dispatch", kind="categorical"),
    _req("hs_chapter", "HS chapter", kind="categorical"),
    _req("procedure_code", "customs procedure", kind="categorical"),
    _req("customs_office", "office of lodgement", kind="categorical"),
    _req("log_customs_value", "declared customs value (log EUR)"),
    _req("log_net_mass", "net mass (log kg)"),
    _req("gross_net_ratio", "gross to net mass ratio"),
    _req("duty_rate_paid", "duties paid as a share of value"),
    _req("units_per_kg", "supplementary units per kg"),
    _req("container", "goods in a container"),
    _req("has_seller", "seller identified"),
    _req("dispatch_differs", "dispatched from another country than the origin"),
    _req("has_preference", "tariff preference claimed"),
    _req("h7_near_threshold", "low-value item just under the 150 EUR threshold"),
    *_WARNINGS,
    *_IMPORTER,
    _f("chapter_share_365d", "share of this chapter in the importer's past year"),
    _f("origin_share_365d", "share of this origin in the importer's past year"),
    _f("declarant_declarations_365d", "declarant's items in the last year"),
    _f("declarant_hit_rate_365d", "declarant's past hit rate", monotone=1),
    _f("seller_declarations_365d", "seller's items in the last year"),
    _f("seller_controls_365d", "seller's controls in the last year"),
    _f("seller_hit_rate_365d", "seller's past hit rate", monotone=1),
    _f("seller_ipr_hit_rate_365d", "seller's past counterfeit rate", monotone=1),
    _f("seller_product_safety_hit_rate_365d", "seller's past unsafe-product rate", monotone=1),
    _f("commodity_hit_rate_365d", "commodity's past hit rate"),
    _f("commodity_financial_hit_rate_365d", "commodity's past financial hit rate"),
    _f("commodity_ipr_hit_rate_365d", "commodity's past counterfeit rate"),
    _f("commodity_product_safety_hit_rate_365d", "commodity's past unsafe-product rate"),
    _f("commodity_prohibitions_restrictions_hit_rate_365d", "commodity's past P&R hit rate"),
    _f("national_commodity_controls_365d", "controls of this full commodity code in the last year"),
    _f("national_commodity_hit_rate_365d", "full commodity code's past hit rate"),
    _f(
        "national_commodity_financial_hit_rate_365d",
        "full commodity code's past financial hit rate",
    ),
    _f("national_commodity_ipr_hit_rate_365d", "full commodity code's past counterfeit rate"),
    _f(
        "national_commodity_product_safety_hit_rate_365d",
        "full commodity code's past unsafe-product rate",
    ),
    _f(
        "national_commodity_prohibitions_restrictions_hit_rate_365d",
        "full commodity code's past P&R hit rate",
    ),
    _f("commodity_origin_hit_rate_365d", "past hit rate of this commodity from this origin"),
    _f(
        "commodity_origin_financial_hit_rate_365d",
        "past financial hit rate of this commodity from this origin",
    ),
    _f("route_declarations_90d", "items on this route in the last 90 days"),
    _f("route_hit_rate_365d", "route's past hit rate", monotone=1),
    _f("price_z_score", "declared price against the usual price for this commodity and origin"),
    _f("price_ratio_to_baseline", "declared price as a multiple of the usual price"),
    _f("price_baseline_level", "how specific the price baseline is"),
    _f("co_observations", "declarations behind the price baseline"),
)

ENS_FEATURES: tuple[ModelFeature, ...] = (
    _req("transport_mode", "mode of transport", kind="categorical"),
    _req("ics2_release", "ICS2 release", kind="categorical"),
    _req("consignor_country", "consignor's country", kind="categorical"),
    _req("country_of_loading", "country of loading", kind="categorical"),
    _req("first_entry_country", "first EU country of entry", kind="categorical"),
    _req("first_transit_country", "first transit country", kind="categorical"),
    _req("last_transit_country", "last transit country before the EU", kind="categorical"),
    _req("hs_chapter", "HS chapter", kind="categorical"),
    _req("log_gross_mass", "gross mass (log kg)"),
    _req("packages", "number of packages"),
    _req("log_declared_value", "declared value (log EUR)"),
    _req("log_value_per_kg", "declared value per kg (log)"),
    _req("transit_countries", "number of transit countries"),
    _req("consignee_private", "consignee is a private person"),
    _req("has_master_document", "master transport document given"),
    _req("containers", "number of containers"),
    _req("hs_missing", "no commodity code given"),
    *_WARNINGS,
    *_IMPORTER,
    _f("carrier_filings_90d", "carrier's filings in the last 90 days"),
    _f("carrier_hit_rate_365d", "carrier's past hit rate", monotone=1),
    _f("carrier_safety_security_hit_rate_365d", "carrier's past security hit rate", monotone=1),
    _f("consignor_filings_90d", "consignor's filings in the last 90 days"),
    _f("consignor_controls_365d", "consignor's controls in the last year"),
    _f("consignor_hit_rate_365d", "consignor's past hit rate", monotone=1),
    _f("route_declarations_90d", "filings on this route in the last 90 days"),
    _f("route_hit_rate_365d", "route's past hit rate", monotone=1),
    _f("route_safety_security_hit_rate_365d", "route's past security hit rate", monotone=1),
    _f("first_transit_hub_filings_90d", "filings through the first transit country, 90 days"),
    _f(
        "first_transit_hub_safety_security_hit_rate_365d",
        "first transit country's past security hit rate",
        monotone=1,
    ),
    _f("last_transit_hub_filings_90d", "filings through the last transit country, 90 days"),
    _f(
        "last_transit_hub_safety_security_hit_rate_365d",
        "last transit country's past security hit rate",
        monotone=1,
    ),
    _f("commodity_hit_rate_365d", "commodity's past hit rate"),
    _f("commodity_prohibitions_restrictions_hit_rate_365d", "commodity's past P&R hit rate"),
)

FEATURES_BY_SUBJECT: dict[str, tuple[ModelFeature, ...]] = {
    "declaration": DECLARATION_FEATURES,
    "ens": ENS_FEATURES,
}

# A national attribute ``name`` of a record's ``extra`` map is the model feature extra_<name>.
EXTRA_PREFIX = "extra_"


def extra_features(attributes: Sequence[ExtraAttribute]) -> tuple[ModelFeature, ...]:
    """The model features of a dataset's national attributes (the manifest's ``extra``).

    Categorical attributes become native LightGBM categoricals (an unseen or missing value is
    missing), numeric ones numbers; reasons name them by the attribute's label.
    """
    return tuple(
        ModelFeature(f"{EXTRA_PREFIX}{a.name}", a.display_label, kind=a.type, source="request")
        for a in attributes
    )


def model_features(subject: str, extras: Sequence[ModelFeature] = ()) -> tuple[ModelFeature, ...]:
    """What a new model of ``subject`` is trained on: the subject's features and the extras."""
    return FEATURES_BY_SUBJECT[subject] + tuple(extras)


def features_from_spec(spec: Mapping[str, Any]) -> tuple[ModelFeature, ...]:
    """The extra features a trained model's spec lists (empty for models without extras)."""
    return tuple(ModelFeature(**entry) for entry in spec.get("extra_features") or [])


def _as_map(value: object) -> Mapping[str, object]:
    """A record's ``extra``: a mapping in a request, JSON text in the data store, or absent."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _extra_columns(records: Columns, extras: Sequence[ModelFeature]) -> dict[str, np.ndarray]:
    if not extras:
        return {}
    maps = [_as_map(v) for v in column(records, "extra")]
    out: dict[str, np.ndarray] = {}
    for feature in extras:
        key = feature.name.removeprefix(EXTRA_PREFIX)
        values = np.empty(len(maps), dtype=object)
        values[:] = [m.get(key) for m in maps]
        raw = {"v": values}
        out[feature.name] = texts(raw, "v") if feature.kind == "categorical" else floats(raw, "v")
    return out


def _flag(records: Columns, name: str) -> np.ndarray:
    values = column(records, name)
    if values.dtype == bool:
        return values.astype(np.float64)
    return np.array([0.0 if is_missing(v) or v is pd.NA else float(bool(v)) for v in values])


def _present(records: Columns, name: str) -> np.ndarray:
    return np.array([v is not None for v in texts(records, name)], dtype=np.float64)


def request_features(
    records: Columns, subject: SubjectType, extras: Sequence[ModelFeature] = ()
) -> dict[str, np.ndarray]:
    """Features computed from the record alone (validated fields + contract warnings), and the
    national attributes ``extras`` read from the record's ``extra`` map."""
    out: dict[str, np.ndarray] = {}
    hs = texts(records, "hs_code")
    chapter = np.array([None if h is None else h[:2] for h in hs], dtype=object)
    if subject == "declaration":
        value = floats(records, "customs_value_eur")
        net = floats(records, "net_mass_kg")
        origin = texts(records, "origin_country")
        dispatch = texts(records, "dispatch_country")
        declaration_type = texts(records, "declaration_type")
        preference = texts(records, "preference_code")
        with np.errstate(divide="ignore", invalid="ignore"):
            out.update(
                declaration_type=declaration_type,
                transport_mode=texts(records, "transport_mode"),
                origin_country=origin,
                dispatch_country=dispatch,
                hs_chapter=chapter,
                procedure_code=texts(records, "procedure_code"),
                customs_office=texts(records, "customs_office"),
                log_customs_value=np.log1p(value),
                log_net_mass=np.log(net),
                gross_net_ratio=floats(records, "gross_mass_kg") / net,
                duty_rate_paid=floats(records, "duty_eur") / value,
                units_per_kg=floats(records, "supplementary_units") / net,
                container=_flag(records, "container"),
                has_seller=_present(records, "seller_id"),
                dispatch_differs=(dispatch != origin).astype(np.float64),
                has_preference=np.array(
                    [p is not None and p != "100" for p in preference], dtype=np.float64
                ),
                h7_near_threshold=((declaration_type == "H7") & (value >= 120)).astype(np.float64),
            )
    else:
        mass = floats(records, "gross_mass_kg")
        value = floats(records, "declared_value_eur")
        transit = [transit_hubs(route) for route in column(records, "itinerary")]
        containers = column(records, "container_ids")
        with np.errstate(divide="ignore", invalid="ignore"):
            out.update(
                transport_mode=texts(records, "transport_mode"),
                ics2_release=texts(records, "ics2_release"),
                consignor_country=texts(records, "consignor_country"),
                country_of_loading=texts(records, "country_of_loading"),
                first_entry_country=texts(records, "first_entry_country"),
                first_transit_country=np.array(
                    [t[0] if t else "none" for t in transit], dtype=object
                ),
                last_transit_country=np.array(
                    [t[-1] if t else "none" for t in transit], dtype=object
                ),
                hs_chapter=chapter,
                log_gross_mass=np.log(mass),
                packages=floats(records, "packages"),
                log_declared_value=np.log1p(value),
                log_value_per_kg=np.log(value / mass),
                transit_countries=np.array([len(t) for t in transit], dtype=np.float64),
                consignee_private=1.0 - _present(records, "consignee_id"),
                has_master_document=_present(records, "master_document_id"),
                containers=np.array([0.0 if c is None else float(len(c)) for c in containers]),
                hs_missing=np.array([h is None for h in hs], dtype=np.float64),
            )
    for feature in _WARNINGS:
        out[feature.name] = _flag(records, feature.name)
    out.update(_extra_columns(records, extras))
    return out


def model_frame(
    request: Columns,
    feast: Columns,
    subject: SubjectType,
    extras: Sequence[ModelFeature] = (),
) -> dict[str, np.ndarray]:
    """Every model feature of ``subject`` and ``extras``, in the declared order."""
    n = length(request)
    columns: dict[str, np.ndarray] = {}
    for feature in model_features(subject, extras):
        source = request if feature.source == "request" else feast
        if feature.name in source:
            columns[feature.name] = column(source, feature.name)
        elif feature.kind == "categorical":
            columns[feature.name] = np.full(n, None, dtype=object)
        else:
            columns[feature.name] = np.full(n, np.nan)
    return columns


def fit_vocabularies(
    frame: Columns, features: Sequence[ModelFeature], min_count: int = 20
) -> dict[str, list[str]]:
    """Category vocabularies from training data: values seen at least ``min_count`` times."""
    vocabularies: dict[str, list[str]] = {}
    for feature in features:
        if feature.kind != "categorical":
            continue
        counts = pd.Series(texts(frame, feature.name)).value_counts()
        vocabularies[feature.name] = sorted(counts[counts >= min_count].index.astype(str).tolist())
    return vocabularies


class Encoder:
    """Encodes model-frame columns into the float64 matrix a model was trained on.

    Categories become their vocabulary position; unseen values and missing ones become NaN,
    which LightGBM treats as missing. Build once per model and reuse: the lookups are prepared.
    """

    def __init__(
        self, feature_names: Sequence[str], vocabularies: Mapping[str, Sequence[str]]
    ) -> None:
        self.feature_names = list(feature_names)
        self.lookups = {
            name: {value: float(i) for i, value in enumerate(vocabularies[name])}
            for name in self.feature_names
            if name in vocabularies
        }
        self.key = (
            tuple(self.feature_names),
            tuple((k, tuple(v)) for k, v in sorted(vocabularies.items())),
        )

    def __call__(self, columns: Columns) -> np.ndarray:
        n = length(columns)
        matrix = np.empty((n, len(self.feature_names)), dtype=np.float64)
        for j, name in enumerate(self.feature_names):
            lookup = self.lookups.get(name)
            if lookup is None:
                matrix[:, j] = floats(columns, name)
            else:
                matrix[:, j] = [lookup.get(v, np.nan) for v in texts(columns, name)]
        return matrix


def encode(
    columns: Columns, feature_names: Sequence[str], vocabularies: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """One-off encoding (training, evaluation); serving keeps an :class:`Encoder` per model."""
    return Encoder(feature_names, vocabularies)(columns)


_TIE_SLOPE = 1e-6
# The revenue model's exposure: the declared value, which the revenue at risk scales with.
EXPOSURE_FEATURE = "log_customs_value"


def revenue_exposure(matrix: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Log of each row's declared value: the revenue model's offset (0 for older models).

    Revenue at risk is a share of the value (duty and VAT on what was hidden), so the model
    learns the log of that share and the value enters as a known offset, as an insurer's
    claim-cost model takes the exposure: trees need not rebuild the value's scale from a few
    hundred labelled recoveries. A missing value takes the training rows' median.
    """
    exposure = spec.get("exposure")
    if not exposure:
        return np.zeros(len(matrix))
    column = np.asarray(matrix[:, list(spec["features"]).index(exposure["feature"])], dtype=float)
    with np.errstate(invalid="ignore"):
        offset = np.log(np.maximum(np.expm1(column), 1.0))
    return np.where(np.isnan(offset), float(exposure["missing"]), offset)


def expected_revenue(
    raw_margin: np.ndarray, matrix: np.ndarray, spec: Mapping[str, Any]
) -> np.ndarray:
    """The revenue model's prediction (EUR): its log-link margin plus the exposure offset."""
    margin = np.asarray(raw_margin, dtype=float) + revenue_exposure(matrix, spec)
    return np.exp(np.minimum(margin, 30.0))


def calibrate(raw_margin: np.ndarray, calibration: Mapping[str, object]) -> np.ndarray:
    """Turn LightGBM's raw margin into a calibrated probability (the fitted map travels in JSON).

    ``platt``: sigmoid(a·margin + b); ``isotonic``: piecewise-linear through the fitted points
    over the model's uncalibrated probability; ``none``: the model's own probability.
    """
    method = calibration.get("method", "none")
    margin = np.asarray(raw_margin, dtype=float)
    if method == "platt":
        a = float(calibration["a"])  # type: ignore[arg-type]
        b = float(calibration["b"])  # type: ignore[arg-type]
        return 1.0 / (1.0 + np.exp(-(a * margin + b)))
    probability = 1.0 / (1.0 + np.exp(-margin))
    if method == "isotonic":
        x = np.asarray(calibration["x"], dtype=float)
        y = np.asarray(calibration["y"], dtype=float)
        # Isotonic maps are step functions: whole score ranges would tie and a capacity cut
        # would pick among them at random. A negligible slope keeps the model's own order.
        return np.minimum(np.interp(probability, x, y) + _TIE_SLOPE * probability, 1.0)
    return probability
