"""Rule-based risk profiles: the kind of rule set a national customs risk unit writes.

They serve three purposes: the synthetic world's historical control selection (controls that
were chosen ``by rule``), the rules baseline every model is compared against, and the rule
hits a risk engine would see beside the model's score. They read only declared data and the
unit's own reference values, never the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from data_contracts.reference import is_vague_description

__all__ = ["RiskProfiles", "declaration_rule_hits", "ens_rule_hits", "rule_score"]


class RiskProfiles(BaseModel):
    """Parameters of the rule set, as a risk unit maintains them."""

    reference_price_eur_per_kg: dict[str, float] = Field(
        default_factory=dict,
        description="Reference EUR/kg per HS chapter; below `low_value_share` of it is flagged.",
    )
    low_value_share: float = 0.3
    ipr_chapters: list[str] = Field(
        default_factory=lambda: ["42", "61", "62", "64", "91", "95", "33"]
    )
    ipr_transport_modes: list[int] = Field(default_factory=lambda: [4, 5])
    ipr_origins: list[str] = Field(
        default_factory=lambda: ["CN", "TR"],
        description="Main origins of detained counterfeits in the unit's own statistics.",
    )
    risky_transit_countries: list[str] = Field(default_factory=list)
    licence_chapters: list[str] = Field(default_factory=lambda: ["93", "97", "29", "38"])
    new_importer_days: int = 180
    new_importer_value_eur: float = 5000.0


def declaration_rule_hits(
    items: pd.DataFrame, profiles: RiskProfiles, importer_registered_at: pd.Series | None = None
) -> pd.DataFrame:
    """One boolean column per rule for each declaration item.

    Args:
        items: declaration items (contract columns).
        profiles: the rule parameters.
        importer_registered_at: EORI registration time per ``importer_id``; without it the
            new-importer rule never fires.
    """
    chapter = items["hs_code"].astype(str).str[:2]
    unit_value = items["customs_value_eur"] / items["net_mass_kg"]
    reference = chapter.map(profiles.reference_price_eur_per_kg).astype(float)
    hits = pd.DataFrame(index=items.index)
    hits["rule_low_unit_value"] = (unit_value < profiles.low_value_share * reference).fillna(False)
    hits["rule_ipr_sensitive_mail"] = (
        chapter.isin(profiles.ipr_chapters)
        & items["transport_mode"].isin(profiles.ipr_transport_modes)
        & items["origin_country"].isin(profiles.ipr_origins)
    )
    # No description at all says nothing about the goods: vague, as the contract's warning has it.
    descriptions = (
        items["goods_description"].astype(object).where(items["goods_description"].notna(), "")
    )
    hits["rule_vague_description"] = descriptions.map(is_vague_description)
    hits["rule_transit_hub"] = (items["dispatch_country"] != items["origin_country"]) & items[
        "dispatch_country"
    ].isin(profiles.risky_transit_countries)
    hits["rule_licence_goods"] = chapter.isin(profiles.licence_chapters)
    if importer_registered_at is not None:
        registered = items["importer_id"].map(importer_registered_at)
        age_days = (items["lodged_at"] - registered).dt.days
        hits["rule_new_importer_high_value"] = (
            (age_days < profiles.new_importer_days)
            & (items["customs_value_eur"] > profiles.new_importer_value_eur)
        ).fillna(False)
    else:
        hits["rule_new_importer_high_value"] = False
    return hits.astype(bool)


def ens_rule_hits(filings: pd.DataFrame, profiles: RiskProfiles) -> pd.DataFrame:
    """One boolean column per rule for each ENS filing."""
    hubs = set(profiles.risky_transit_countries)
    itinerary = filings["itinerary"]
    hits = pd.DataFrame(index=filings.index)
    hits["rule_transit_hub"] = itinerary.map(
        lambda countries: any(c in hubs for c in list(countries)[1:])
    )
    hits["rule_vague_description"] = filings["goods_description"].map(is_vague_description)
    chapter = filings["hs_code"].astype("string").str[:2]
    hits["rule_licence_goods"] = chapter.isin(profiles.licence_chapters).fillna(False)
    return hits.astype(bool)


def rule_score(hits: pd.DataFrame) -> np.ndarray:
    """The rules baseline's score: how many profiles an item hits."""
    return hits.sum(axis=1).to_numpy(dtype=float)
