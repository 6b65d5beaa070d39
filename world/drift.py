"""A fraud pattern that appears part-way through the world: what exploration has to find.

From ``start_week`` a group of sellers in one third country starts to misdeclare the origin of
what it ships (goods made elsewhere, under anti-dumping duty, pass as the seller country's): a
financial irregularity that leaves no trace in the declared data. Values, masses, codes and
descriptions look as before; only a control finds it, and only the outcomes of controls can
teach a model (or a feature) that it exists. The fraud is displaced, not simply added: from the
same week, undervaluation elsewhere becomes rarer (``displacement`` on its logit), as schemes
move to where targeting does not look. A model that is never retrained, or that only controls
what it already believes risky, loses hits; one that keeps a random share of controls and
retrains can win them back.

The group, its country and its flags are ground truth: they are written to
``ground_truth.parquet`` (``origin_misdeclared``) and the latent seller table only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from world.catalogue import ORIGINS

__all__ = ["FraudShift", "ShiftPlan", "ShiftedFraud", "plan_shift", "shifted_fraud"]

# Mid-sized trading partners: big enough that a random sample meets their goods every week,
# small enough that the scheme is not most of the trade.
_CANDIDATE_WEIGHTS = (3.0, 8.0)


@dataclass(frozen=True)
class FraudShift:
    """Where and when the new pattern starts, and how strong it is.

    Attributes:
        start_week: first week (0-based) of the scheme; None, or beyond the world, for none.
        origin: the sellers' country; None draws a mid-sized trading partner per world.
        seller_share: share of that country's sellers in the scheme.
        probability: chance that an item of a seller in the scheme is misdeclared.
        evaded_duty_rate: range of the evaded duty, as a share of the true value.
        displacement: how much rarer undervaluation becomes (subtracted from its logit).
    """

    start_week: int | None = 34
    origin: str | None = None
    seller_share: float = 0.7
    probability: float = 0.5
    evaded_duty_rate: tuple[float, float] = (0.2, 0.5)
    displacement: float = 0.7


@dataclass(frozen=True)
class ShiftPlan:
    """The drawn scheme of one world."""

    start_day: int
    origin: str
    sellers: np.ndarray  # bool per seller row: in the scheme
    probability: float
    evaded_duty_rate: tuple[float, float]
    displacement: float


@dataclass(frozen=True)
class ShiftedFraud:
    """Per item: in the scheme's reach, misdeclared, the probability and the evaded duty."""

    active: np.ndarray  # the displacement applies (on or after the start day)
    exposed: np.ndarray  # a scheme seller's item on or after the start day
    misdeclared: np.ndarray
    probability: np.ndarray
    evaded_eur: np.ndarray


def plan_shift(
    rng: np.random.Generator, shift: FraudShift, sellers: pd.DataFrame, n_days: int
) -> ShiftPlan | None:
    """Draw the scheme's country and sellers; None when the world ends before it starts."""
    if shift.start_week is None or shift.start_week * 7 >= n_days:
        return None
    low, high = _CANDIDATE_WEIGHTS
    candidates = [o.country for o in ORIGINS if low <= o.weight <= high]
    origin = shift.origin or str(candidates[int(rng.integers(len(candidates)))])
    in_country = sellers["country"].to_numpy() == origin
    chosen = in_country & (rng.random(len(sellers)) < shift.seller_share)
    return ShiftPlan(
        start_day=shift.start_week * 7,
        origin=origin,
        sellers=chosen,
        probability=shift.probability,
        evaded_duty_rate=shift.evaded_duty_rate,
        displacement=shift.displacement,
    )


def shifted_fraud(
    rng: np.random.Generator,
    plan: ShiftPlan | None,
    day: np.ndarray,
    seller: np.ndarray,
    true_value: np.ndarray,
) -> ShiftedFraud:
    """The scheme's irregularities among items lodged on ``day`` from ``seller`` (row index)."""
    n = len(day)
    if plan is None:
        none = np.zeros(n, dtype=bool)
        return ShiftedFraud(none, none, none, np.zeros(n), np.zeros(n))
    active = day >= plan.start_day
    exposed = active & plan.sellers[seller]
    probability = np.where(exposed, plan.probability, 0.0)
    misdeclared = rng.random(n) < probability
    low, high = plan.evaded_duty_rate
    evaded = np.where(misdeclared, true_value * rng.uniform(low, high, n), 0.0)
    return ShiftedFraud(active, exposed, misdeclared, probability, np.round(evaded, 2))
