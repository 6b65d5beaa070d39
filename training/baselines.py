"""Baselines every model is compared with on the same evaluation set (spec §5).

- random selection: what controlling without analysis finds (the base rate);
- rule-based risk profiles: the rule set a customs risk unit writes (``features.risk_profiles``),
  score = number of profiles hit;
- logistic regression on the same features: what a simpler learned model achieves;
- ``label_encoded_lightgbm``: the baseline published customs-fraud papers report — the raw
  columns of the records (codes, identifiers, amounts, national ``extra`` attributes), each
  categorical label-encoded on the training window, each number min-max scaled on it, and
  LightGBM with its default parameters;
- ``raw_columns_lightgbm``: LightGBM on the same raw columns read natively (codes and
  identifiers as LightGBM categoricals, plus the unit price), with no history features. If
  crisk's features cannot beat this, every evaluation shows it.

All learned baselines are trained on the training window only, on the rows the model learns from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from data_contracts.dataset import ExtraAttribute
from features.columns import texts
from features.model_input import FEATURES_BY_SUBJECT
from features.risk_profiles import RiskProfiles, declaration_rule_hits, ens_rule_hits, rule_score

__all__ = [
    "RAW_COLUMNS",
    "RawColumnsModel",
    "fit_label_encoded_lightgbm",
    "fit_logistic_regression",
    "fit_raw_columns_lightgbm",
    "load_profiles",
    "predict_raw_columns",
    "random_scores",
    "raw_columns",
    "rule_scores",
]


def random_scores(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def load_profiles(world_dir: Path, training_records: pd.DataFrame | None = None) -> RiskProfiles:
    """The risk unit's profiles: the world's file when there is one, else derived from data.

    Without a file, the reference price per HS chapter is the median declared EUR/kg of the
    training records, as a unit would set it from its own statistics.
    """
    path = world_dir / "risk_profiles.json"
    if path.exists():
        return RiskProfiles.model_validate(json.loads(path.read_text()))
    profiles = RiskProfiles()
    if training_records is not None and "customs_value_eur" in training_records:
        unit_value = training_records["customs_value_eur"] / training_records["net_mass_kg"]
        chapter = training_records["hs_code"].astype(str).str[:2]
        profiles.reference_price_eur_per_kg = (
            unit_value.groupby(chapter).median().round(2).to_dict()
        )
    return profiles


def rule_scores(
    records: pd.DataFrame,
    subject: str,
    profiles: RiskProfiles,
    registered_at: pd.Series | None,
) -> np.ndarray:
    """Number of profiles hit, with the declared value as a tiny tie-break (as a unit would)."""
    if subject == "declaration":
        hits = declaration_rule_hits(records, profiles, registered_at)
        value = records["customs_value_eur"].to_numpy(dtype=float)
    else:
        hits = ens_rule_hits(records, profiles)
        value = records["gross_mass_kg"].to_numpy(dtype=float)
    return rule_score(hits) + 1e-9 * np.nan_to_num(np.log1p(value))


def _design(subject: str) -> tuple[list[str], list[str]]:
    features = FEATURES_BY_SUBJECT[subject]
    numeric = [f.name for f in features if f.kind == "numeric"]
    categorical = [f.name for f in features if f.kind == "categorical"]
    return numeric, categorical


def _prepared(frame: pd.DataFrame, subject: str) -> pd.DataFrame:
    numeric, categorical = _design(subject)
    out = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    out = out.replace([np.inf, -np.inf], np.nan)
    for name in categorical:
        out[name] = pd.Series(texts(frame, name), index=frame.index).fillna("missing").astype(str)
    return out


def fit_logistic_regression(
    frame: pd.DataFrame, y: np.ndarray, subject: str, seed: int = 7
) -> Pipeline:
    """Logistic regression on the model's own features (imputed, scaled, one-hot categories)."""
    numeric, categorical = _design(subject)
    transform = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            ),
            (
                "categorical",
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=50),
                categorical,
            ),
        ]
    )
    model = make_pipeline(
        transform,
        LogisticRegression(C=0.5, max_iter=500, class_weight="balanced", random_state=seed),
    )
    model.fit(_prepared(frame, subject), y)
    return model


def predict_logistic_regression(model: Pipeline, frame: pd.DataFrame, subject: str) -> np.ndarray:
    return model.predict_proba(_prepared(frame, subject))[:, 1]


# The records' own columns, as a file carries them: (categorical, numeric) per subject type.
RAW_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "declaration": (
        (
            "declaration_type", "customs_office", "declarant_id", "importer_id", "seller_id",
            "hs_code", "origin_country", "dispatch_country", "transport_mode", "procedure_code",
            "preference_code", "incoterm",
        ),
        (
            "net_mass_kg", "gross_mass_kg", "supplementary_units", "customs_value_eur",
            "duty_eur", "container",
        ),
    ),
    "ens": (
        (
            "ics2_release", "transport_mode", "carrier_id", "consignor_country",
            "consignee_country", "consignee_id", "hs_code", "country_of_loading",
            "first_entry_country",
        ),
        ("gross_mass_kg", "packages", "declared_value_eur"),
    ),
}  # fmt: skip

Encoding = Literal["label", "native"]


def _extra_map(value: Any) -> dict[str, Any]:
    """A record's ``extra`` map, as a mapping or as its JSON text (how the data store keeps it)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _extra_values(records: pd.DataFrame, name: str) -> list[Any]:
    if "extra" not in records:
        return [None] * len(records)
    return [_extra_map(m).get(name) for m in records["extra"]]


def raw_columns(
    records: pd.DataFrame, subject: str, extra: Sequence[ExtraAttribute], with_unit_price: bool
) -> tuple[pd.DataFrame, list[str]]:
    """The raw columns as a frame (categoricals as text) and the names of the categoricals."""
    categorical, numeric = RAW_COLUMNS[subject]
    frame = pd.DataFrame(index=records.index)
    names = []
    for name in categorical:
        frame[name] = texts(records, name) if name in records else None
        names.append(name)
    for name in numeric:
        values = records[name] if name in records else pd.Series(np.nan, index=records.index)
        frame[name] = pd.to_numeric(values.astype("object"), errors="coerce").astype(float)
    if with_unit_price:
        value, mass = (
            ("customs_value_eur", "net_mass_kg")
            if subject == "declaration"
            else ("declared_value_eur", "gross_mass_kg")
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            frame["unit_price"] = frame[value] / frame[mass]
    if subject == "declaration":
        for attribute in extra:
            column = f"extra_{attribute.name}"
            values = _extra_values(records, attribute.name)
            if attribute.type == "categorical":
                frame[column] = [None if v is None else str(v) for v in values]
                names.append(column)
            else:
                frame[column] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    return frame.replace([np.inf, -np.inf], np.nan), names


@dataclass
class RawColumnsModel:
    """A baseline LightGBM on raw columns, with what it learned from the training window."""

    encoding: Encoding
    subject: str
    extra: list[ExtraAttribute]
    categorical: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    scale: dict[str, tuple[float, float]] = field(default_factory=dict)  # min, max
    booster: lgb.Booster | None = None  # None: the training window had one class only
    constant: float = 0.0

    def matrix(self, records: pd.DataFrame) -> pd.DataFrame:
        frame, _ = raw_columns(records, self.subject, self.extra, self.encoding == "native")
        for name in self.categorical:
            known = pd.CategoricalDtype(self.categories[name])
            values = frame[name].astype(object).astype(known)
            if self.encoding == "native":
                frame[name] = values
            else:
                # Label codes in the order seen on the training window; unseen values -1.
                codes = values.cat.codes.astype(float)
                frame[name] = codes.where(frame[name].notna(), np.nan)
        if self.encoding == "label":
            for name, (low, high) in self.scale.items():
                frame[name] = (frame[name] - low) / (high - low) if high > low else 0.0
        return frame


def _fit_raw(
    records: pd.DataFrame,
    y: np.ndarray,
    subject: str,
    extra: Sequence[ExtraAttribute],
    encoding: Encoding,
    seed: int,
) -> RawColumnsModel:
    frame, categorical = raw_columns(records, subject, extra, encoding == "native")
    model = RawColumnsModel(encoding, subject, list(extra), categorical)
    for name in categorical:
        seen = pd.Series(frame[name]).dropna().astype(str)
        model.categories[name] = list(dict.fromkeys(seen))  # first-seen order, as LabelEncoder
    if encoding == "label":
        for name in frame.columns:
            if name not in categorical:
                values = frame[name].to_numpy(dtype=float)
                finite = values[np.isfinite(values)]
                model.scale[name] = (
                    (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
                )
    if len(np.unique(y)) < 2:
        model.constant = float(np.mean(y)) if len(y) else 0.0
        return model
    matrix = model.matrix(records)
    # LightGBM's defaults (100 trees, 31 leaves, learning rate 0.1): the published baseline.
    params = {"objective": "binary", "verbosity": -1, "seed": seed, "num_threads": 2}
    native = categorical if encoding == "native" else []
    model.booster = lgb.train(
        params,
        lgb.Dataset(matrix, label=y, categorical_feature=native or "auto"),
        num_boost_round=100,
    )
    return model


def fit_label_encoded_lightgbm(
    records: pd.DataFrame,
    y: np.ndarray,
    subject: str,
    extra: Sequence[ExtraAttribute],
    seed: int = 7,
) -> RawColumnsModel:
    """Raw columns label-encoded and min-max scaled on the training window, default LightGBM."""
    return _fit_raw(records, y, subject, extra, "label", seed)


def fit_raw_columns_lightgbm(
    records: pd.DataFrame,
    y: np.ndarray,
    subject: str,
    extra: Sequence[ExtraAttribute],
    seed: int = 7,
) -> RawColumnsModel:
    """Raw columns with native categoricals and the unit price, default LightGBM."""
    return _fit_raw(records, y, subject, extra, "native", seed)


def predict_raw_columns(model: RawColumnsModel, records: pd.DataFrame) -> np.ndarray:
    if model.booster is None:
        return np.full(len(records), model.constant)
    return np.asarray(model.booster.predict(model.matrix(records)))
