"""Time-ordered train/validation/test windows with a label-delay gap and a burn-in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.split import TimeSplit, time_split

START = pd.Timestamp("2024-01-01", tz="UTC")
DAYS = 200
END = START + pd.Timedelta(days=DAYS)
CONFIG = {"test_days": 28, "validation_days": 21, "gap_days": 7, "burn_in_days": 14}


def _daily(label_delay_days: float = 3.0) -> tuple[pd.Series, pd.Series]:
    """One event per day at midnight; every label arrives a fixed delay later."""
    event = pd.Series(pd.date_range(START, periods=DAYS, freq="D"))
    return event, event + pd.Timedelta(days=label_delay_days)


def _split(event: pd.Series, label: pd.Series, **overrides: int) -> TimeSplit:
    return time_split(event, label, end=END, **{**CONFIG, **overrides})


def test_windows_go_back_from_end_separated_by_the_gap() -> None:
    split = _split(*_daily())
    day = pd.Timedelta(days=1)
    assert split.test_window == (END - 28 * day, END)
    assert split.validation_window == (END - 35 * day - 21 * day, END - 35 * day)
    assert split.train_window == (START + 14 * day, END - 56 * day - 7 * day)
    # Time order, with exactly the label delay between consecutive windows.
    assert split.validation_window[0] - split.train_window[1] == 7 * day
    assert split.test_window[0] - split.validation_window[1] == 7 * day


def test_window_sizes_are_as_configured_when_labels_arrive_within_the_gap() -> None:
    split = _split(*_daily(label_delay_days=3))
    assert int(split.test.sum()) == 28
    assert int(split.validation.sum()) == 21
    # 200 days - 14 burn-in - 28 test - 21 validation - 2 gaps of 7.
    assert int(split.train.sum()) == 200 - 14 - 28 - 21 - 14


def test_windows_are_disjoint_and_in_time_order() -> None:
    event, label = _daily()
    split = _split(event, label)
    assert not (split.train & split.validation).any()
    assert not (split.validation & split.test).any()
    assert not (split.train & split.test).any()
    assert event[split.train].max() < event[split.validation].min()
    assert event[split.validation].max() < event[split.test].min()


def test_every_selected_event_lies_inside_its_window() -> None:
    event, label = _daily()
    split = _split(event, label)
    for mask, (lo, hi) in (
        (split.train, split.train_window),
        (split.validation, split.validation_window),
        (split.test, split.test_window),
    ):
        selected = event[mask]
        assert ((selected >= lo) & (selected < hi)).all()


def test_gap_days_and_burn_in_rows_belong_to_no_window() -> None:
    event, label = _daily()
    split = _split(event, label)
    unused = event[~(split.train | split.validation | split.test)]
    in_burn_in = unused < split.train_window[0]
    in_gap = ((unused >= split.train_window[1]) & (unused < split.validation_window[0])) | (
        (unused >= split.validation_window[1]) & (unused < split.test_window[0])
    )
    assert (in_burn_in | in_gap).all()
    assert int(in_burn_in.sum()) == 14
    assert int(in_gap.sum()) == 14


def test_rows_whose_label_arrives_after_the_next_window_starts_are_dropped() -> None:
    event, label = _daily(label_delay_days=3)
    split = _split(event, label)
    train_row = int(np.flatnonzero(split.train)[-1])
    valid_row = int(np.flatnonzero(split.validation)[-1])
    test_row = int(np.flatnonzero(split.test)[-1])

    late = label.copy()
    late[train_row] = split.validation_window[0]  # exactly at the boundary: not known yet
    late[valid_row] = split.test_window[0] + pd.Timedelta(hours=1)
    late[test_row] = END + pd.Timedelta(days=30)
    leaky = _split(event, late)

    assert not leaky.train[train_row]
    assert not leaky.validation[valid_row]
    # The test window is evaluated after the fact: a late label does not remove the row.
    assert leaky.test[test_row]
    assert int(leaky.train.sum()) == int(split.train.sum()) - 1
    assert int(leaky.validation.sum()) == int(split.validation.sum()) - 1


def test_a_label_delay_longer_than_the_gap_shrinks_the_earlier_windows() -> None:
    # Labels 10 days late with a 7-day gap: the last 3 days of train and validation are unknown.
    split = _split(*_daily(label_delay_days=10))
    assert int(split.validation.sum()) == 21 - 3
    assert int(split.train.sum()) == 200 - 14 - 28 - 21 - 14 - 3
    assert int(split.test.sum()) == 28


def test_masks_follow_rows_not_their_sorted_position() -> None:
    event, label = _daily()
    perm = np.random.default_rng(5).permutation(DAYS)
    shuffled = _split(
        event.iloc[perm].reset_index(drop=True), label.iloc[perm].reset_index(drop=True)
    )
    ordered = _split(event, label)
    np.testing.assert_array_equal(shuffled.train, ordered.train[perm])
    np.testing.assert_array_equal(shuffled.validation, ordered.validation[perm])
    np.testing.assert_array_equal(shuffled.test, ordered.test[perm])


def test_events_at_or_after_end_are_outside_the_test_window() -> None:
    event, label = _daily()
    event = pd.concat([event, pd.Series([END, END + pd.Timedelta(days=2)])], ignore_index=True)
    label = pd.concat([label, pd.Series([END, END])], ignore_index=True)
    split = _split(event, label)
    assert not split.test[-2:].any()
    assert int(split.test.sum()) == 28


def test_naive_timestamps_are_read_as_utc() -> None:
    event, label = _daily()
    naive = _split(event.dt.tz_localize(None), label.dt.tz_localize(None))
    aware = _split(event, label)
    np.testing.assert_array_equal(naive.train, aware.train)
    assert naive.train_window == aware.train_window


def test_zero_gap_makes_windows_adjacent() -> None:
    split = _split(*_daily(label_delay_days=0), gap_days=0)
    assert split.train_window[1] == split.validation_window[0]
    assert split.validation_window[1] == split.test_window[0]
    assert int((split.train | split.validation | split.test).sum()) == DAYS - 14


def test_too_little_history_raises() -> None:
    with pytest.raises(ValueError, match="not enough history"):
        _split(*_daily(), burn_in_days=150)


def test_a_published_split_uses_the_publishers_windows_end_dates_inclusive() -> None:
    from datetime import date

    from data_contracts.dataset import PublishedSplit
    from training.split import published_split

    event, _ = _daily()
    published = PublishedSplit(
        train_until=date(2024, 3, 31),
        validation_until=date(2024, 4, 30),
        test_until=date(2024, 5, 31),
    )
    split = published_split(event, published)
    day = pd.Timedelta(days=1)
    assert split.source == "published"
    assert split.train_window == (START, pd.Timestamp("2024-04-01", tz="UTC"))
    assert split.test_window == (
        pd.Timestamp("2024-05-01", tz="UTC"),
        pd.Timestamp("2024-06-01", tz="UTC"),
    )
    assert event[split.train].max() == pd.Timestamp("2024-03-31", tz="UTC")
    assert event[split.validation].min() == pd.Timestamp("2024-04-01", tz="UTC")
    assert event[split.test].max() == pd.Timestamp("2024-05-31", tz="UTC")
    assert not (split.train & split.validation).any() and not (split.validation & split.test).any()
    assert int(split.test.sum()) == 31 and split.test_window[1] - split.test_window[0] == 31 * day
    assert (
        "published split" in split.describe()
        and "test 2024-05-01 .. 2024-05-31" in split.describe()
    )
    late = PublishedSplit(
        train_until=date(2025, 1, 1), validation_until=date(2025, 2, 1), test_until=date(2025, 3, 1)
    )
    with pytest.raises(ValueError, match="no labelled item in the validation window"):
        published_split(event, late)


def test_choose_split_follows_the_workspace_manifest(tmp_path) -> None:
    from datetime import date

    from data_contracts.dataset import DatasetManifest, PublishedSplit, write_manifest
    from data_contracts.workspace import Workspace
    from training.config import TrainingSettings
    from training.split import choose_split

    settings = TrainingSettings(home=tmp_path, test_days=28, validation_days=21, burn_in_days=14)
    event, label = _daily()
    assert choose_split(settings, event, label).source == "last_days"
    published = PublishedSplit(
        train_until=date(2024, 3, 31),
        validation_until=date(2024, 4, 30),
        test_until=date(2024, 5, 31),
    )
    write_manifest(Workspace.at(tmp_path), DatasetManifest(dataset="d", split=published))
    assert choose_split(settings, event, label).source == "published"
