"""Global explanations and diagnostic plots logged with every model.

SHAP values here come from the ``shap`` library (``TreeExplainer``), which stays out of the
serving image; the service computes the same values with LightGBM's ``pred_contrib`` (a test
proves they are equal). Plots are written as PNG files for MLflow and the model report.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["calibration_plot", "pr_curve_plot", "shap_summary", "shap_values"]

logger = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def shap_values(booster: Any, matrix: np.ndarray) -> np.ndarray:
    """TreeSHAP values (log-odds) for ``matrix`` with ``shap.TreeExplainer``."""
    import shap

    explainer = shap.TreeExplainer(booster)
    with warnings.catch_warnings():
        # shap 0.51 warns that LightGBM binary output "changed to a list"; it returns one array.
        warnings.simplefilter("ignore", UserWarning)
        values = explainer.shap_values(matrix)
    # shap 0.51 returns one array for LightGBM binary models (the log-odds of the positive class).
    return np.asarray(values[1] if isinstance(values, list) else values)


def shap_summary(
    booster: Any, matrix: np.ndarray, feature_names: list[str], path: Path, max_rows: int = 2000
) -> pd.DataFrame:
    """Mean |SHAP| per feature, and the beeswarm summary plot at ``path``."""
    import shap

    rows = matrix[:max_rows]
    values = shap_values(booster, rows)
    plt = _pyplot()
    plt.figure()
    shap.summary_plot(values, rows, feature_names=feature_names, show=False, max_display=20)
    plt.tight_layout()
    plt.savefig(path, dpi=110)
    plt.close("all")
    importance = pd.DataFrame(
        {"feature": feature_names, "mean_abs_shap": np.abs(values).mean(axis=0)}
    ).sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    return importance


def pr_curve_plot(y: np.ndarray, score: np.ndarray, path: Path, title: str) -> None:
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 4))
    if 0 < y.sum() < len(y):
        precision, recall, _ = precision_recall_curve(y, score)
        axis.plot(recall, precision)
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def calibration_plot(curve: dict[str, list[float]], path: Path, title: str) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5, 4))
    top = max([*curve["predicted"], *curve["observed"], 0.01])
    axis.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    axis.plot(curve["predicted"], curve["observed"], marker="o", label="model")
    axis.set_xlabel("predicted probability")
    axis.set_ylabel("observed rate")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
