"""Helpers shared by the contract tests: typed cells as a JSON body or a CSV file carries them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """A typed cell as a JSON body or a CSV reader would give it (timestamps as ISO text)."""
    if isinstance(value, np.ndarray | list | tuple):
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def scaled_below(value: Any, fraction: float) -> Any:
    """A value below ``value`` for an ordering rule: a share of a number, or an earlier time.

    ``fraction`` in (0, 1]: 1 gives the value itself (the boundary of an or-equal rule); times
    move back by (1 - fraction) × 30 days, at least one second.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value * fraction
    moment = pd.Timestamp(value)
    if fraction >= 1:
        return plain(moment)
    return plain(moment - pd.Timedelta(seconds=max(1.0, (1 - fraction) * 30 * 86_400)))
