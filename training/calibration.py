"""Probability calibration, chosen on the validation window.

Scores must be probabilities: capacity thresholds, expected revenue and the overall
probability of any irregularity all multiply or compare them. Isotonic regression is flexible
but needs data; Platt scaling is stiff but safe with few positives. Both are fitted on one half
of the validation window and scored (Brier) on the other; the better one is refitted on all of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss

from features.model_input import calibrate

__all__ = ["fit_calibration"]


def _fit(
    method: str, margin: np.ndarray, y: np.ndarray, weight: np.ndarray | None
) -> dict[str, Any]:
    if method == "platt":
        # Mild regularisation: irrelevant at thousands of rows, but a tiny or separable
        # validation window must not drive the slope to infinity (scores of exactly 0 or 1).
        model = LogisticRegression(C=1.0)
        model.fit(margin.reshape(-1, 1), y, sample_weight=weight)
        return {"method": "platt", "a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}
    probability = 1.0 / (1.0 + np.exp(-margin))
    # A score range without a single hit in validation is "rarer than one in 2n", not
    # impossible: a probability of exactly 0 (or 1) would claim a certainty the data cannot give.
    floor = 0.5 / len(y)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=floor, y_max=1.0 - floor)
    iso.fit(probability, y, sample_weight=weight)
    return {
        "method": "isotonic",
        "x": iso.X_thresholds_.tolist(),
        "y": iso.y_thresholds_.tolist(),
    }


def fit_calibration(
    margin: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, seed: int = 7
) -> dict[str, Any]:
    """Pick and fit the calibration map; the result records the choice and its Brier scores."""
    y = np.asarray(y, dtype=int)
    if y.sum() < 2 or y.sum() > len(y) - 2:
        return {"method": "none", "reason": "validation window has too few positives or negatives"}
    rng = np.random.default_rng(seed)
    half = rng.random(len(y)) < 0.5
    # Each half needs both classes: nothing can be fitted or judged on one class alone. Then
    # the choice cannot be made on data, and the stiff map (Platt) is fitted on all of it.
    if any(len(np.unique(y[part])) < 2 for part in (half, ~half)):
        fitted = _fit("platt", margin, y, weight)
        fitted["reason"] = "a validation half lacks positives or negatives: Platt, not compared"
        return fitted
    scores: dict[str, float] = {}
    for method in ("platt", "isotonic"):
        w_fit = None if weight is None else weight[half]
        w_eval = None if weight is None else weight[~half]
        fitted = _fit(method, margin[half], y[half], w_fit)
        scores[method] = float(
            brier_score_loss(y[~half], calibrate(margin[~half], fitted), sample_weight=w_eval)
        )
    # Isotonic must earn its flexibility: it is chosen only when clearly better.
    best = "isotonic" if scores["isotonic"] < scores["platt"] * 0.98 else "platt"
    fitted = _fit(best, margin, y, weight)
    fitted["validation_brier"] = scores
    return fitted
