"""Daily snapshots of windowed sums per entity, computed with DuckDB.

A snapshot of day ``D`` describes an entity as of the start of ``D``: activity sums count the
entity's events in the window strictly before ``D``; outcome sums are running sums of the
outcome deltas up to ``D`` (see ``features.tables.records``: the deltas already carry when each
outcome became known, when it was superseded and when it left the 365-day window).

Snapshots exist for every day an entity is active and for the cut-off; an entity's first active
day has no snapshot (no history yet: the cold start, the same offline and online).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.tables.engines import SqlEngine
from features.transforms import HIT_RATE_PRIOR, HIT_RATE_PRIOR_WEIGHT

__all__ = [
    "Activity",
    "add_rates",
    "cutoff_of",
    "day_of",
    "outcome_columns",
    "price_baselines",
    "snapshot_sql",
    "to_table",
]

# Output name -> (per-event expression, window in days before the snapshot day).
Activity = dict[str, tuple[str, int]]


def cutoff_of(timestamps: pd.Series) -> pd.Timestamp:
    """The start of the day after the last event: the instant the online snapshot describes."""
    last = pd.Timestamp(timestamps.max())
    if last.tzinfo is None:
        last = last.tz_localize("UTC")
    return last.tz_convert("UTC").normalize() + pd.Timedelta(days=1)


def day_of(moment: pd.Timestamp) -> int:
    """Days since 1970-01-01 of a UTC timestamp."""
    return int(moment.value // (86_400 * 10**9))


def outcome_columns(areas: tuple[str, ...], *, revenue: bool = False) -> dict[str, str]:
    """Outcome output name -> delta column: controls, irregularities (all and per area)."""
    columns = {"controls_365d": "d_controls", "irregularities_365d": "d_irr"}
    for area in areas:
        columns[f"irregularities_{area}_365d"] = f"d_irr_{area}"
    if revenue:
        columns["revenue_recovered_cents_365d"] = "d_revenue_cents"
    return columns


def snapshot_sql(
    *,
    events: str,
    outcomes: str | None,
    key: str,
    cutoff_day: int,
    activity: Activity,
    outcome: dict[str, str],
) -> str:
    """SQL for the daily snapshots of ``key`` (columns ``k``, ``day``, ``first_day``, sums)."""
    act_sums = {f"a_{n}": expr for n, (expr, _) in activity.items()}
    out_sums = {f"o_{n}": delta for n, delta in outcome.items()}
    # Every SELECT lists the same columns (activity sums, then outcome sums) so UNION ALL lines up.
    act_select = "".join(f"sum({expr})::DOUBLE AS {name}, " for name, expr in act_sums.items())
    out_select = "".join(f"sum({expr})::DOUBLE AS {name}, " for name, expr in out_sums.items())
    zero_act = "".join(f"0::DOUBLE AS {name}, " for name in act_sums)
    zero_out = "".join(f"0::DOUBLE AS {name}, " for name in out_sums)
    merged = "".join(f"sum({name}) AS {name}, " for name in [*act_sums, *out_sums])
    windows = [
        f"coalesce(sum(a_{n}) OVER (PARTITION BY k ORDER BY day "
        f"RANGE BETWEEN {days} PRECEDING AND 1 PRECEDING), 0) AS {n}"
        for n, (_, days) in activity.items()
    ] + [
        f"coalesce(sum(o_{n}) OVER (PARTITION BY k ORDER BY day "
        f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0) AS {n}"
        for n in outcome
    ]
    outcome_rows = (
        f"""UNION ALL SELECT {key} AS k, day, {zero_act}{out_select}0 AS is_grid
        FROM {outcomes} WHERE {key} <> '~' GROUP BY k, day"""
        if outcomes is not None and outcome
        else ""
    )
    return f"""
    WITH act AS (
        SELECT {key} AS k, day, {act_select}{zero_out}0 AS is_grid
        FROM {events} WHERE {key} <> '~' GROUP BY k, day
    ), grid AS (
        SELECT DISTINCT k, day, {zero_act}{zero_out}1 AS is_grid FROM act
        UNION ALL
        SELECT DISTINCT k, {cutoff_day} AS day, {zero_act}{zero_out}1 AS is_grid FROM act
    ), first_seen AS (
        SELECT k, min(day) AS first_day FROM act GROUP BY k
    ), t AS (
        SELECT k, day, {merged}max(is_grid) AS is_grid
        FROM (SELECT * FROM act {outcome_rows} UNION ALL SELECT * FROM grid)
        WHERE day <= {cutoff_day}
        GROUP BY k, day
    ), w AS (
        SELECT t.k, t.day, t.is_grid, f.first_day, {", ".join(windows)}
        FROM t JOIN first_seen f USING (k)
    )
    SELECT * FROM w WHERE is_grid = 1 AND first_day < day ORDER BY k, day
    """


def to_table(frame: pd.DataFrame, join_key: str) -> pd.DataFrame:
    """Snapshot rows as a view's table: the join key, ``event_timestamp``, the measures."""
    frame = frame.rename(columns={"k": join_key})
    frame.insert(
        1, "event_timestamp", pd.to_datetime(frame.pop("day") * 86_400, unit="s", utc=True)
    )
    if "revenue_recovered_cents_365d" in frame:
        frame["revenue_recovered_365d"] = frame.pop("revenue_recovered_cents_365d") / 100.0
    return frame.drop(columns=["is_grid", "first_day"], errors="ignore")


def add_rates(frame: pd.DataFrame, area_hits: tuple[str, ...]) -> pd.DataFrame:
    """Smoothed hit rates (overall and per area) from the outcome counts."""
    w = HIT_RATE_PRIOR_WEIGHT
    trials = frame["controls_365d"].astype(float)
    frame["hit_rate_365d"] = (frame["irregularities_365d"] + w * HIT_RATE_PRIOR) / (trials + w)
    for area in area_hits:
        frame[f"{area}_hit_rate_365d"] = (
            frame[f"irregularities_{area}_365d"] + w * HIT_RATE_PRIOR
        ) / (trials + w)
        frame = frame.drop(columns=[f"irregularities_{area}_365d"])
    return frame


def price_baselines(engine: SqlEngine, key: str, snapshot_days: list[int]) -> pd.DataFrame:
    """Robust median and spread (IQR / 1.349) of log EUR/kg per key, over the previous year.

    Reads the relation ``decl``; a unit value that is not finite (no mass) is left out (NaN
    compares above every number in both engines, so the range test drops it with the infinities).
    """
    engine.register("snaps", pd.DataFrame({"sday": np.asarray(snapshot_days, dtype=np.int64)}))
    quantile = engine.quantile_function
    frame = engine.query(
        f"""
        SELECT d.{key} AS k, s.sday AS day,
               {quantile}(d.log_unit_value, 0.25) AS q25,
               {quantile}(d.log_unit_value, 0.5) AS q50,
               {quantile}(d.log_unit_value, 0.75) AS q75,
               count(*) AS observations
        FROM decl d JOIN snaps s ON d.day < s.sday AND d.day >= s.sday - 365
        WHERE d.{key} <> '~' AND d.log_unit_value > -1e308 AND d.log_unit_value < 1e308
        GROUP BY d.{key}, s.sday
        ORDER BY k, day
        """
    )
    frame["median_log_unit_value"] = frame.pop("q50").astype(float)
    frame["spread_log_unit_value"] = (frame.pop("q75") - frame.pop("q25")).astype(float) / 1.349
    frame["observations"] = frame["observations"].astype(np.int64)
    return frame
