"""Point-in-time feature tables: the batch sources of the Feast views, computed with DuckDB.

Feast stores and serves features; it does not aggregate. This module turns validated records
into one table per view, each row a snapshot of an entity's features *as of the start of a day*
(``event_timestamp``), computed only from what was known before that instant:

- declaration activity counts only items lodged before the day;
- control outcomes count only from the day after the control took place (``controlled_at``),
  so a result dated after a declaration's lodgement can never reach that declaration's features;
- snapshots exist for every day an entity is active (the days training looks up) and for the
  cut-off (what ``materialize`` loads into the online store for serving);
- an entity's first active day has no snapshot: it had no history, exactly like an unknown
  operator at serving time, so the cold-start path is the same offline and online.

Price baselines are monthly snapshots of the robust median and spread (IQR / 1.349) of the log
unit value per commodity × origin and per HS6, over the previous 365 days.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.keys import declaration_keys, ens_keys, transit_hubs
from features.transforms import HIT_RATE_PRIOR, HIT_RATE_PRIOR_WEIGHT

__all__ = ["FeatureTableInputs", "build_feature_tables", "cutoff_of"]

logger = logging.getLogger(__name__)

AREAS = ("financial", "ipr", "product_safety", "prohibitions_restrictions", "safety_security")


@dataclass(frozen=True)
class FeatureTableInputs:
    """Validated record files the tables are computed from."""

    declarations: Path
    control_results: Path
    operators: Path | None = None
    ens: Path | None = None


def cutoff_of(timestamps: pd.Series) -> pd.Timestamp:
    """The start of the day after the last event: the instant the online snapshot describes."""
    last = pd.Timestamp(timestamps.max())
    if last.tzinfo is None:
        last = last.tz_localize("UTC")
    return last.tz_convert("UTC").normalize() + pd.Timedelta(days=1)


def _epoch_day(ts: pd.Series) -> np.ndarray:
    values = pd.DatetimeIndex(ts)
    if values.tz is None:
        values = values.tz_localize("UTC")
    return (values.tz_convert("UTC").asi8 // (86_400 * 10**9)).astype(np.int64)


def _rate_sql(hits: str, trials: str) -> str:
    w = HIT_RATE_PRIOR_WEIGHT
    return f"(({hits}) + {w * HIT_RATE_PRIOR}) / (({trials}) + {w})"


def _load_declarations(path: Path) -> pd.DataFrame:
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
    items = pd.read_parquet(path, columns=columns)
    keys = pd.DataFrame(declaration_keys(items), index=items.index)
    frame = pd.concat([items[["declaration_id", "item_number"]], keys], axis=1)
    frame["day"] = _epoch_day(items["lodged_at"])
    frame["value"] = items["customs_value_eur"].astype(float)
    frame["log_unit_value"] = np.log(items["customs_value_eur"] / items["net_mass_kg"])
    frame["vague"] = items["warning_vague_description"].astype(int)
    return frame


def _load_outcomes(path: Path, subject_type: str) -> pd.DataFrame:
    """One row per controlled subject item: when its outcome became known, and what it was."""
    results = pd.read_parquet(path)
    results = results[results["subject_type"] == subject_type].copy()
    # The day of the control: the window "1 PRECEDING" counts it from the next day's snapshot on.
    results["known_day"] = _epoch_day(results["controlled_at"])
    irregular = results["outcome"] == "irregularity"
    for area in AREAS:
        results[f"irr_{area}"] = (irregular & (results["risk_area"] == area)).astype(int)
    results["irr"] = irregular.astype(int)
    results["item_number"] = results["item_number"].astype("Int64")
    return (
        results.groupby(["subject_id", "item_number"], dropna=False)
        .agg(
            known_day=("known_day", "min"),
            irr=("irr", "max"),
            revenue=("revenue_recovered_eur", "sum"),
            **{f"irr_{a}": (f"irr_{a}", "max") for a in AREAS},
        )
        .reset_index()
    )


def _activity_snapshot_sql(
    *,
    events: str,
    outcomes: str,
    key: str,
    cutoff_day: int,
    activity_columns: dict[str, str],
    outcome_columns: dict[str, str],
) -> str:
    """SQL for daily snapshots of windowed sums, evaluated strictly before each snapshot day.

    ``activity_columns`` / ``outcome_columns`` map output name -> (per-day sum expression,
    window in days) encoded as "expr@days".
    """
    act_sums = {f"a_{n}": spec.split("@")[0] for n, spec in activity_columns.items()}
    out_sums = {f"o_{n}": spec.split("@")[0] for n, spec in outcome_columns.items()}
    # Every SELECT lists the same columns (activity sums, then outcome sums) so UNION ALL lines up.
    act_select = "".join(f"sum({expr})::DOUBLE AS {name}, " for name, expr in act_sums.items())
    out_select = "".join(f"sum({expr})::DOUBLE AS {name}, " for name, expr in out_sums.items())
    zero_act = "".join(f"0::DOUBLE AS {name}, " for name in act_sums)
    zero_out = "".join(f"0::DOUBLE AS {name}, " for name in out_sums)
    merged = "".join(f"sum({name}) AS {name}, " for name in [*act_sums, *out_sums])
    windows = []
    for n, spec in {**activity_columns, **outcome_columns}.items():
        prefix = "a_" if n in activity_columns else "o_"
        days = int(spec.split("@")[1])
        windows.append(
            f"coalesce(sum({prefix}{n}) OVER (PARTITION BY k ORDER BY day "
            f"RANGE BETWEEN {days} PRECEDING AND 1 PRECEDING), 0) AS {n}"
        )
    return f"""
    WITH act AS (
        SELECT {key} AS k, day, {act_select}{zero_out}0 AS is_grid
        FROM {events} WHERE {key} <> '~' GROUP BY k, day
    ), outc AS (
        SELECT {key} AS k, known_day AS day, {zero_act}{out_select}0 AS is_grid
        FROM {outcomes} WHERE {key} <> '~' GROUP BY k, known_day
    ), grid AS (
        SELECT DISTINCT k, day, {zero_act}{zero_out}1 AS is_grid FROM act
        UNION ALL
        SELECT DISTINCT k, {cutoff_day} AS day, {zero_act}{zero_out}1 AS is_grid FROM act
    ), first_seen AS (
        SELECT k, min(day) AS first_day FROM act GROUP BY k
    ), t AS (
        SELECT k, day, {merged}max(is_grid) AS is_grid
        FROM (SELECT * FROM act UNION ALL SELECT * FROM outc UNION ALL SELECT * FROM grid)
        WHERE day <= {cutoff_day}
        GROUP BY k, day
    ), w AS (
        SELECT t.k, t.day, t.is_grid, f.first_day, {", ".join(windows)}
        FROM t JOIN first_seen f USING (k)
    )
    SELECT * FROM w WHERE is_grid = 1 AND first_day < day
    """


def _to_table(frame: pd.DataFrame, join_key: str) -> pd.DataFrame:
    frame = frame.rename(columns={"k": join_key})
    frame.insert(
        1, "event_timestamp", pd.to_datetime(frame.pop("day") * 86_400, unit="s", utc=True)
    )
    return frame.drop(columns=["is_grid", "first_day"], errors="ignore")


def _outcome_columns(area_hits: tuple[str, ...]) -> dict[str, str]:
    columns = {"controls_365d": "1@365", "irregularities_365d": "irr@365"}
    for area in area_hits:
        columns[f"irregularities_{area}_365d"] = f"irr_{area}@365"
    return columns


def _add_rates(frame: pd.DataFrame, area_hits: tuple[str, ...]) -> pd.DataFrame:
    w = HIT_RATE_PRIOR_WEIGHT
    trials = frame["controls_365d"].astype(float)
    frame["hit_rate_365d"] = (frame["irregularities_365d"] + w * HIT_RATE_PRIOR) / (trials + w)
    for area in area_hits:
        frame[f"{area}_hit_rate_365d"] = (
            frame[f"irregularities_{area}_365d"] + w * HIT_RATE_PRIOR
        ) / (trials + w)
        frame = frame.drop(columns=[f"irregularities_{area}_365d"])
    return frame


def _price_baselines(
    con: duckdb.DuckDBPyConnection, key: str, snapshot_days: list[int]
) -> pd.DataFrame:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE snaps AS SELECT unnest(?::BIGINT[]) AS sday", [snapshot_days]
    )
    frame = con.execute(
        f"""
        SELECT {key} AS k, s.sday AS day,
               quantile_cont(d.log_unit_value, [0.25, 0.5, 0.75]) AS q,
               count(*) AS observations
        FROM decl d JOIN snaps s ON d.day < s.sday AND d.day >= s.sday - 365
        WHERE {key} <> '~' AND isfinite(d.log_unit_value)
        GROUP BY ALL
        """
    ).df()
    quartiles = np.vstack(frame.pop("q").to_numpy()) if len(frame) else np.zeros((0, 3))
    frame["median_log_unit_value"] = quartiles[:, 1]
    frame["spread_log_unit_value"] = (quartiles[:, 2] - quartiles[:, 0]) / 1.349
    frame["observations"] = frame["observations"].astype(np.int64)
    return frame


def _transit_hub_tables(snapshots: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The per-country hub snapshots under the first- and the last-hub keys (two views).

    One filing's two hubs are then separate features, looked up in one request.
    """
    table = _add_rates(_to_table(snapshots, "hub_id"), ("safety_security",))
    measures = ["filings_90d", "controls_365d", "hit_rate_365d", "safety_security_hit_rate_365d"]
    out = {}
    for position in ("first", "last"):
        prefix = f"{position}_transit_hub"
        out[f"{prefix}_hit_rate_365d"] = table[["hub_id", "event_timestamp", *measures]].rename(
            columns={"hub_id": f"{prefix}_id"} | {m: f"{prefix}_{m}" for m in measures}
        )
    return out


def build_feature_tables(inputs: FeatureTableInputs, out_dir: Path) -> dict[str, Path]:
    """Compute every view's table and write it as ``out_dir/<view>.parquet``.

    Returns the written paths by view name; also returns the cut-off used under ``"_cutoff"``
    in the log.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    decl = _load_declarations(inputs.declarations)
    lodged = pd.read_parquet(inputs.declarations, columns=["lodged_at"])["lodged_at"]
    cutoff = cutoff_of(lodged)
    cutoff_day = int(cutoff.value // (86_400 * 10**9))
    outcomes = _load_outcomes(inputs.control_results, "declaration")
    items_with_outcomes = decl.merge(
        outcomes.drop(columns=["item_number"]).assign(
            item_number=outcomes["item_number"].astype("float")
        ),
        left_on=["declaration_id", decl["item_number"].astype(float)],
        right_on=["subject_id", "item_number"],
        how="inner",
        suffixes=("", "_o"),
    )
    con.register("decl", decl)
    con.register("decl_out", items_with_outcomes)
    written: dict[str, Path] = {}

    def write(view: str, frame: pd.DataFrame) -> None:
        path = out_dir / f"{view}.parquet"
        frame.to_parquet(path, index=False)
        written[view] = path
        logger.info("feature table %s: %d rows", view, len(frame))

    def snapshot(
        key: str,
        activity: dict[str, str],
        outcome: dict[str, str],
        *,
        events: str = "decl",
        outcomes: str = "decl_out",
        last_day: int = cutoff_day,
    ) -> pd.DataFrame:
        sql = _activity_snapshot_sql(
            events=events,
            outcomes=outcomes,
            key=key,
            cutoff_day=last_day,
            activity_columns=activity,
            outcome_columns=outcome,
        )
        return con.execute(sql).df()

    # Importer activity and outcomes.
    importer = snapshot(
        "importer_id",
        {
            "declarations_30d": "1@30",
            "declarations_90d": "1@90",
            "declarations_365d": "1@365",
            "customs_value_90d": "value@90",
            "vague_descriptions_365d": "vague@365",
        },
        _outcome_columns(("financial",)) | {"revenue_recovered_365d": "revenue@365"},
    )
    importer["days_since_first_seen"] = importer["day"] - importer["first_day"]
    importer["vague_description_share_365d"] = importer["vague_descriptions_365d"] / importer[
        "declarations_365d"
    ].where(importer["declarations_365d"] > 0)
    importer_table = _add_rates(_to_table(importer, "importer_id"), ("financial",))
    importer_table = importer_table.rename(
        columns={
            c: f"importer_{c}"
            for c in importer_table.columns
            if c not in ("importer_id", "event_timestamp")
        }
    )
    activity = [
        "declarations_30d",
        "declarations_90d",
        "declarations_365d",
        "customs_value_90d",
        "vague_description_share_365d",
        "days_since_first_seen",
    ]
    history = [
        "controls_365d",
        "irregularities_365d",
        "hit_rate_365d",
        "financial_hit_rate_365d",
        "revenue_recovered_365d",
    ]
    for view, columns in (
        ("importer_declaration_count_365d", activity),
        ("importer_hit_rate_365d", history),
    ):
        write(
            view,
            importer_table[["importer_id", "event_timestamp", *[f"importer_{c}" for c in columns]]],
        )

    for entity, key in (
        ("importer_chapter", "importer_chapter_id"),
        ("importer_origin", "importer_origin_id"),
    ):
        frame = snapshot(key, {f"{entity}_declarations_365d": "1@365"}, {})
        table = _to_table(frame, key)
        write(
            f"{entity}_declaration_count_365d",
            table[[key, "event_timestamp", f"{entity}_declarations_365d"]],
        )

    for entity, areas, measures in (
        ("declarant", ("financial",), {"declarant_declarations_365d": "1@365"}),
        ("seller", ("ipr", "product_safety"), {"seller_declarations_365d": "1@365"}),
        (
            "commodity",
            ("financial", "ipr", "product_safety", "prohibitions_restrictions"),
            {"commodity_declarations_365d": "1@365"},
        ),
    ):
        key = f"{entity}_id"
        frame = snapshot(key, measures, _outcome_columns(areas))
        table = _add_rates(_to_table(frame, key), areas)
        table = table.rename(
            columns={
                c: f"{entity}_{c}"
                for c in table.columns
                if c not in (key, "event_timestamp") and not c.startswith(entity)
            }
        )
        write(f"{entity}_hit_rate_365d", table)

    # Price baselines: monthly snapshots plus the cut-off.
    first_day = int(decl["day"].min())
    month_starts = pd.date_range(
        pd.Timestamp(first_day * 86_400, unit="s").normalize() + pd.offsets.MonthBegin(1),
        cutoff.tz_convert(None),
        freq="MS",
    )
    snapshot_days = sorted(
        {int(ts.value // (86_400 * 10**9)) for ts in month_starts} | {cutoff_day}
    )
    for entity, key, prefix in (
        ("commodity_origin", "commodity_origin_id", "co"),
        ("commodity", "commodity_id", "hs6"),
    ):
        base = _price_baselines(con, key, snapshot_days)
        table = _to_table(base, key).rename(
            columns={
                "median_log_unit_value": f"{prefix}_median_log_unit_value",
                "spread_log_unit_value": f"{prefix}_spread_log_unit_value",
                "observations": f"{prefix}_observations",
            }
        )
        write(f"{entity}_price_baseline_365d", table)

    # The operator register: AEO status and EORI registration date, static.
    if inputs.operators is not None and inputs.operators.exists():
        register = pd.read_parquet(inputs.operators)
        register = register[register["role"] == "importer"]
        write(
            "importer_registration_current",
            pd.DataFrame(
                {
                    "importer_id": register["operator_id"].to_numpy(),
                    "event_timestamp": pd.Timestamp("1970-01-01", tz="UTC"),
                    "importer_aeo": register["aeo"].astype(float).to_numpy(),
                    "registered_epoch_day": _epoch_day(register["registered_at"]).astype(float),
                }
            ),
        )

    # Routes: declarations and ENS share the view (their route ids never collide).
    route_frames = [snapshot("route_id", {"route_declarations_90d": "1@90"}, _outcome_columns(()))]
    if inputs.ens is not None and inputs.ens.exists():
        ens = pd.read_parquet(
            inputs.ens,
            columns=[
                "ens_id", "filed_at", "carrier_id", "itinerary", "transport_mode",
                "consignor_name", "consignor_country",
            ],
        )  # fmt: skip
        keys = ens_keys(ens)
        ens_frame = pd.DataFrame(
            {
                "declaration_id": ens["ens_id"],
                "item_number": 0,
                "route_id": keys["route_id"],
                "carrier_id": keys["carrier_id"],
                "consignor_id": keys["consignor_id"],
                "day": _epoch_day(ens["filed_at"]),
            }
        )
        ens_out = _load_outcomes(inputs.control_results, "ens")
        ens_items_out = ens_frame.merge(
            ens_out, left_on="declaration_id", right_on="subject_id", how="inner"
        )
        con.register("ens", ens_frame)
        con.register("ens_out", ens_items_out)
        ens_cutoff_day = max(cutoff_day, int(cutoff_of(ens["filed_at"]).value // (86_400 * 10**9)))
        safety = _outcome_columns(("safety_security",))
        route_frames.append(
            snapshot(
                "route_id",
                {"route_declarations_90d": "1@90"},
                safety,
                events="ens",
                outcomes="ens_out",
                last_day=ens_cutoff_day,
            )
        )
        for entity, volume in (
            ("carrier", "carrier_filings_90d"),
            ("consignor", "consignor_filings_90d"),
        ):
            key = f"{entity}_id"
            frame = snapshot(
                key,
                {volume: "1@90"},
                safety,
                events="ens",
                outcomes="ens_out",
                last_day=ens_cutoff_day,
            )
            table = _add_rates(_to_table(frame, key), ("safety_security",))
            table = table.rename(
                columns={
                    c: f"{entity}_{c}"
                    for c in table.columns
                    if c not in (key, "event_timestamp", volume)
                }
            )
            write(f"{entity}_hit_rate_365d", table)
        # Per transit country: a filing counts once for every country it transits.
        hubs = [transit_hubs(i) for i in ens["itinerary"]]
        counts = np.array([len(h) for h in hubs])
        hub_events = pd.DataFrame(
            {
                "declaration_id": np.repeat(ens["ens_id"].to_numpy(), counts),
                "hub_id": np.array([c for h in hubs for c in h], dtype=object),
                "day": np.repeat(_epoch_day(ens["filed_at"]), counts),
            }
        ).drop_duplicates(["declaration_id", "hub_id"])
        con.register("hub_events", hub_events)
        con.register(
            "hub_out", hub_events.merge(ens_out, left_on="declaration_id", right_on="subject_id")
        )
        hub = snapshot(
            "hub_id",
            {"filings_90d": "1@90"},
            safety,
            events="hub_events",
            outcomes="hub_out",
            last_day=ens_cutoff_day,
        )
        for name, table in _transit_hub_tables(hub).items():
            write(name, table)
    route = pd.concat(route_frames, ignore_index=True)
    if "irregularities_safety_security_365d" not in route:
        route["irregularities_safety_security_365d"] = 0
    route["irregularities_safety_security_365d"] = route[
        "irregularities_safety_security_365d"
    ].fillna(0)
    route = _add_rates(_to_table(route, "route_id"), ("safety_security",))
    route = route.rename(
        columns={
            c: f"route_{c}"
            for c in route.columns
            if c not in ("route_id", "event_timestamp", "route_declarations_90d")
        }
    )
    write("route_hit_rate_365d", route)
    con.close()
    logger.info("feature tables cut-off %s", cutoff.isoformat())
    return written
