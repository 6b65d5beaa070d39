"""Data-quality findings that are risk signals, not errors: kept, passed on as features and reasons.

A vague description, a description at odds with the declared commodity code, or an implausible
mass or value does not make a record unusable; customs wants exactly those records looked at.
Works on a DataFrame (batch validation) or a dict of columns (the scoring service).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

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


@lru_cache(maxsize=200_000)
def _chapters_named(description: str) -> frozenset[str]:
    words = normalise_description(description).split()
    return frozenset(c for c in (chapter_of_term(w) for w in words) if c is not None)


def description_mismatch(description: str | None, hs_code: str | None) -> bool:
    """True when the description names goods of other chapters and none of the declared one."""
    if not hs_code or not description:
        return False
    chapters = _chapters_named(description)
    return bool(chapters) and hs_code[:2] not in chapters


_vague = lru_cache(maxsize=200_000)(is_vague_description)


def _values(records: Mapping[str, Any], name: str, n: int) -> np.ndarray:
    if name not in records:
        return np.full(n, None, dtype=object)
    values = records[name]
    return values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)


def _floats(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return values.astype(float)
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is not None and v is not pd.NA:
            with contextlib.suppress(TypeError, ValueError):
                out[i] = float(v)
    return out


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return str(value)


def risk_signals(records: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """``warning_<signal>`` boolean arrays plus ``warnings`` (the list of signal names per row)."""
    n = len(records) if hasattr(records, "shape") else len(next(iter(records.values()), []))
    if kind == "control-results":
        return {"warnings": [[] for _ in range(n)]}
    descriptions = [_text(v) for v in _values(records, "goods_description", n)]
    hs_codes = [_text(v) for v in _values(records, "hs_code", n)]
    out: dict[str, Any] = {
        "warning_vague_description": np.array(
            [d is None or _vague(d) for d in descriptions], dtype=bool
        ),
        "warning_description_mismatch": np.array(
            [description_mismatch(d, h) for d, h in zip(descriptions, hs_codes, strict=True)],
            dtype=bool,
        ),
    }
    mode = _floats(_values(records, "transport_mode", n))
    if kind == "declarations":
        mass = _floats(_values(records, "net_mass_kg", n))
        value = _floats(_values(records, "customs_value_eur", n))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = _floats(_values(records, "gross_mass_kg", n)) / mass
    else:
        mass = _floats(_values(records, "gross_mass_kg", n))
        value = _floats(_values(records, "declared_value_eur", n))
        ratio = np.ones(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_kg = value / mass
    out["warning_value_outlier"] = (per_kg < _MIN_EUR_PER_KG) | (per_kg > _MAX_EUR_PER_KG)
    out["warning_mass_outlier"] = (np.isin(mode, (4, 5)) & (mass > _MAX_AIR_KG)) | (
        ratio > _MAX_GROSS_TO_NET
    )
    names = list(SIGNALS)
    flags = np.column_stack([out[f"warning_{name}"] for name in names])
    # Each row's combination of signals as a bit pattern: a million rows share a few patterns.
    patterns = flags.astype(np.int64) @ (1 << np.arange(len(names), dtype=np.int64))
    lists = {int(p): [n for j, n in enumerate(names) if p >> j & 1] for p in np.unique(patterns)}
    out["warnings"] = [list(lists[p]) for p in patterns.tolist()]
    return out
