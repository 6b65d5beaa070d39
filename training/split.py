"""Time-ordered splits with a label-delay gap (no look-ahead, no leakage through late labels).

A model trained at time T can only know outcomes recorded before T. So each window's rows must
also have their *labels* known before the next window starts, and windows are separated by the
label delay, the way `get_train_test_set(delta_delay=…)` works in the fraud-detection handbook.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["TimeSplit", "time_split"]


@dataclass(frozen=True)
class TimeSplit:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    train_window: tuple[pd.Timestamp, pd.Timestamp]
    validation_window: tuple[pd.Timestamp, pd.Timestamp]
    test_window: tuple[pd.Timestamp, pd.Timestamp]


def time_split(
    event_time: pd.Series,
    label_time: pd.Series,
    *,
    end: pd.Timestamp,
    test_days: int,
    validation_days: int,
    gap_days: int,
    burn_in_days: int,
) -> TimeSplit:
    """Boolean masks over rows for train / validation / test.

    Windows, going back from ``end``: test = the last ``test_days``; validation ends
    ``gap_days`` before the test starts; training ends ``gap_days`` before validation starts and
    begins ``burn_in_days`` after the first event (features need history).
    """
    event = pd.DatetimeIndex(pd.to_datetime(event_time, utc=True))
    labelled = pd.DatetimeIndex(pd.to_datetime(label_time, utc=True))
    gap = pd.Timedelta(days=gap_days)
    test_start = end - pd.Timedelta(days=test_days)
    valid_end = test_start - gap
    valid_start = valid_end - pd.Timedelta(days=validation_days)
    train_end = valid_start - gap
    train_start = event.min() + pd.Timedelta(days=burn_in_days)
    if train_start >= train_end:
        raise ValueError(
            f"not enough history: training would run from {train_start.date()} to "
            f"{train_end.date()}; reduce test/validation/burn-in days or add data"
        )
    train = (event >= train_start) & (event < train_end) & (labelled < valid_start)
    validation = (event >= valid_start) & (event < valid_end) & (labelled < test_start)
    test = (event >= test_start) & (event < end)
    return TimeSplit(
        train=np.asarray(train),
        validation=np.asarray(validation),
        test=np.asarray(test),
        train_window=(train_start, train_end),
        validation_window=(valid_start, valid_end),
        test_window=(test_start, end),
    )
