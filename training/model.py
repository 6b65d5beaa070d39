"""The trained area model as training, evaluation, promotion and the registry all see it.

Its own module so that ``training.train`` (which fits and registers models) and
``training.registry`` (which loads them back) both depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.model_input import calibrate, encode, expected_revenue

__all__ = ["REVENUE_TASK", "AreaModel", "predict"]

REVENUE_TASK = "revenue"


@dataclass
class AreaModel:
    """A fitted model and everything serving needs to use it (``spec`` travels as JSON)."""

    booster: lgb.Booster
    spec: dict[str, Any]


def predict(model: AreaModel, frame: pd.DataFrame) -> np.ndarray:
    """Calibrated probability (classifiers) or expected revenue (revenue model)."""
    matrix = encode(frame, model.spec["features"], model.spec["vocabularies"])
    margin = np.asarray(model.booster.predict(matrix, raw_score=True))
    if model.spec["task"] == REVENUE_TASK:
        return expected_revenue(margin, matrix, model.spec)
    return calibrate(margin, model.spec["calibration"])
