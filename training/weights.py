"""Correcting for selection bias: labels exist only where customs chose to control.

Controls were chosen by rules, by officers, by the service and at random, so controlled items
over-represent what the selectors looked for. Each labelled row is weighted by the inverse of
its probability of being controlled, taken from what the deployment knows:

- **recorded** where the service selected the item: its audit log holds the selection
  probability of every item it scored (1 above a threshold, the random rate below), and
  ``/feedback`` (or the simulator) carries it into the control result
  (``selection_probability``);
- **estimated** elsewhere (controls from before the service, national rules, files): P(controlled
  | declared data), by LightGBM on every item of the *training windows*, controlled or not
  (rules are functions of declared data, so the propensity is learnable). The rows the model is
  fitted on get *cross-fitted* values (each from a model that did not see its fold), so a row's
  own label never sets its weight; rows outside the windows (the test window) get the full
  model's prediction and take no part in the fit.

Random rows stay the unbiased evaluation set. Weights are tempered, clipped and normalised so a
few rows cannot dominate. What was done is summarised in :attr:`SelectionWeights.info`, which
travels with each model (its spec's ``selection_bias``) and its MLflow parameters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.model_input import FEATURES_BY_SUBJECT, encode, fit_vocabularies, request_features

__all__ = [
    "SelectionWeights",
    "estimate_propensity",
    "inverse_propensity_weights",
    "selection_weights",
]

logger = logging.getLogger(__name__)

_MAX_UNCONTROLLED = 300_000


def _propensity_model(
    frame: dict[str, np.ndarray], controlled: np.ndarray, subject: str, seed: int
) -> tuple[lgb.Booster, dict[str, list[str]]]:
    """LightGBM for P(controlled | request features) on the rows of ``frame``."""
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
    fit_frame = {name: values[fit_rows] for name, values in frame.items()}
    vocabularies = fit_vocabularies(fit_frame, features)  # type: ignore[arg-type]
    # Selection rules are simple functions of declared data: a small, quick model suffices
    # (it is fitted twice per training, once per fold).
    booster = lgb.train(
        {
            "objective": "binary",
            "learning_rate": 0.15,
            "num_leaves": 15,
            "max_bin": 63,
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
        num_boost_round=40,
    )
    return booster, vocabularies


def _predict(
    booster: lgb.Booster, vocabularies: dict[str, list[str]], frame: dict[str, np.ndarray]
) -> np.ndarray:
    names = booster.feature_name()
    return np.asarray(booster.predict(encode(frame, names, vocabularies)))


def estimate_propensity(
    records: pd.DataFrame,
    controlled: np.ndarray,
    subject: str,
    seed: int = 7,
    fit_rows: np.ndarray | None = None,
    predict_rows: np.ndarray | None = None,
    folds: int = 2,
) -> np.ndarray:
    """P(controlled | declared data), fitted on the ``fit_rows`` mask only (None: every row).

    Predicted for ``predict_rows`` (positions; None: every row; NaN elsewhere). A predicted row
    inside ``fit_rows`` gets a cross-fitted value (``folds`` random folds: from the model that
    did not see its fold), one outside the prediction of a model fitted on all of ``fit_rows``.
    """
    n = len(records)
    fit_mask = np.ones(n, dtype=bool) if fit_rows is None else np.asarray(fit_rows, dtype=bool)
    wanted = np.arange(n) if predict_rows is None else np.asarray(predict_rows, dtype=np.int64)
    inside = np.flatnonzero(fit_mask)
    if len(inside) == 0 or not controlled[inside].any():
        raise ValueError(f"{subject}: no controlled item in the training windows to fit on")
    propensity = np.full(n, np.nan)
    fold_of = np.full(n, -1)
    fold_of[inside] = np.random.default_rng(seed).integers(0, folds, len(inside))
    # Request features once for every row involved: the models fit and predict on slices.
    involved = np.union1d(inside, wanted)
    position = np.full(n, -1)
    position[involved] = np.arange(len(involved))
    frame = request_features(records.iloc[involved], subject)  # type: ignore[arg-type]

    def rows_of(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[position[rows]] for name, values in frame.items()}

    def fit_and_predict(training: np.ndarray, rows: np.ndarray, model_seed: int) -> None:
        booster, vocabularies = _propensity_model(
            rows_of(training), controlled[training], subject, model_seed
        )
        propensity[rows] = _predict(booster, vocabularies, rows_of(rows))

    for k in range(folds if folds > 1 else 0):
        training = inside[fold_of[inside] != k]
        held_out = wanted[fold_of[wanted] == k]
        if len(held_out) and controlled[training].any():
            fit_and_predict(training, held_out, seed + k)
    rest = wanted[np.isnan(propensity[wanted])]
    if len(rest):
        fit_and_predict(inside, rest, seed)
    return propensity


@dataclass(frozen=True)
class SelectionWeights:
    """Training weights of the labelled rows, their propensities and how they were obtained."""

    weights: np.ndarray
    propensity: np.ndarray
    recorded: np.ndarray  # the propensity was recorded by the selecting system
    info: dict[str, Any]


def selection_weights(
    records: pd.DataFrame,
    labelled_rows: np.ndarray,
    recorded_probability: np.ndarray,
    subject: str,
    *,
    fit_rows: np.ndarray,
    power: float,
    seed: int = 7,
    fit_window: tuple[Any, Any] | None = None,
) -> SelectionWeights:
    """Weights for the labelled rows (positions ``labelled_rows`` of ``records``).

    Rows outside ``fit_rows`` without a recorded probability (the test window: no training
    use) keep weight 1 and are not estimated.

    Args:
        records: every record of the subject type (controlled or not).
        labelled_rows: positions of the labelled rows in ``records``.
        recorded_probability: per labelled row, the recorded selection probability (NaN: none).
        subject: declaration or ens.
        fit_rows: mask over ``records``: the training windows, where the propensity model may
            be fitted.
        power: the tempering exponent of the weights (0 switches weighting off).
        seed: random seed of the folds and the models.
        fit_window: the windows' bounds, for the summary only.
    """
    recorded_p = np.asarray(recorded_probability, dtype=float)
    recorded = np.isfinite(recorded_p) & (recorded_p > 0)
    propensity = np.where(recorded, recorded_p, np.nan)
    estimated = ~recorded
    if power > 0 and estimated.any():
        # The estimate stands in for selectors that recorded nothing (pre-service controls,
        # national rules): their controls are the positives, the service's are not.
        controlled = np.zeros(len(records), dtype=bool)
        controlled[labelled_rows[estimated]] = True
        rows = labelled_rows[estimated & np.asarray(fit_rows, dtype=bool)[labelled_rows]]
        estimate = estimate_propensity(
            records, controlled, subject, seed, fit_rows=fit_rows, predict_rows=rows
        )
        found = np.isfinite(estimate[labelled_rows])
        propensity[estimated & found] = estimate[labelled_rows][estimated & found]
    # Normalised over the rows training uses (those in the windows); the others weigh 1.
    in_windows = np.asarray(fit_rows, dtype=bool)[labelled_rows]
    weights = np.ones(len(propensity))
    if in_windows.any():
        weights[in_windows] = inverse_propensity_weights(
            np.where(np.isfinite(propensity[in_windows]), propensity[in_windows], 1.0),
            pd.Series([""] * int(in_windows.sum())),
            power=power,
        )
    propensity = np.where(np.isfinite(propensity), propensity, np.nan)
    used = weights[in_windows]
    effective = float(used.sum() ** 2 / np.square(used).sum()) if len(used) else 0.0
    info = {
        "method": "ipw" if power > 0 else "none",
        "power": power,
        "recorded_share": float(recorded[in_windows].mean()) if in_windows.any() else 0.0,
        "recorded_rows": int(recorded[in_windows].sum()),
        "estimated_rows": int((estimated & in_windows).sum()),
        "estimator": "lightgbm on request features, cross-fitted (2 folds)",
        "fitted_on": None if fit_window is None else [str(t) for t in fit_window],
        "clipped_at_quantile": 0.99,
        "effective_sample_size": round(effective, 1),
    }
    return SelectionWeights(weights, propensity, recorded, info)


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
