"""Correcting for selection bias: labels exist only where customs chose to control.

Controls were chosen by rules, by officers and at random, so controlled items over-represent what
rules look for. Each labelled row is weighted by the inverse of its estimated probability of
being controlled, P(controlled | declared data): rules are functions of declared data, so the
propensity is learnable from every item, controlled or not. Randomly selected rows are drawn at
a *known* rate, but an item drawn at random could as well have been picked by a rule: its chance
of carrying a label is still P(controlled | declared data), so training weights them by the
estimate like every other row (``random_rate`` substitutes the known rate for administrations
whose random draw is the only selection). Random rows stay the unbiased evaluation set. Weights
are clipped and normalised so a few rows cannot dominate.
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.model_input import FEATURES_BY_SUBJECT, encode, fit_vocabularies, request_features

__all__ = ["estimate_propensity", "inverse_propensity_weights"]

logger = logging.getLogger(__name__)

_MAX_UNCONTROLLED = 300_000


def estimate_propensity(
    records: pd.DataFrame, controlled: np.ndarray, subject: str, seed: int = 7
) -> np.ndarray:
    """P(controlled | declared data) for every record (LightGBM on request features)."""
    rng = np.random.default_rng(seed)
    features = [f for f in FEATURES_BY_SUBJECT[subject] if f.source == "request"]
    names = [f.name for f in features]
    uncontrolled = np.flatnonzero(~controlled)
    kept = uncontrolled
    if len(uncontrolled) > _MAX_UNCONTROLLED:
        kept = rng.choice(uncontrolled, _MAX_UNCONTROLLED, replace=False)
    fit_rows = np.sort(np.concatenate([np.flatnonzero(controlled), kept]))
    # Subsampled negatives are re-weighted so the fitted probability stays on the population scale.
    weight = np.where(controlled[fit_rows], 1.0, len(uncontrolled) / max(1, len(kept)))
    fit_frame = request_features(records.iloc[fit_rows], subject)  # type: ignore[arg-type]
    vocabularies = fit_vocabularies(fit_frame, features)
    booster = lgb.train(
        {
            "objective": "binary",
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_data_in_leaf": 100,
            "verbosity": -1,
            "num_threads": 2,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
        },
        lgb.Dataset(
            encode(fit_frame, names, vocabularies),
            label=controlled[fit_rows].astype(int),
            weight=weight,
            feature_name=names,
            categorical_feature=[i for i, f in enumerate(features) if f.kind == "categorical"],
        ),
        num_boost_round=80,
    )
    all_frame = request_features(records, subject)  # type: ignore[arg-type]
    return np.asarray(booster.predict(encode(all_frame, names, vocabularies)))


def inverse_propensity_weights(
    propensity: np.ndarray,
    selection_reason: pd.Series,
    random_rate: float | None = None,
    power: float = 1.0,
) -> np.ndarray:
    """Normalised, clipped (1/p)**power weights (random rows use the known rate when given).

    ``power`` below 1 tempers the weights: plain inverse propensities let a few hundred random
    controls carry most of the weight, which cost more in variance than it gained in bias on the
    synthetic world (see docs/benchmarks.md).
    """
    p = np.clip(np.asarray(propensity, dtype=float), 1e-3, 1.0)
    if random_rate is not None:
        p = np.where(selection_reason.to_numpy() == "random", random_rate, p)
    weights = (1.0 / p) ** power
    weights = np.minimum(weights, np.quantile(weights, 0.99))
    return weights / weights.mean()
