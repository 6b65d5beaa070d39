"""Columns as numpy arrays: the representation the shared feature code works on.

Training passes DataFrames of a million rows, serving passes a handful of records; pandas costs
tens of microseconds per operation whatever the size, which dominates a one-item request. The
shared code therefore reads columns out of any mapping (a DataFrame or a dict of arrays) into
numpy arrays and works on those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Columns", "column", "floats", "is_missing", "length", "texts"]

Columns = Mapping[str, Any]
_NA = pd.NA


def length(records: Columns) -> int:
    if hasattr(records, "shape"):
        return int(records.shape[0])  # a DataFrame
    for values in records.values():
        return len(values)
    return 0


def column(records: Columns, name: str) -> np.ndarray:
    """The column as a numpy array; an absent column reads as all-missing."""
    if name not in records:
        return np.full(length(records), None, dtype=object)
    values = records[name]
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    return np.asarray(values)


def is_missing(value: Any) -> bool:
    return value is None or value is np.nan or (isinstance(value, float) and value != value)


def floats(records: Columns, name: str) -> np.ndarray:
    """Float64 column; None, pandas NA and unparsable values become NaN."""
    values = column(records, name)
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            out[i] = np.nan if v is None or v is _NA else float(v)
        except (TypeError, ValueError):
            out[i] = np.nan
    return out


def _clean_texts(listed: list[Any], kinds: set[type]) -> bool:
    """Only non-blank stripped strings and None (``kinds``: the values' types)? C-level passes:
    a request's columns are read this way a few dozen times, and a Python test per value cost
    more than the rest."""
    if not kinds <= {str, type(None)}:
        return False
    present = [v for v in listed if v is not None] if type(None) in kinds else listed
    return "" not in present and list(map(str.strip, present)) == present


def texts(records: Columns, name: str) -> np.ndarray:
    """Object column of stripped strings, None where missing or blank."""
    values = column(records, name)
    out = np.empty(len(values), dtype=object)
    if values.dtype == object:
        listed = values.tolist()
        kinds = set(map(type, listed))
        if _clean_texts(listed, kinds):
            out[:] = values  # already clean text or None (the usual case in a request)
            return out
        if kinds <= {int, type(None)}:  # codes sent as numbers (mode 4)
            out[:] = [None if v is None else str(v) for v in listed]
            return out
    for i, v in enumerate(values):
        if v is None or v is _NA or (isinstance(v, float) and v != v):
            out[i] = None
        elif isinstance(v, float | np.floating) and float(v).is_integer():
            out[i] = str(int(v))  # codes read back as floats (1.0) are the code "1"
        else:
            text = str(v).strip()
            out[i] = text or None
    return out
