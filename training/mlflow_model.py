"""The MLflow pyfunc of an area model ("models from code": MLflow stores this file).

It is what `mlflow models serve` runs: the client supplies the model-frame features, the model
encodes them with the vocabularies it was trained with and returns calibrated probabilities (or,
for the revenue model, expected revenue). crisk's own service does not use it: it reads the same
artifacts directly and adds online features, channels and reasons.
"""

from __future__ import annotations

import json
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from features.model_input import calibrate, encode, expected_revenue


class CriskAreaModel(PythonModel):
    def load_context(self, context: Any) -> None:
        self.booster = lgb.Booster(model_file=context.artifacts["booster"])
        with open(context.artifacts["spec"]) as handle:
            self.spec = json.load(handle)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        matrix = encode(model_input, self.spec["features"], self.spec["vocabularies"])
        margin = np.asarray(self.booster.predict(matrix, raw_score=True))
        if self.spec["task"] == "revenue":
            return pd.DataFrame(
                {"expected_revenue_eur": expected_revenue(margin, matrix, self.spec)}
            )
        return pd.DataFrame({"probability": calibrate(margin, self.spec["calibration"])})


set_model(CriskAreaModel())
