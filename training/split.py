"""Time-ordered splits with a label-delay gap (no look-ahead, no leakage through late labels).

A model trained at time T can only know outcomes recorded before T. So each window's rows must
also have their *labels* known before the next window starts, and windows are separated by the
label delay, the way `get_train_test_set(delta_delay=…)` works in the fraud-detection handbook.

A dataset that comes with a published split (the mapping's ``split``, kept in the dataset
manifest) is evaluated on the publisher's windows instead, so its figures are comparable with
what others report on the same data: :func:`choose_split` decides, for training and evaluation
alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.dataset import PublishedSplit, read_manifest
from training.config import TrainingSettings

__all__ = ["TimeSplit", "choose_split", "published_split", "time_split"]


@dataclass(frozen=True)
class TimeSplit:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    train_window: tuple[pd.Timestamp, pd.Timestamp]
    validation_window: tuple[pd.Timestamp, pd.Timestamp]
    test_window: tuple[pd.Timestamp, pd.Timestamp]
    source: str = "last_days"  # or "published": the dataset's own split

    def describe(self) -> str:
        """One line: where the windows come from and what they are."""
        windows = ", ".join(
            f"{name} {start.date()} .. {(end - pd.Timedelta(days=1)).date()}"
            for name, (start, end) in (
                ("train", self.train_window),
                ("validation", self.validation_window),
                ("test", self.test_window),
            )
        )
        origin = "the dataset's published split" if self.source == "published" else "last days"
        return f"{origin}: {windows} (end dates inclusive)"


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


def _day_after(day: object) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize("UTC") + pd.Timedelta(days=1)


def published_split(event_time: pd.Series, split: PublishedSplit) -> TimeSplit:
    """The publisher's windows: train ≤ ``train_until`` < validation ≤ ``validation_until`` <
    test ≤ ``test_until`` (whole UTC days).

    Raises:
        ValueError: a window holds no row (the split does not fit the data).
    """
    event = pd.DatetimeIndex(pd.to_datetime(event_time, utc=True))
    train_end = _day_after(split.train_until)
    valid_end = _day_after(split.validation_until)
    test_end = _day_after(split.test_until)
    train = np.asarray(event < train_end)
    validation = np.asarray((event >= train_end) & (event < valid_end))
    test = np.asarray((event >= valid_end) & (event < test_end))
    for name, rows in (("train", train), ("validation", validation), ("test", test)):
        if not rows.any():
            raise ValueError(
                f"published split: no labelled item in the {name} window "
                f"(data from {event.min().date()} to {event.max().date()})"
            )
    return TimeSplit(
        train=train,
        validation=validation,
        test=test,
        train_window=(event.min().normalize(), train_end),
        validation_window=(train_end, valid_end),
        test_window=(valid_end, test_end),
        source="published",
    )


def choose_split(
    settings: TrainingSettings, event_time: pd.Series, label_time: pd.Series
) -> TimeSplit:
    """The dataset's published split when its manifest has one, else the last-days default."""
    manifest = read_manifest(settings.workspace)
    if manifest.split is not None:
        return published_split(event_time, manifest.split)
    end = pd.to_datetime(event_time, utc=True).max().normalize() + pd.Timedelta(days=1)
    return time_split(
        event_time,
        label_time,
        end=end,
        test_days=settings.test_days,
        validation_days=settings.validation_days,
        gap_days=settings.label_delay_days,
        burn_in_days=settings.burn_in_days,
    )
