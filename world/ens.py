"""ICS2 entry summary declarations (house level) of the synthetic world.

Safety and security risk is planted in the route (transshipment through risky hubs, one of which
turns risky half-way through the year), the carrier, the consignor and the goods (dual-use
chapters); vague descriptions come from sloppy consignors and are themselves a risk factor.
These risks leave no further trace, so the oracle probability is the prior itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.codelists import EU_MEMBER_STATES
from data_contracts.reference import VAGUE_DESCRIPTIONS
from world.catalogue import TRANSIT_HUBS
from world.operators import Operators

__all__ = ["EnsDraw", "generate_ens"]

_VAGUE = np.array([*sorted(VAGUE_DESCRIPTIONS), "said to contain garments", "stc various", "fak"])
_ENTRY = np.array(["NL", "BE", "DE", "FR", "IT", "ES", "PL", "GR", "PT", "LT"])
_ENTRY_W = np.array([18, 14, 14, 10, 9, 8, 6, 5, 3, 3], dtype=float)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class EnsDraw:
    filings: pd.DataFrame
    truth: pd.DataFrame
    day: np.ndarray
    irregular: dict[str, np.ndarray]


def generate_ens(
    rng: np.random.Generator,
    n_filings: int,
    n_days: int,
    start: pd.Timestamp,
    ops: Operators,
    catalogue: pd.DataFrame,
) -> EnsDraw:
    """Draw ``n_filings`` house-level ENS filings (each step draws from ``rng`` in turn)."""
    when = _filing_times(rng, n_filings, n_days, start)
    parties = _carriers_and_consignors(rng, ops, n_filings)
    route = _itineraries(rng, parties.consignor_country, ops)
    goods = _goods(rng, when.mode, when.release, catalogue)
    consignees = _consignees(rng, when.release, ops.importers)
    risk = _risk(rng, when, parties, route, goods, consignees, ops, catalogue, n_days)
    filings = _filing_frame(rng, when, parties, route, goods, consignees, ops)
    irregular = {
        "safety_security": risk.safety_security,
        "prohibitions_restrictions": risk.prohibited,
        "financial": np.zeros(n_filings, dtype=bool),
        "ipr": np.zeros(n_filings, dtype=bool),
        "product_safety": np.zeros(n_filings, dtype=bool),
    }
    truth = pd.DataFrame(
        {
            "subject_type": "ens",
            "subject_id": filings["ens_id"],
            "item_number": pd.array([pd.NA] * n_filings, dtype="Int64"),
            "event_at": filings["filed_at"],
            "p_financial": 0.0,
            "p_ipr": 0.0,
            "p_product_safety": 0.0,
            "p_prohibitions_restrictions": risk.p_prohibited,
            "p_safety_security": risk.p_safety_security,
            **{f"irregular_{area}": flags for area, flags in irregular.items()},
            "undervalued": False,
            "misclassified": False,
            "origin_misdeclared": False,
            "recoverable_revenue_eur": 0.0,
            "true_hs6": catalogue["hs6"].to_numpy()[goods.commodity],
            "true_customs_value_eur": goods.value,
        }
    )
    return EnsDraw(filings=filings, truth=truth, day=when.day, irregular=irregular)


@dataclass
class _When:
    day: np.ndarray
    filed: pd.DatetimeIndex
    mode: np.ndarray
    release: np.ndarray


def _filing_times(rng: np.random.Generator, n: int, n_days: int, start: pd.Timestamp) -> _When:
    """When, by which mode, and so under which ICS2 release (express air files R1)."""
    day = rng.integers(0, n_days, n)
    seconds = rng.integers(0, 86400, n)
    filed = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    mode = np.array([1, 2, 3, 4])[rng.choice(4, n, p=[0.35, 0.05, 0.15, 0.45])]
    express = (mode == 4) & (rng.random(n) < 0.55)
    release = np.where(mode == 4, np.where(express, "R1", "R2"), "R3")
    return _When(day, pd.DatetimeIndex(filed), mode, release)


@dataclass
class _Parties:
    carrier: np.ndarray
    consignor: np.ndarray
    consignor_country: np.ndarray


def _carriers_and_consignors(rng: np.random.Generator, ops: Operators, n: int) -> _Parties:
    carriers = ops.carriers
    cw = carriers["_activity"].to_numpy()
    carrier = rng.choice(len(carriers), n, p=cw / cw.sum())
    sellers = ops.sellers
    sw = sellers["_activity"].to_numpy()
    consignor = rng.choice(len(sellers), n, p=sw / sw.sum())
    return _Parties(carrier, consignor, sellers["country"].to_numpy()[consignor])


@dataclass
class _Route:
    itinerary: list[list[str]]
    first_entry: np.ndarray
    via_risky: np.ndarray
    via_late: np.ndarray


def _itineraries(rng: np.random.Generator, consignor_country: np.ndarray, ops: Operators) -> _Route:
    """Direct, or through one or two transit countries, to a first EU country of entry."""
    n = len(consignor_country)
    n_transit = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    hubs = np.array(TRANSIT_HUBS)
    t1 = hubs[rng.integers(len(hubs), size=n)]
    t2 = hubs[rng.integers(len(hubs), size=n)]
    first_entry = _ENTRY[rng.choice(len(_ENTRY), n, p=_ENTRY_W / _ENTRY_W.sum())]
    itinerary = [
        [
            str(o),
            *([str(a)] if k >= 1 and a != o else []),
            *([str(b)] if k == 2 and b not in (a, o) else []),
            str(e),
        ]
        for o, a, b, k, e in zip(consignor_country, t1, t2, n_transit, first_entry, strict=True)
    ]
    risky = set(ops.risky_hubs)
    via_risky = np.array([any(c in risky for c in route[1:-1]) for route in itinerary])
    via_late = np.array([ops.late_hub in route[1:-1] for route in itinerary])
    return _Route(itinerary, first_entry, via_risky, via_late)


@dataclass
class _Goods:
    commodity: np.ndarray
    vague: np.ndarray
    description: np.ndarray
    hs6: np.ndarray
    mass_kg: np.ndarray
    packages: np.ndarray
    value: np.ndarray


def _goods(
    rng: np.random.Generator, mode: np.ndarray, release: np.ndarray, catalogue: pd.DataFrame
) -> _Goods:
    """What is shipped: description (vague from sloppy consignors), HS6, mass, packages, value."""
    n = len(mode)
    commodity = rng.choice(len(catalogue), n, p=catalogue["weight"].to_numpy())
    sloppiness = np.where(rng.random(n) < 0.12, 0.35, 0.03)
    vague = rng.random(n) < sloppiness
    description = np.where(
        vague,
        _VAGUE[rng.integers(len(_VAGUE), size=n)],
        catalogue["description"].to_numpy()[commodity],
    )
    hs_missing = (release == "R1") & (rng.random(n) < 0.35)
    hs6 = np.asarray(
        np.where(hs_missing, None, catalogue["hs6"].to_numpy()[commodity].astype(object)),  # type: ignore[call-overload]
        dtype=object,
    )
    mass_kg = np.round(
        np.where(mode == 4, rng.lognormal(np.log(6), 1.2, n), rng.lognormal(np.log(2500), 1.0, n)),
        3,
    ).clip(0.01, None)
    packages = np.maximum(1, np.round(mass_kg / rng.uniform(2, 40, n))).astype(np.int64)
    value = np.where(
        rng.random(n) < np.where(mode == 4, 0.7, 0.3),
        np.round(
            mass_kg
            * catalogue["price_eur_per_kg"].to_numpy()[commodity]
            * rng.lognormal(0, 0.4, n),
            2,
        ),
        np.nan,
    )
    return _Goods(commodity, vague, description, hs6, mass_kg, packages, value)


@dataclass
class _Consignees:
    consumer: np.ndarray
    country: np.ndarray
    operator_id: np.ndarray
    name: np.ndarray
    propensity: np.ndarray


def _consignees(
    rng: np.random.Generator, release: np.ndarray, importers: pd.DataFrame
) -> _Consignees:
    """Business consignees are the world's importers (so their declaration history is known);
    consumers buying online have no EORI."""
    n = len(release)
    consumer = (release == "R1") & (rng.random(n) < 0.4)
    weights = importers["_activity"].to_numpy()
    consignee = rng.choice(len(importers), n, p=weights / weights.sum())
    country = np.where(
        consumer,
        np.array(EU_MEMBER_STATES)[rng.integers(27, size=n)],
        importers["country"].to_numpy()[consignee],
    )
    operator_id = np.asarray(
        np.where(consumer, None, importers["operator_id"].to_numpy()[consignee]),  # type: ignore[call-overload]
        dtype=object,
    )
    name = np.where(
        consumer, np.array(["Private individual"] * n), importers["name"].to_numpy()[consignee]
    )
    propensity = np.where(consumer, 0.0, importers["_propensity"].to_numpy()[consignee])
    return _Consignees(consumer, country, operator_id, name, propensity)


@dataclass
class _Risk:
    p_safety_security: np.ndarray
    p_prohibited: np.ndarray
    safety_security: np.ndarray
    prohibited: np.ndarray


def _risk(
    rng: np.random.Generator,
    when: _When,
    parties: _Parties,
    route: _Route,
    goods: _Goods,
    consignees: _Consignees,
    ops: Operators,
    catalogue: pd.DataFrame,
    n_days: int,
) -> _Risk:
    """The oracle probability is the prior (no trace beyond the covariates), then the flips."""
    n = len(when.day)
    sellers = ops.sellers
    half_way = when.day >= n_days // 2
    carrier_risk = ops.carriers["_risk"].to_numpy()[parties.carrier]
    consignor_bad = (
        sellers["_prohibited"].to_numpy()[parties.consignor]
        | sellers["_counterfeit"].to_numpy()[parties.consignor]
    )
    dual_use = catalogue["dual_use"].to_numpy()[goods.commodity]
    # Transshipment hubs matter for the goods smugglers route through them (dual-use above all).
    hub_goods = 0.3 + dual_use
    p_ss = _sigmoid(
        -5.1
        + 2.6 * route.via_risky * hub_goods
        + 2.6 * (route.via_late & half_way) * hub_goods
        + 1.3 * goods.vague
        + 2.6 * carrier_risk
        + 1.6 * consignor_bad
        + 1.0 * dual_use
        + 0.5 * consignees.consumer
        + 1.2 * consignees.propensity
    )
    p_pr = _sigmoid(
        -8.0
        + 4.5 * catalogue["prohibitions_prone"].to_numpy()[goods.commodity]
        + 3.0 * sellers["_prohibited"].to_numpy()[parties.consignor]
    )
    ss = rng.random(n) < p_ss
    pr = rng.random(n) < p_pr
    return _Risk(p_ss, p_pr, ss, pr)


def _filing_frame(
    rng: np.random.Generator,
    when: _When,
    parties: _Parties,
    route: _Route,
    goods: _Goods,
    consignees: _Consignees,
    ops: Operators,
) -> pd.DataFrame:
    """The filings as ICS2 receives them: ids, documents, containers and the declared data."""
    n, mode = len(when.day), when.mode
    year = pd.Series(when.filed.year.astype(str).str[-2:]).to_numpy()
    ens_id = np.char.add(
        np.char.add(year.astype(str), route.first_entry.astype(str)),
        np.char.zfill(rng.choice(10**14, n, replace=False).astype(str), 14),
    )
    prefix = np.where(mode == 4, "HAWB", "HBL")
    house = np.char.add(
        prefix.astype(str), np.char.zfill(rng.choice(10**10, n, replace=False).astype(str), 10)
    )
    master = np.where(  # type: ignore[call-overload]
        rng.random(n) < 0.7,
        np.char.add(
            np.where(mode == 4, "MAWB", "MBL").astype(str),
            np.char.zfill(rng.integers(0, max(1, n // 8), n).astype(str), 8),
        ),
        None,
    )
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    owner = np.char.add(
        np.char.add(
            np.char.add(letters[rng.integers(26, size=n)], letters[rng.integers(26, size=n)]),
            letters[rng.integers(26, size=n)],
        ),
        "U",
    )
    container_ids = [
        [f"{o}{num:07d}"] if m == 1 else None
        for o, num, m in zip(owner, rng.integers(0, 10**7, n), mode, strict=True)
    ]
    sellers = ops.sellers
    return pd.DataFrame(
        {
            "ens_id": ens_id,
            "house_document_id": house,
            "master_document_id": master,
            "filed_at": when.filed.tz_localize("UTC"),
            "ics2_release": when.release,
            "transport_mode": mode.astype(np.int64),
            "carrier_id": ops.carriers["operator_id"].to_numpy()[parties.carrier],
            "consignor_name": sellers["name"].to_numpy()[parties.consignor],
            "consignor_country": parties.consignor_country,
            "consignee_name": consignees.name,
            "consignee_country": consignees.country,
            "consignee_id": consignees.operator_id,
            "goods_description": goods.description,
            "hs_code": goods.hs6,
            "gross_mass_kg": goods.mass_kg,
            "packages": goods.packages,
            "declared_value_eur": goods.value,
            "country_of_loading": [r[0] for r in route.itinerary],
            "itinerary": route.itinerary,
            "first_entry_country": route.first_entry,
            "container_ids": container_ids,
        }
    )
