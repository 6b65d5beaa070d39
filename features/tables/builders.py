"""One small builder per feature view: the records it reads and how its table is computed.

A builder runs only when every record kind it ``reads`` is in the workspace; otherwise its view
has no table (and is neither registered nor materialised: see ``features.store``). ``uses`` lists
kinds a builder reads when present without needing them (the route view takes ENS routes too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from data_contracts.record_store import read_record_path
from features.tables.engines import DuckDBEngine, SqlEngine
from features.tables.records import (
    FeatureTableInputs,
    RecordKind,
    epoch_day,
    item_outcome_deltas,
    load_declarations,
    load_ens,
    outcome_versions,
    transit_hub_events,
)
from features.tables.snapshots import (
    Activity,
    add_rates,
    cutoff_of,
    day_of,
    outcome_columns,
    price_baselines,
    snapshot_sql,
    to_table,
)

__all__ = ["BUILDERS", "TableBuilder", "TableContext"]


class TableContext:
    """The records of one build, registered in one SQL engine, loaded on first use.

    The engine (DuckDB by default, Spark for the scale profile) only runs the SQL the
    builders generate; which windows and measures a view has is written once, in its builder.
    """

    def __init__(self, inputs: FeatureTableInputs, engine: SqlEngine | None = None) -> None:
        self.inputs = inputs
        self.kinds = inputs.kinds()
        self.engine: SqlEngine = engine if engine is not None else DuckDBEngine()
        self._registered: set[str] = set()

    def close(self) -> None:
        self.engine.close()

    @cached_property
    def declarations(self) -> pd.DataFrame:
        return load_declarations(self.inputs.declarations)

    @cached_property
    def cutoff(self) -> pd.Timestamp:
        lodged = read_record_path(self.inputs.declarations, ["lodged_at"])["lodged_at"]
        return cutoff_of(lodged)

    @cached_property
    def cutoff_day(self) -> int:
        return day_of(self.cutoff)

    @cached_property
    def ens(self) -> pd.DataFrame:
        assert self.inputs.ens is not None
        return load_ens(self.inputs.ens)

    @cached_property
    def ens_cutoff_day(self) -> int:
        """ENS views end at the later of the two feeds' cut-offs."""
        filed = pd.to_datetime(self.ens["day"] * 86_400, unit="s", utc=True)
        return max(self.cutoff_day, day_of(cutoff_of(filed)))

    def _deltas(self, subject_type: str) -> pd.DataFrame:
        assert self.inputs.control_results is not None
        versions = outcome_versions(
            self.inputs.control_results, self.inputs.control_results_history, subject_type
        )
        return item_outcome_deltas(versions)

    def _declaration_outcomes(self) -> pd.DataFrame:
        """Outcome deltas on each item's keys (a result without item number: every item)."""
        deltas = self._deltas("declaration")
        items = self.declarations.drop(columns=["day"])
        items = items.assign(item_number=items["item_number"].astype(np.int64))
        by_item = items.merge(
            deltas[deltas["item_number"] > 0],
            left_on=["declaration_id", "item_number"],
            right_on=["subject_id", "item_number"],
        )
        whole = items.drop(columns=["item_number"]).merge(
            deltas[deltas["item_number"] == 0].drop(columns=["item_number"]),
            left_on="declaration_id",
            right_on="subject_id",
        )
        return pd.concat([by_item, whole], ignore_index=True)

    def relation(self, name: str) -> str:
        """Register the relation ``name`` (``decl``, ``decl_out``, ``ens``, ``ens_out``,
        ``hub_events``, ``hub_out``) on first use; returns its name for the SQL."""
        if name in self._registered:
            return name
        frames: dict[str, Callable[[], pd.DataFrame]] = {
            "decl": lambda: self.declarations,
            "decl_out": self._declaration_outcomes,
            "ens": lambda: self.ens.drop(columns=["itinerary"]),
            "ens_out": lambda: self.ens.drop(columns=["itinerary", "day"]).merge(
                self._deltas("ens").drop(columns=["item_number"]),
                left_on="declaration_id",
                right_on="subject_id",
            ),
            "hub_events": lambda: transit_hub_events(self.ens),
            "hub_out": lambda: (
                transit_hub_events(self.ens)
                .drop(columns=["day"])
                .merge(
                    self._deltas("ens").drop(columns=["item_number"]),
                    left_on="declaration_id",
                    right_on="subject_id",
                )
            ),
        }
        self.engine.register(name, frames[name]())
        self._registered.add(name)
        return name

    def snapshot(
        self,
        key: str,
        activity: Activity,
        outcome: dict[str, str],
        *,
        events: str = "decl",
        outcomes: str | None = "decl_out",
        last_day: int | None = None,
    ) -> pd.DataFrame:
        sql = snapshot_sql(
            events=self.relation(events),
            outcomes=self.relation(outcomes) if outcomes and outcome else None,
            key=key,
            cutoff_day=self.cutoff_day if last_day is None else last_day,
            activity=activity,
            outcome=outcome,
        )
        return self.engine.query(sql)

    @cached_property
    def price_snapshot_days(self) -> list[int]:
        """Month starts after the first lodgement, and the cut-off."""
        first_day = int(self.declarations["day"].min())
        month_starts = pd.date_range(
            pd.Timestamp(first_day * 86_400, unit="s").normalize() + pd.offsets.MonthBegin(1),
            self.cutoff.tz_convert(None),
            freq="MS",
        )
        return sorted({day_of(ts) for ts in month_starts} | {self.cutoff_day})

    @cached_property
    def hub_snapshot(self) -> pd.DataFrame:
        """Per transit country: filings through it and their outcomes (both hub views)."""
        frame = self.snapshot(
            "hub_id",
            {"filings_90d": ("1", 90)},
            outcome_columns(("safety_security",)),
            events="hub_events",
            outcomes="hub_out",
            last_day=self.ens_cutoff_day,
        )
        return add_rates(to_table(frame, "hub_id"), ("safety_security",))


@dataclass(frozen=True)
class TableBuilder:
    """How the table of ``view`` is built, and from which record kinds."""

    view: str
    reads: frozenset[RecordKind]
    build: Callable[[TableContext], pd.DataFrame]
    uses: frozenset[RecordKind] = field(default_factory=frozenset)

    def missing(self, kinds: frozenset[RecordKind]) -> frozenset[RecordKind]:
        return self.reads - kinds


def _prefixed(
    table: pd.DataFrame, key: str, prefix: str, keep: tuple[str, ...] = ()
) -> pd.DataFrame:
    return table.rename(
        columns={
            c: f"{prefix}_{c}"
            for c in table.columns
            if c not in (key, "event_timestamp", *keep) and not c.startswith(prefix)
        }
    )


# --- declarations: activity ---------------------------------------------------------------------


def importer_declaration_count_365d(ctx: TableContext) -> pd.DataFrame:
    frame = ctx.snapshot(
        "importer_id",
        {
            "declarations_30d": ("1", 30),
            "declarations_90d": ("1", 90),
            "declarations_365d": ("1", 365),
            "customs_value_90d": ("value", 90),
            "vague_descriptions_365d": ("vague", 365),
        },
        {},
    )
    frame["days_since_first_seen"] = frame["day"] - frame["first_day"]
    frame["vague_description_share_365d"] = frame["vague_descriptions_365d"] / frame[
        "declarations_365d"
    ].where(frame["declarations_365d"] > 0)
    table = _prefixed(to_table(frame, "importer_id"), "importer_id", "importer")
    measures = [
        "declarations_30d",
        "declarations_90d",
        "declarations_365d",
        "customs_value_90d",
        "vague_description_share_365d",
        "days_since_first_seen",
    ]
    return table[["importer_id", "event_timestamp", *[f"importer_{m}" for m in measures]]]


def _usual_for_importer(ctx: TableContext, entity: str) -> pd.DataFrame:
    key = f"{entity}_id"
    frame = ctx.snapshot(key, {f"{entity}_declarations_365d": ("1", 365)}, {})
    return to_table(frame, key)[[key, "event_timestamp", f"{entity}_declarations_365d"]]


def importer_chapter_declaration_count_365d(ctx: TableContext) -> pd.DataFrame:
    return _usual_for_importer(ctx, "importer_chapter")


def importer_origin_declaration_count_365d(ctx: TableContext) -> pd.DataFrame:
    return _usual_for_importer(ctx, "importer_origin")


def _price_baseline(ctx: TableContext, key: str, prefix: str) -> pd.DataFrame:
    ctx.relation("decl")
    base = price_baselines(ctx.engine, key, ctx.price_snapshot_days)
    return to_table(base, key).rename(
        columns={
            "median_log_unit_value": f"{prefix}_median_log_unit_value",
            "spread_log_unit_value": f"{prefix}_spread_log_unit_value",
            "observations": f"{prefix}_observations",
        }
    )


def commodity_origin_price_baseline_365d(ctx: TableContext) -> pd.DataFrame:
    return _price_baseline(ctx, "commodity_origin_id", "co")


def commodity_price_baseline_365d(ctx: TableContext) -> pd.DataFrame:
    return _price_baseline(ctx, "commodity_id", "hs6")


# --- declarations: control history --------------------------------------------------------------


def importer_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    frame = ctx.snapshot("importer_id", {}, outcome_columns(("financial",), revenue=True))
    table = add_rates(to_table(frame, "importer_id"), ("financial",))
    table = _prefixed(table, "importer_id", "importer")
    measures = [
        "controls_365d",
        "irregularities_365d",
        "hit_rate_365d",
        "financial_hit_rate_365d",
        "revenue_recovered_365d",
    ]
    return table[["importer_id", "event_timestamp", *[f"importer_{m}" for m in measures]]]


def _history(ctx: TableContext, entity: str, areas: tuple[str, ...]) -> pd.DataFrame:
    """Volume and control history of a declaration entity (``<entity>_...`` columns)."""
    key = f"{entity}_id"
    frame = ctx.snapshot(key, {f"{entity}_declarations_365d": ("1", 365)}, outcome_columns(areas))
    return _prefixed(add_rates(to_table(frame, key), areas), key, entity)


def declarant_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _history(ctx, "declarant", ("financial",))


def seller_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _history(ctx, "seller", ("ipr", "product_safety"))


_COMMODITY_AREAS = ("financial", "ipr", "product_safety", "prohibitions_restrictions")


def commodity_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _history(ctx, "commodity", _COMMODITY_AREAS)


def national_commodity_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _history(ctx, "national_commodity", _COMMODITY_AREAS)


def commodity_origin_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _history(ctx, "commodity_origin", ("financial",))


def route_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    """Declarations and ENS share the view (their route ids never collide)."""
    volume = {"route_declarations_90d": ("1", 90)}
    frames = [ctx.snapshot("route_id", volume, outcome_columns(()))]
    if "ens" in ctx.kinds:
        frames.append(
            ctx.snapshot(
                "route_id",
                volume,
                outcome_columns(("safety_security",)),
                events="ens",
                outcomes="ens_out",
                last_day=ctx.ens_cutoff_day,
            )
        )
    route = pd.concat(frames, ignore_index=True)
    if "irregularities_safety_security_365d" not in route:
        route["irregularities_safety_security_365d"] = 0
    route["irregularities_safety_security_365d"] = route[
        "irregularities_safety_security_365d"
    ].fillna(0)
    route = add_rates(to_table(route, "route_id"), ("safety_security",))
    return _prefixed(route, "route_id", "route", keep=("route_declarations_90d",))


# --- the operator register ----------------------------------------------------------------------


def importer_registration_current(ctx: TableContext) -> pd.DataFrame:
    """AEO status and EORI registration date, static."""
    assert ctx.inputs.operators is not None
    register = read_record_path(ctx.inputs.operators)
    register = register[register["role"] == "importer"]
    return pd.DataFrame(
        {
            "importer_id": register["operator_id"].to_numpy(),
            "event_timestamp": pd.Timestamp("1970-01-01", tz="UTC"),
            "importer_aeo": register["aeo"].astype(float).to_numpy(),
            "registered_epoch_day": epoch_day(register["registered_at"]).astype(float),
        }
    )


# --- ENS -----------------------------------------------------------------------------------------


def _ens_party(ctx: TableContext, entity: str) -> pd.DataFrame:
    key, volume = f"{entity}_id", f"{entity}_filings_90d"
    frame = ctx.snapshot(
        key,
        {volume: ("1", 90)},
        outcome_columns(("safety_security",)),
        events="ens",
        outcomes="ens_out",
        last_day=ctx.ens_cutoff_day,
    )
    table = add_rates(to_table(frame, key), ("safety_security",))
    return _prefixed(table, key, entity, keep=(volume,))


def carrier_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _ens_party(ctx, "carrier")


def consignor_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _ens_party(ctx, "consignor")


def _transit_hub(ctx: TableContext, position: str) -> pd.DataFrame:
    """The per-country hub snapshot under the first- or the last-hub key (two views, so one
    filing's two hubs are separate features, looked up in one request)."""
    measures = ["filings_90d", "controls_365d", "hit_rate_365d", "safety_security_hit_rate_365d"]
    prefix = f"{position}_transit_hub"
    return ctx.hub_snapshot[["hub_id", "event_timestamp", *measures]].rename(
        columns={"hub_id": f"{prefix}_id"} | {m: f"{prefix}_{m}" for m in measures}
    )


def first_transit_hub_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _transit_hub(ctx, "first")


def last_transit_hub_hit_rate_365d(ctx: TableContext) -> pd.DataFrame:
    return _transit_hub(ctx, "last")


def _builder(
    build: Callable[[TableContext], pd.DataFrame],
    *reads: RecordKind,
    uses: tuple[RecordKind, ...] = (),
) -> TableBuilder:
    return TableBuilder(build.__name__, frozenset(reads), build, frozenset(uses))


_D: RecordKind = "declarations"
_C: RecordKind = "control-results"
_E: RecordKind = "ens"
_O: RecordKind = "operators"

BUILDERS: tuple[TableBuilder, ...] = (
    _builder(importer_declaration_count_365d, _D),
    _builder(importer_hit_rate_365d, _D, _C),
    _builder(importer_chapter_declaration_count_365d, _D),
    _builder(importer_origin_declaration_count_365d, _D),
    _builder(declarant_hit_rate_365d, _D, _C),
    _builder(seller_hit_rate_365d, _D, _C),
    _builder(commodity_hit_rate_365d, _D, _C),
    _builder(national_commodity_hit_rate_365d, _D, _C),
    _builder(commodity_origin_hit_rate_365d, _D, _C),
    _builder(commodity_origin_price_baseline_365d, _D),
    _builder(commodity_price_baseline_365d, _D),
    _builder(importer_registration_current, _O),
    _builder(route_hit_rate_365d, _D, _C, uses=(_E,)),
    _builder(carrier_hit_rate_365d, _D, _E, _C),
    _builder(consignor_hit_rate_365d, _D, _E, _C),
    _builder(first_transit_hub_hit_rate_365d, _D, _E, _C),
    _builder(last_transit_hub_hit_rate_365d, _D, _E, _C),
)
