"""A fraud pattern that appears part-way through the world: what exploration has to find.

From ``start_week`` the sellers of one country (``country``) whose customers are compliant,
established importers start to launder goods made elsewhere through it: what they ship, under
anti-dumping duty at its true origin, is declared as of their own country's origin, the
circumvention by transshipment that the EU's anti-fraud office reports year after year. It is a
financial irregularity that leaves no trace in an item's declared values, masses, codes or
descriptions, and the supply chain looks as trustworthy as ever — the items a model confidently
releases. What a model can learn is where it happens: the declared origin (and the commodity and
seller histories of that origin). Only controls find it, and only their outcomes (through the
history features or retraining) can teach a model that it exists; a selection that follows the
model's scores rarely looks there, a random share of controls does. The fraud is displaced, not
simply added: from the same week undervaluation elsewhere becomes rarer (``displacement`` on its
logit), as schemes move to where targeting does not look.

The group and its flags are ground truth: they are written to ``ground_truth.parquet``
(``origin_misdeclared``) and the latent seller table (``origin_fraud``) only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FraudShift", "ShiftPlan", "ShiftedFraud", "plan_shift", "shifted_fraud"]


@dataclass(frozen=True)
class FraudShift:
    """When the new pattern starts, how much traffic it reaches, and how strong it is.

    Attributes:
        start_week: first week (0-based) of the scheme; None, or beyond the world, for none.
        country: the country whose sellers launder goods; None for sellers of any country.
        traffic_share: share of all items shipped by the scheme's sellers (the country's
            sellers are taken in order of how compliant their customers are, the most compliant
            first, until they ship this share).
        probability: chance that an item of a seller in the scheme is misdeclared.
        evaded_duty_rate: range of the evaded duty, as a share of the true value.
        displacement: how much rarer undervaluation becomes (subtracted from its logit).
    """

    start_week: int | None = 34
    country: str | None = "VN"
    traffic_share: float = 0.02
    probability: float = 0.5
    evaded_duty_rate: tuple[float, float] = (0.2, 0.5)
    displacement: float = 1.0


@dataclass(frozen=True)
class ShiftPlan:
    """The drawn scheme of one world."""

    start_day: int
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
    shift: FraudShift,
    n_days: int,
    item_seller: np.ndarray,
    customer_propensity: np.ndarray,
    seller_country: np.ndarray,
) -> ShiftPlan | None:
    """Choose the scheme's sellers from the items they ship (seller row per item, and the
    latent propensity of each item's importer) and the sellers' countries; None when the world
    ends before it starts."""
    if shift.start_week is None or shift.start_week * 7 >= n_days or shift.traffic_share <= 0:
        return None
    n_sellers = len(seller_country)
    volume = np.bincount(item_seller, minlength=n_sellers)
    risk = np.bincount(item_seller, weights=customer_propensity, minlength=n_sellers)
    mean_risk = np.divide(risk, volume, out=np.ones(n_sellers), where=volume > 0)
    in_country = seller_country == shift.country if shift.country else np.ones(n_sellers, bool)
    eligible = np.flatnonzero((volume > 0) & in_country)
    # The most compliant customers first: the scheme hides where a model looks least.
    compliant_first = eligible[np.argsort(mean_risk[eligible], kind="stable")]
    reach = np.cumsum(volume[compliant_first]) <= shift.traffic_share * len(item_seller)
    chosen = np.zeros(n_sellers, dtype=bool)
    chosen[compliant_first[reach]] = True
    return ShiftPlan(
        start_day=shift.start_week * 7,
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
