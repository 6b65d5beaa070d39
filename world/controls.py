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

__all__ = [
    "DETECTION",
    "ControlPolicy",
    "ControlledItems",
    "control_outcomes",
    "control_results",
    "control_types",
    "historical_selection",
    "reporting_delay_hours",
]

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


# Hours from the control until its outcome is known, by control type (uniform range).
_REPORTING_HOURS: dict[str, tuple[float, float]] = {
    "physical": (1.0, 10.0),
    "scan": (0.5, 6.0),
    "documentary": (2.0, 72.0),
    "post_release_audit": (14 * 24.0, 90 * 24.0),
}
# Findings that wait for a rights holder's or a laboratory's confirmation before they count.
_CONFIRMED_AREAS = frozenset({"ipr", "product_safety"})


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
    control_type = control_types(rng, reason[selected], subject_type)
    return control_results(
        rng,
        ControlledItems(
            subject_type=subject_type,
            subject_id=subject_id[selected],
            item_number=None if item_number is None else item_number[selected],
            event_at=pd.DatetimeIndex(event_at.iloc[selected]),
            reason=reason[selected],
            control_type=control_type,
            irregular={area: flags[selected] for area, flags in irregular.items()},
            recoverable_eur=recoverable_eur[selected],
        ),
        world_end=world_end,
        id_prefix=id_prefix,
    )


def control_types(rng: np.random.Generator, reason: np.ndarray, subject_type: str) -> np.ndarray:
    """The type of each control, drawn from the historical mix of its selection reason."""
    mix_index = 0 if subject_type == "declaration" else 1
    control_type = np.empty(len(reason), dtype=object)
    for why in np.unique(reason):
        rows = np.flatnonzero(reason == why)
        mix = _CONTROL_MIX[why][mix_index]
        control_type[rows] = np.array(list(mix))[
            rng.choice(len(mix), size=len(rows), p=np.array(list(mix.values())))
        ]
    return control_type


@dataclass(frozen=True)
class ControlledItems:
    """The items customs controlled, with what the ground truth says about them."""

    subject_type: str
    subject_id: np.ndarray
    item_number: np.ndarray | None
    event_at: pd.DatetimeIndex  # lodgement / filing time
    reason: np.ndarray  # selection reason
    control_type: np.ndarray
    irregular: dict[str, np.ndarray]  # area -> truly irregular
    recoverable_eur: np.ndarray

    def __len__(self) -> int:
        return len(self.subject_id)


def control_results(
    rng: np.random.Generator,
    items: ControlledItems,
    *,
    world_end: pd.Timestamp | None,
    id_prefix: str,
) -> pd.DataFrame:
    """What the controls of ``items`` find and when it becomes known (contract columns).

    A control finds a true irregularity with the probability of its type and area
    (:data:`DETECTION`); financial findings recover 80-100% of the revenue at risk. Results not
    yet reported at ``world_end`` do not exist yet (``None``: keep everything).
    """
    controlled_at = items.event_at + pd.to_timedelta(_control_delay_hours(rng, items), unit="h")
    found = _findings(rng, items)
    results = _result_rows(rng, items, controlled_at, found)
    if results.empty:
        return results
    results["reported_at"] = results["controlled_at"] + pd.to_timedelta(
        reporting_delay_hours(
            rng, results["control_type"].to_numpy(), results["risk_area"].to_numpy()
        ),
        unit="h",
    )
    if world_end is not None:
        results = results[results["reported_at"] <= world_end].reset_index(drop=True)
    results.insert(0, "control_id", [f"{id_prefix}{i:09d}" for i in range(len(results))])
    results["item_number"] = results["item_number"].astype("Int64")
    results["note"] = None
    return results


def _control_delay_hours(rng: np.random.Generator, items: ControlledItems) -> np.ndarray:
    """Hours from lodgement to the control: post-release audits come months later."""
    n = len(items)
    return np.where(
        items.control_type == "post_release_audit",
        rng.uniform(30 * 24, 200 * 24, n),
        rng.uniform(0.5, 48, n),
    )


def reporting_delay_hours(
    rng: np.random.Generator, control_type: np.ndarray, risk_area: np.ndarray
) -> np.ndarray:
    """Hours from the control until its outcome is known (spec §2 ``reported_at``).

    A physical check or a scan is known the same day, a documentary check within days, an audit
    report weeks after the audit; a suspected counterfeit or unsafe product waits for the rights
    holder's or the laboratory's confirmation.
    """
    n = len(control_type)
    low = np.array([_REPORTING_HOURS[t][0] for t in control_type], dtype=float)
    high = np.array([_REPORTING_HOURS[t][1] for t in control_type], dtype=float)
    hours = rng.uniform(low, high, n) if n else np.zeros(0)
    confirmation = np.isin(risk_area.astype(object), list(_CONFIRMED_AREAS))
    return hours + np.where(confirmation, rng.uniform(3 * 24, 21 * 24, n), 0.0)


def _findings(rng: np.random.Generator, items: ControlledItems) -> dict[str, np.ndarray]:
    """Per area: did the control find the irregularity that is there?"""
    found: dict[str, np.ndarray] = {}
    for area in RISK_AREAS:
        p_detect = np.array([DETECTION[t][area] for t in items.control_type])
        found[area] = items.irregular[area] & (rng.random(len(items)) < p_detect)
    return found


def _result_rows(
    rng: np.random.Generator,
    items: ControlledItems,
    controlled_at: pd.DatetimeIndex,
    found: dict[str, np.ndarray],
) -> pd.DataFrame:
    """One row per area found, or one clean result per control."""
    found_matrix = np.column_stack([found[a] for a in RISK_AREAS])
    n_areas = found_matrix.sum(axis=1)
    rows = np.repeat(np.arange(len(items)), np.maximum(n_areas, 1))
    clean = np.repeat(n_areas == 0, np.maximum(n_areas, 1))
    area_index = np.concatenate(
        [np.flatnonzero(f) if f.any() else [0] for f in found_matrix] or [np.zeros(0, int)]
    ).astype(int)
    area = np.where(clean, None, np.array(RISK_AREAS, dtype=object)[area_index])
    financial = np.asarray(area == "financial", dtype=bool)
    recovered = np.zeros(len(rows))
    # One draw per financial finding, in row order (the world's seeds depend on this order).
    recovered[financial] = np.round(
        items.recoverable_eur[rows[financial]].astype(float)
        * rng.uniform(0.8, 1.0, int(financial.sum())),
        2,
    )
    return pd.DataFrame(
        {
            "subject_type": items.subject_type,
            "subject_id": items.subject_id[rows],
            "item_number": (
                [None] * len(rows)
                if items.item_number is None
                else [int(v) for v in items.item_number[rows]]
            ),
            "controlled_at": controlled_at[rows],
            "control_type": items.control_type[rows],
            "selection_reason": items.reason[rows],
            "outcome": np.where(clean, "no_irregularity", "irregularity"),
            "risk_area": area,
            "revenue_recovered_eur": recovered,
            "seizure": np.isin(area, ["ipr", "prohibitions_restrictions", "safety_security"]),
        }
    )
