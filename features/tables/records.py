"""What the feature tables read: declaration items, ENS filings, and outcome deltas.

Outcomes follow their reporting time, not the control's: a control-result version counts in the
snapshot of day ``D`` (taken at the start of ``D``) when

- its outcome was known before ``D`` (``reported_at`` before the day start; a result without
  ``reported_at`` is known from ``controlled_at``, as before reporting times existed),
- it was not yet superseded: a corrected result (same ``control_id``) replaces it only from the
  first day start after the correction's own ``reported_at`` (history is never rewritten), and
- its control took place in the 365 days before ``D`` (the window of every outcome feature).

Each version therefore counts over one interval of snapshot days. An item's outcome state (was
it controlled, irregular per area, revenue recovered) is aggregated over the versions valid at a
day, and only its *changes* are kept, as deltas on the day they happen: a running sum of the
deltas per entity is then the entity's windowed outcome count on any day.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.codelists import RISK_AREAS
from data_contracts.record_store import read_record_path, record_location
from data_contracts.workspace import Workspace
from features.keys import declaration_keys, ens_keys, transit_hubs

__all__ = [
    "DELTA_COLUMNS",
    "OUTCOME_WINDOW_DAYS",
    "FeatureTableInputs",
    "RecordKind",
    "epoch_day",
    "item_outcome_deltas",
    "load_declarations",
    "load_ens",
    "outcome_versions",
    "transit_hub_events",
]

# "declarations", "ens", "control-results" (the contracts' kinds) or "operators" (the register).
RecordKind = str

OUTCOME_WINDOW_DAYS = 365
_DAY_NS = 86_400 * 10**9
# Per item and day: change of "controlled", of "irregular" (any area and per area), of revenue
# recovered (integer cents, so running sums are exact).
DELTA_COLUMNS = ("d_controls", "d_irr", *(f"d_irr_{a}" for a in RISK_AREAS), "d_revenue_cents")
_STATE = tuple(c[2:] for c in DELTA_COLUMNS)


@dataclass(frozen=True)
class FeatureTableInputs:
    """Validated record files the tables are computed from (``None``: the workspace has none).

    Each path is a Parquet file or a partitioned record directory (``data_contracts.
    record_store``); ``control_results_history`` holds the versions that corrections superseded
    (oldest first).
    """

    declarations: Path
    control_results: Path | None = None
    operators: Path | None = None
    ens: Path | None = None
    control_results_history: Path | None = None

    @classmethod
    def of(cls, workspace: Workspace) -> FeatureTableInputs:
        """The data store's records of ``workspace``, in the layout they are stored in."""
        return cls(
            declarations=record_location(workspace, "declarations"),
            control_results=record_location(workspace, "control-results"),
            operators=record_location(workspace, "operators"),
            ens=record_location(workspace, "ens"),
            control_results_history=workspace.control_results_history_file,
        )

    def kinds(self) -> frozenset[RecordKind]:
        """The record kinds whose files exist."""
        present: set[RecordKind] = set()
        for kind, path in (
            ("declarations", self.declarations),
            ("control-results", self.control_results),
            ("operators", self.operators),
            ("ens", self.ens),
        ):
            if path is not None and path.exists():
                present.add(kind)
        return frozenset(present)


def epoch_day(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Days since 1970-01-01 (UTC) of each timestamp."""
    values = pd.DatetimeIndex(ts)
    if values.tz is None:
        values = values.tz_localize("UTC")
    return (values.tz_convert("UTC").asi8 // _DAY_NS).astype(np.int64)


def load_declarations(path: Path) -> pd.DataFrame:
    """Items with every entity key, the lodgement day and the values the tables aggregate."""
    columns = [
        "declaration_id",
        "item_number",
        "lodged_at",
        "importer_id",
        "declarant_id",
        "seller_id",
        "hs_code",
        "origin_country",
        "dispatch_country",
        "transport_mode",
        "customs_value_eur",
        "net_mass_kg",
        "warning_vague_description",
    ]
    items = read_record_path(path, columns)
    keys = pd.DataFrame(declaration_keys(items), index=items.index)
    frame = pd.concat([items[["declaration_id", "item_number"]], keys], axis=1)
    frame["day"] = epoch_day(items["lodged_at"])
    frame["value"] = items["customs_value_eur"].astype(float)
    frame["log_unit_value"] = np.log(items["customs_value_eur"] / items["net_mass_kg"])
    frame["vague"] = items["warning_vague_description"].astype(int)
    return frame


def load_ens(path: Path) -> pd.DataFrame:
    """ENS filings with their entity keys and filing day (``declaration_id`` = ``ens_id``)."""
    ens = read_record_path(
        path,
        [
            "ens_id", "filed_at", "carrier_id", "itinerary", "transport_mode",
            "consignor_name", "consignor_country",
        ],
    )  # fmt: skip
    keys = ens_keys(ens)
    return pd.DataFrame(
        {
            "declaration_id": ens["ens_id"],
            "item_number": 0,
            "route_id": keys["route_id"],
            "carrier_id": keys["carrier_id"],
            "consignor_id": keys["consignor_id"],
            "day": epoch_day(ens["filed_at"]),
            "itinerary": ens["itinerary"],
        }
    )


def transit_hub_events(ens: pd.DataFrame) -> pd.DataFrame:
    """One row per filing and transit country it passes (a filing counts once per country)."""
    hubs = [transit_hubs(i) for i in ens["itinerary"]]
    counts = np.array([len(h) for h in hubs], dtype=np.int64)
    return pd.DataFrame(
        {
            "declaration_id": np.repeat(ens["declaration_id"].to_numpy(), counts),
            "hub_id": np.array([c for h in hubs for c in h], dtype=object),
            "day": np.repeat(ens["day"].to_numpy(), counts),
        }
    ).drop_duplicates(["declaration_id", "hub_id"])


def _read_results(current: Path, history: Path | None, subject_type: str) -> pd.DataFrame:
    """Every stored version, oldest first (history in its order, then the current versions)."""
    columns = [
        "control_id", "subject_type", "subject_id", "item_number", "controlled_at",
        "reported_at", "outcome", "risk_area", "revenue_recovered_eur",
    ]  # fmt: skip
    frames = []
    for path in (history, current):
        if path is None or not path.exists():
            continue
        frame = read_record_path(path)
        for name in columns:
            if name not in frame:
                frame[name] = pd.NaT if name == "reported_at" else None
        frames.append(frame[columns])
    results = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return results[results["subject_type"] == subject_type].reset_index(drop=True)


def outcome_versions(
    current: Path, history: Path | None, subject_type: str, window_days: int = OUTCOME_WINDOW_DAYS
) -> pd.DataFrame:
    """Every control-result version of ``subject_type`` with the snapshot days it counts in.

    Columns: ``subject_id``, ``item_number`` (0: the whole subject), ``start`` (first snapshot
    day it counts), ``end`` (first day it no longer counts) and its outcome state.
    """
    results = _read_results(current, history, subject_type)
    controlled = pd.to_datetime(results["controlled_at"], utc=True)
    reported = pd.to_datetime(results["reported_at"], utc=True).fillna(controlled)
    control_day = epoch_day(controlled)
    known_day = np.maximum(epoch_day(reported), control_day)
    # The next version of the same control replaces this one from the day after it was known.
    order = np.arange(len(results))
    successor_known = (
        pd.Series(known_day, index=order).groupby(results["control_id"].to_numpy()).shift(-1)
    )
    end = np.minimum(control_day + window_days + 1, successor_known.fillna(np.inf).to_numpy() + 1)
    irregular = (results["outcome"] == "irregularity").fillna(False).to_numpy(dtype=bool)
    area = results["risk_area"].astype(object).fillna("").to_numpy()
    item = pd.to_numeric(results["item_number"], errors="coerce").fillna(0).astype(np.int64)
    versions = pd.DataFrame(
        {
            "subject_id": results["subject_id"].astype(str).to_numpy(),
            "item_number": item.to_numpy() if subject_type == "declaration" else 0,
            "start": known_day + 1,
            "end": end.astype(np.int64),
            "controls": 1,
            "irr": irregular.astype(np.int64),
            **{f"irr_{a}": (irregular & (area == a)).astype(np.int64) for a in RISK_AREAS},
            "revenue_cents": np.round(
                pd.to_numeric(results["revenue_recovered_eur"], errors="coerce").fillna(0) * 100
            ).astype(np.int64),
        }
    )
    return versions[versions["start"] < versions["end"]].reset_index(drop=True)


def item_outcome_deltas(versions: pd.DataFrame) -> pd.DataFrame:
    """Per item, the days its outcome state changes and by how much (see the module docstring).

    The state on a day aggregates the versions valid then: controlled if any, irregular if any
    says so, revenue summed over the item's controls.
    """
    keys = ["subject_id", "item_number"]
    if versions.empty:
        return pd.DataFrame(
            {**{k: pd.Series(dtype=object) for k in keys}, "day": pd.Series(dtype=np.int64)}
            | {c: pd.Series(dtype=np.int64) for c in DELTA_COLUMNS}
        )
    points = pd.concat(
        [
            versions[[*keys, "start"]].rename(columns={"start": "day"}),
            versions[[*keys, "end"]].rename(columns={"end": "day"}),
        ],
        ignore_index=True,
    ).drop_duplicates()
    pairs = points.merge(versions, on=keys)
    active = pairs[(pairs["start"] <= pairs["day"]) & (pairs["day"] < pairs["end"])]
    aggregation = {
        c: ("revenue_cents", "sum") if c == "revenue_cents" else (c, "max") for c in _STATE
    }
    state = active.groupby([*keys, "day"], sort=False).agg(**aggregation).reset_index()
    full = points.merge(state, on=[*keys, "day"], how="left")
    full[list(_STATE)] = full[list(_STATE)].fillna(0).astype(np.int64)
    full = full.sort_values([*keys, "day"], kind="stable").reset_index(drop=True)
    previous = full.groupby(keys, sort=False)[list(_STATE)].shift(1).fillna(0).astype(np.int64)
    deltas = full[[*keys, "day"]].copy()
    for name in _STATE:
        deltas[f"d_{name}"] = full[name].to_numpy() - previous[name].to_numpy()
    changed = (deltas[list(DELTA_COLUMNS)] != 0).any(axis=1)
    return deltas[changed].reset_index(drop=True)
