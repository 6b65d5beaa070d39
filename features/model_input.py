"""The model input contract: which features a model sees and how they become a matrix.

Training and serving both call :func:`model_frame` and :func:`encode`, so a model is always fed
exactly what it was trained on: the same request-derived features, the same Feast features (by
feature-service name), the same category vocabularies and the same column order. The feature
list and vocabularies travel with the model (see ``ModelSpec`` in serving and training).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "DECLARATION_FEATURES",
    "ENS_FEATURES",
    "FEATURES_BY_SUBJECT",
    "ModelFeature",
    "SubjectType",
    "encode",
    "fit_vocabularies",
    "model_frame",
    "request_features",
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
    _f("route_declarations_90d", "filings on this route in the last 90 days"),
    _f("route_hit_rate_365d", "route's past hit rate", monotone=1),
    _f("route_safety_security_hit_rate_365d", "route's past security hit rate", monotone=1),
    _f("commodity_hit_rate_365d", "commodity's past hit rate"),
    _f("commodity_prohibitions_restrictions_hit_rate_365d", "commodity's past P&R hit rate"),
)

FEATURES_BY_SUBJECT: dict[str, tuple[ModelFeature, ...]] = {
    "declaration": DECLARATION_FEATURES,
    "ens": ENS_FEATURES,
}


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.zeros(len(frame))
    return frame[column].fillna(False).astype(bool).to_numpy(dtype=float)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame[column].astype("string").astype(object).where(frame[column].notna(), None)


def _warning_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {f.name: _flag(frame, f.name) for f in _WARNINGS}


def request_features(records: pd.DataFrame, subject: SubjectType) -> pd.DataFrame:
    """Features computed from the record alone (validated fields + contract warnings)."""
    out: dict[str, object] = {}
    if subject == "declaration":
        value = _num(records, "customs_value_eur")
        net = _num(records, "net_mass_kg")
        gross = _num(records, "gross_mass_kg")
        with np.errstate(divide="ignore", invalid="ignore"):
            out.update(
                declaration_type=_text(records, "declaration_type"),
                transport_mode=_text(records, "transport_mode"),
                origin_country=_text(records, "origin_country"),
                dispatch_country=_text(records, "dispatch_country"),
                hs_chapter=records["hs_code"].astype("string").str[:2].astype(object),
                procedure_code=_text(records, "procedure_code"),
                customs_office=_text(records, "customs_office"),
                log_customs_value=np.log1p(value),
                log_net_mass=np.log(net),
                gross_net_ratio=gross / net,
                duty_rate_paid=_num(records, "duty_eur") / value,
                units_per_kg=_num(records, "supplementary_units") / net,
                container=_flag(records, "container"),
                has_seller=records["seller_id"].notna().to_numpy(dtype=float)
                if "seller_id" in records
                else np.zeros(len(records)),
                dispatch_differs=(
                    records["dispatch_country"].astype(str) != records["origin_country"].astype(str)
                ).to_numpy(dtype=float),
                has_preference=(
                    records["preference_code"].notna()
                    & (records["preference_code"].astype(str) != "100")
                ).to_numpy(dtype=float)
                if "preference_code" in records
                else np.zeros(len(records)),
                h7_near_threshold=(
                    (records["declaration_type"].astype(str) == "H7") & (value >= 120)
                ).to_numpy(dtype=float),
            )
    else:
        mass = _num(records, "gross_mass_kg")
        value = _num(records, "declared_value_eur")
        itineraries = records["itinerary"].tolist()
        transit = [list(r)[1:-1] if r is not None and len(r) > 2 else [] for r in itineraries]
        with np.errstate(divide="ignore", invalid="ignore"):
            out.update(
                transport_mode=_text(records, "transport_mode"),
                ics2_release=_text(records, "ics2_release"),
                consignor_country=_text(records, "consignor_country"),
                country_of_loading=_text(records, "country_of_loading"),
                first_entry_country=_text(records, "first_entry_country"),
                first_transit_country=[t[0] if t else "none" for t in transit],
                last_transit_country=[t[-1] if t else "none" for t in transit],
                hs_chapter=records["hs_code"].astype("string").str[:2].astype(object),
                log_gross_mass=np.log(mass),
                packages=_num(records, "packages"),
                log_declared_value=np.log1p(value),
                log_value_per_kg=np.log(value / mass),
                transit_countries=np.array([len(t) for t in transit], dtype=float),
                consignee_private=records["consignee_id"].isna().to_numpy(dtype=float),
                has_master_document=records["master_document_id"].notna().to_numpy(dtype=float),
                containers=np.array(
                    [0.0 if c is None else float(len(c)) for c in records["container_ids"].tolist()]
                ),
                hs_missing=records["hs_code"].isna().to_numpy(dtype=float),
            )
    out.update(_warning_columns(records))
    return pd.DataFrame(out, index=records.index)


def model_frame(
    request: pd.DataFrame, feast: pd.DataFrame, subject: SubjectType
) -> pd.DataFrame:
    """Every model feature of ``subject`` as one frame (request features first, then Feast)."""
    columns: dict[str, object] = {}
    for feature in FEATURES_BY_SUBJECT[subject]:
        frame = request if feature.source == "request" else feast
        if feature.name in frame:
            columns[feature.name] = frame[feature.name].to_numpy()
        else:
            columns[feature.name] = np.full(len(request), np.nan)
    return pd.DataFrame(columns, index=request.index)


def fit_vocabularies(
    frame: pd.DataFrame, features: Sequence[ModelFeature], min_count: int = 20
) -> dict[str, list[str]]:
    """Category vocabularies from training data: values seen at least ``min_count`` times."""
    vocabularies: dict[str, list[str]] = {}
    for feature in features:
        if feature.kind != "categorical":
            continue
        counts = frame[feature.name].astype("string").value_counts()
        vocabularies[feature.name] = sorted(counts[counts >= min_count].index.astype(str).tolist())
    return vocabularies


def encode(
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    vocabularies: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """The float64 matrix LightGBM sees: categories as vocabulary codes, unseen values as NaN."""
    matrix = np.empty((len(frame), len(feature_names)), dtype=np.float64)
    for j, name in enumerate(feature_names):
        column = frame[name]
        if name in vocabularies:
            index = pd.Index(list(vocabularies[name]))
            codes = index.get_indexer(column.astype("string").astype(object).where(column.notna(), None))
            matrix[:, j] = np.where(codes >= 0, codes, np.nan)
        else:
            matrix[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return matrix
