"""Reasons from LightGBM's native TreeSHAP (``pred_contrib``): no ``shap`` import in serving.

A reason is a feature, its value, its contribution to the area model's log-odds and a sentence a
targeting officer can read. Contributions are exactly ``shap.TreeExplainer``'s values (tested).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["AREA_NAMES", "format_value", "reason_sentence", "top_reasons"]


def format_value(value: Any, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown (no history)"
    if isinstance(value, float | np.floating):
        number = float(value)
        if number.is_integer() and abs(number) < 1e9:
            text = f"{int(number):,}"
        elif abs(number) >= 100:
            text = f"{number:,.0f}"
        else:
            text = f"{number:.3g}"
        return f"{text} {unit}".strip()
    return str(value)


AREA_NAMES = {
    "financial": "financial",
    "safety_security": "safety and security",
    "prohibitions_restrictions": "prohibitions and restrictions",
    "ipr": "IPR (counterfeit)",
    "product_safety": "product safety",
}


def reason_sentence(label: str, value_text: str, contribution: float, area: str) -> str:
    direction = "raises" if contribution > 0 else "lowers"
    area_text = AREA_NAMES.get(area, area.replace("_", " "))
    return f"{label[0].upper()}{label[1:]}: {value_text}. This {direction} the {area_text} risk."


def top_reasons(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    values: Sequence[Any],
    labels: Mapping[str, str],
    area: str,
    k: int = 5,
) -> list[dict[str, Any]]:
    """The ``k`` features with the largest contributions for one row (bias column excluded).

    Reasons that raise the risk come first; if fewer than ``k`` do, the strongest lowering ones
    follow, so an officer also sees what spoke against a control.
    """
    row = np.asarray(contributions[: len(feature_names)], dtype=float)
    order = np.argsort(-np.abs(row))
    raising = [i for i in order if row[i] > 0]
    lowering = [i for i in order if row[i] < 0]
    chosen = (raising + lowering)[:k]
    reasons = []
    for i in chosen:
        name = feature_names[i]
        value = values[i]
        value_text = format_value(value)
        reasons.append(
            {
                "feature": name,
                "value": None if isinstance(value, float) and math.isnan(value) else value,
                "contribution": round(float(row[i]), 6),
                "area": area,
                "sentence": reason_sentence(
                    labels.get(name, name), value_text, float(row[i]), area
                ),
            }
        )
    return reasons
