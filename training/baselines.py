"""Baselines every model is compared with on the same evaluation set (spec §5).

- random selection: what controlling without analysis finds (the base rate);
- rule-based risk profiles: the rule set a customs risk unit writes (``features.risk_profiles``),
  score = number of profiles hit;
- logistic regression on the same features: what a simpler learned model achieves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.columns import texts
from features.model_input import FEATURES_BY_SUBJECT
from features.risk_profiles import RiskProfiles, declaration_rule_hits, ens_rule_hits, rule_score

__all__ = ["fit_logistic_regression", "load_profiles", "random_scores", "rule_scores"]


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
