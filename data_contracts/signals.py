"""Data-quality findings that are risk signals, not errors: kept, passed on as features and reasons.

A vague description, a description at odds with the declared commodity code, or an implausible
mass or value does not make a record unusable; customs wants exactly those records looked at.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.reference import chapter_of_term, is_vague_description, normalise_description

__all__ = ["SIGNALS", "description_mismatch", "risk_signals"]

SIGNALS: dict[str, str] = {
    "vague_description": "The goods description does not say what the goods are.",
    "description_mismatch": "The goods description names goods of another HS chapter.",
    "value_outlier": "The declared value per kg is implausible.",
    "mass_outlier": "The declared mass is implausible for the mode or the packaging.",
}

# Plausible bounds, wide on purpose: only the absurd is flagged here; the price baseline feature
# judges the merely unusual.
_MIN_EUR_PER_KG = 0.02
_MAX_EUR_PER_KG = 200_000.0
_MAX_AIR_KG = 50_000.0
_MAX_GROSS_TO_NET = 3.0


def description_mismatch(description: str, hs_code: str | None) -> bool:
    """True when the description names goods of other chapters and none of the declared one."""
    if not hs_code or not description:
        return False
    chapters = {chapter_of_term(word) for word in normalise_description(description).split()}
    chapters.discard(None)
    return bool(chapters) and hs_code[:2] not in chapters


def _by_unique(values: pd.Series, function) -> np.ndarray:
    # Descriptions repeat a lot in real feeds: evaluate each distinct value once.
    uniques = values.fillna("").astype(str)
    return uniques.map({v: function(v) for v in uniques.unique()}).to_numpy(dtype=bool)


def risk_signals(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One boolean ``warning_<signal>`` column per signal, plus ``warnings`` (the names set)."""
    out = pd.DataFrame(index=frame.index)
    if kind == "control-results":
        out["warnings"] = [[] for _ in range(len(frame))]
        return out
    description = frame["goods_description"]
    out["warning_vague_description"] = _by_unique(description, is_vague_description)
    pairs = description.fillna("").astype(str) + "\x1f" + frame["hs_code"].fillna("").astype(str)
    out["warning_description_mismatch"] = _by_unique(
        pairs, lambda p: description_mismatch(*p.split("\x1f", 1))
    )
    mode = frame["transport_mode"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    if kind == "declarations":
        mass = frame["net_mass_kg"].to_numpy(dtype=float, na_value=np.nan)
        value = frame["customs_value_eur"].to_numpy(dtype=float, na_value=np.nan)
        gross = frame["gross_mass_kg"].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = gross / mass
    else:
        mass = frame["gross_mass_kg"].to_numpy(dtype=float, na_value=np.nan)
        value = frame["declared_value_eur"].to_numpy(dtype=float, na_value=np.nan)
        ratio = np.ones(len(frame))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_kg = value / mass
    out["warning_value_outlier"] = (per_kg < _MIN_EUR_PER_KG) | (per_kg > _MAX_EUR_PER_KG)
    out["warning_mass_outlier"] = (np.isin(mode, (4, 5)) & (mass > _MAX_AIR_KG)) | (
        ratio > _MAX_GROSS_TO_NET
    )
    names = list(SIGNALS)
    flags = out[[f"warning_{n}" for n in names]].to_numpy(dtype=bool)
    out["warnings"] = [[names[j] for j in np.flatnonzero(row)] for row in flags]
    return out
