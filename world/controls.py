"""Control selection and control outcomes: how labels come to exist.

Historically, items were selected by rule-based profiles (with limited capacity, so only a
share of rule hits is controlled), by a small random sample (the only unbiased view), and by
officers' own judgement (``other``, which leans towards truly irregular items). A control finds
a true irregularity with a probability that depends on the control type and the risk area.
Post-release audits happen months later; results dated after the end of the world do not exist
yet, as in reality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.codelists import RISK_AREAS

__all__ = ["DETECTION", "ControlPolicy", "control_outcomes", "historical_selection"]

# P(control finds the irregularity | it is there), by control type and area.
DETECTION: dict[str, dict[str, float]] = {
    "documentary": {
        "financial": 0.8,
        "ipr": 0.45,
        "product_safety": 0.4,
        "prohibitions_restrictions": 0.5,
        "safety_security": 0.35,
    },
    "physical": {
        "financial": 0.9,
        "ipr": 0.95,
        "product_safety": 0.9,
        "prohibitions_restrictions": 0.95,
        "safety_security": 0.9,
    },
    "scan": {
        "financial": 0.3,
        "ipr": 0.6,
        "product_safety": 0.5,
        "prohibitions_restrictions": 0.85,
        "safety_security": 0.9,
    },
    "post_release_audit": {
        "financial": 0.95,
        "ipr": 0.3,
        "product_safety": 0.3,
        "prohibitions_restrictions": 0.3,
        "safety_security": 0.1,
    },
}

_CONTROL_MIX: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    # reason: (declaration mix, ENS mix)
    "rule": (
        {"documentary": 0.55, "physical": 0.3, "scan": 0.05, "post_release_audit": 0.1},
        {"documentary": 0.3, "physical": 0.25, "scan": 0.45, "post_release_audit": 0.0},
    ),
    "random": (
        {"documentary": 0.45, "physical": 0.45, "scan": 0.05, "post_release_audit": 0.05},
        {"documentary": 0.3, "physical": 0.3, "scan": 0.4, "post_release_audit": 0.0},
    ),
    "other": (
        {"documentary": 0.4, "physical": 0.5, "scan": 0.05, "post_release_audit": 0.05},
        {"documentary": 0.2, "physical": 0.4, "scan": 0.4, "post_release_audit": 0.0},
    ),
    "model": (
        {"documentary": 0.5, "physical": 0.4, "scan": 0.05, "post_release_audit": 0.05},
        {"documentary": 0.3, "physical": 0.3, "scan": 0.4, "post_release_audit": 0.0},
    ),
}


@dataclass(frozen=True)
class ControlPolicy:
    """How the historical control selection worked."""

    random_rate: float = 0.01
    rule_follow_rate: float = 0.2  # share of rule hits the capacity allowed to control
    other_rate: float = 0.002
    other_bias: float = 0.03  # extra chance an officer picks a truly irregular item


def historical_selection(
    rng: np.random.Generator,
    rule_hit: np.ndarray,
    any_irregular: np.ndarray,
    policy: ControlPolicy,
) -> np.ndarray:
    """The selection reason per row (``""`` for rows nobody controlled)."""
    n = len(rule_hit)
    reason = np.full(n, "", dtype=object)
    randomly = rng.random(n) < policy.random_rate
    by_rule = rule_hit & (rng.random(n) < policy.rule_follow_rate)
    by_other = rng.random(n) < policy.other_rate + policy.other_bias * any_irregular
    reason[by_other] = "other"
    reason[by_rule] = "rule"
    reason[randomly] = "random"  # the random sample is drawn regardless of rules: unbiased
    return reason


def control_outcomes(
    rng: np.random.Generator,
    *,
    subject_type: str,
    subject_id: np.ndarray,
    item_number: np.ndarray | None,
    event_at: pd.Series,
    reason: np.ndarray,
    irregular: dict[str, np.ndarray],
    recoverable_eur: np.ndarray,
    world_end: pd.Timestamp,
    id_prefix: str,
) -> pd.DataFrame:
    """Control results for the selected rows: one row per area found, or one clean result."""
    selected = np.flatnonzero(reason != "")
    n = len(selected)
    mix_index = 0 if subject_type == "declaration" else 1
    control_type = np.empty(n, dtype=object)
    for why in np.unique(reason[selected]):
        rows = np.flatnonzero(reason[selected] == why)
        mix = _CONTROL_MIX[why][mix_index]
        control_type[rows] = np.array(list(mix))[
            rng.choice(len(mix), size=len(rows), p=np.array(list(mix.values())))
        ]
    base_time = pd.DatetimeIndex(event_at.iloc[selected])
    delay_hours = np.where(
        control_type == "post_release_audit",
        rng.uniform(30 * 24, 200 * 24, n),
        rng.uniform(0.5, 48, n),
    )
    controlled_at = base_time + pd.to_timedelta(delay_hours, unit="h")

    found: dict[str, np.ndarray] = {}
    for area in RISK_AREAS:
        p_detect = np.array([DETECTION[t][area] for t in control_type])
        found[area] = irregular[area][selected] & (rng.random(n) < p_detect)

    records: list[dict[str, object]] = []
    found_matrix = np.column_stack([found[a] for a in RISK_AREAS])
    for k in range(n):
        areas = [RISK_AREAS[j] for j in np.flatnonzero(found_matrix[k])]
        row = selected[k]
        common = {
            "subject_type": subject_type,
            "subject_id": subject_id[row],
            "item_number": None if item_number is None else int(item_number[row]),
            "controlled_at": controlled_at[k],
            "control_type": control_type[k],
            "selection_reason": reason[row],
        }
        if not areas:
            records.append(
                {
                    **common,
                    "outcome": "no_irregularity",
                    "risk_area": None,
                    "revenue_recovered_eur": 0.0,
                    "seizure": False,
                }
            )
        for area in areas:
            recovered = (
                round(float(recoverable_eur[row]) * float(rng.uniform(0.8, 1.0)), 2)
                if area == "financial"
                else 0.0
            )
            records.append(
                {
                    **common,
                    "outcome": "irregularity",
                    "risk_area": area,
                    "revenue_recovered_eur": recovered,
                    "seizure": area in ("ipr", "prohibitions_restrictions", "safety_security"),
                }
            )
    results = pd.DataFrame(records)
    if results.empty:
        return results
    results = results[results["controlled_at"] <= world_end].reset_index(drop=True)
    results.insert(0, "control_id", [f"{id_prefix}{i:09d}" for i in range(len(results))])
    results["item_number"] = results["item_number"].astype("Int64")
    results["note"] = None
    return results
