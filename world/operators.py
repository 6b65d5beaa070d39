"""Operators of the synthetic world: importers, declarants, sellers and carriers.

Every operator has observable attributes (id, country, AEO status, EORI registration date) and
latent ones the system never sees (fraud propensity, sloppiness, counterfeit or unsafe supply).
The latent ones go to the ground truth only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.codelists import EU_MEMBER_STATES
from world.catalogue import CHAPTERS, ORIGINS, TRANSIT_HUBS

__all__ = ["Operators", "build_operators", "eori_ids", "party_names"]

_EU_WEIGHTS = {"DE": 8, "NL": 6, "BE": 4, "FR": 5, "IT": 4, "ES": 3, "PL": 3, "AT": 1, "DK": 1}
_CONSUMER_CHAPTERS = ("33", "42", "61", "62", "64", "71", "85", "91", "95", "96")
_NAME_STEMS = (
    "Nordic",
    "Alpha",
    "Baltic",
    "Euro",
    "Atlas",
    "Delta",
    "Orion",
    "Vega",
    "Polar",
    "Rhine",
    "Danube",
    "Iberia",
    "Adria",
    "Hansa",
    "Meridian",
    "Zenith",
    "Summit",
    "Harbor",
    "Union",
    "Global",
    "Pacific",
    "Silk",
    "Coastal",
    "Prime",
    "Apex",
    "Nova",
    "Unity",
    "Crown",
    "Astra",
)
_NAME_SUFFIXES = ("Trading", "Import", "Logistics", "Distribution", "Commerce", "Supply", "Goods")
_LEGAL_FORMS = ("GmbH", "B.V.", "S.A.", "S.r.l.", "Sp. z o.o.", "ApS", "Ltd", "SAS", "AG")


def eori_ids(
    rng: np.random.Generator, countries: np.ndarray, prefix_digits: int = 12
) -> np.ndarray:
    """EORI numbers: the member state's code and a number, unique within the draw."""
    numbers = rng.choice(10**prefix_digits, size=len(countries), replace=False)
    return np.char.add(countries.astype(str), np.char.zfill(numbers.astype(str), prefix_digits))


def party_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Company names such as 'Baltic Trading GmbH'."""
    stems = np.array(_NAME_STEMS)[rng.integers(len(_NAME_STEMS), size=n)]
    suffixes = np.array(_NAME_SUFFIXES)[rng.integers(len(_NAME_SUFFIXES), size=n)]
    forms = np.array(_LEGAL_FORMS)[rng.integers(len(_LEGAL_FORMS), size=n)]
    numbers = rng.integers(1, 99, size=n).astype(str)
    return np.char.add(
        np.char.add(np.char.add(np.char.add(stems, " "), suffixes), np.char.add(" ", numbers)),
        np.char.add(" ", forms),
    )


@dataclass
class Operators:
    """All operator tables; each has observable columns and latent ``_``-prefixed ones."""

    importers: pd.DataFrame
    declarants: pd.DataFrame
    sellers: pd.DataFrame
    carriers: pd.DataFrame
    risky_hubs: tuple[str, ...]  # transit countries that act as risky hubs all year
    late_hub: str  # a hub that turns risky half-way through the year (drift)


def _eu_countries(rng: np.random.Generator, n: int) -> np.ndarray:
    codes = np.array(list(_EU_WEIGHTS))
    weights = np.array(list(_EU_WEIGHTS.values()), dtype=float)
    return codes[rng.choice(len(codes), size=n, p=weights / weights.sum())]


def build_operators(rng: np.random.Generator, n_items: int, n_days: int, n_ens: int) -> Operators:
    """Draw the operator population, sized to the number of declaration items and ENS filings."""
    n_importers = max(60, n_items // 40)
    n_declarants = max(10, n_items // 900)
    n_sellers = max(80, n_items // 25)
    n_carriers = max(20, min(400, n_ens // 400 + 20))
    importers = _importers(rng, n_importers, n_days)
    declarants = _declarants(rng, n_declarants)
    # Each importer's customs representative (or itself): drawn after the declarants exist.
    importers["_declarant"] = rng.integers(0, n_declarants, n_importers)
    importers["_self_declares"] = rng.random(n_importers) < 0.25
    sellers = _sellers(rng, n_sellers)
    carriers = _carriers(rng, n_carriers)
    hubs = rng.permutation(np.array(TRANSIT_HUBS))
    return Operators(
        importers=importers,
        declarants=declarants,
        sellers=sellers,
        carriers=carriers,
        risky_hubs=(str(hubs[0]), str(hubs[1])),
        late_hub=str(hubs[2]),
    )


def _usual_chapters(rng: np.random.Generator, ecommerce: np.ndarray) -> np.ndarray:
    """Two usual HS chapters per importer: consumer goods for e-commerce platforms."""
    chapter_codes = np.array([c.code for c in CHAPTERS])
    chapter_weights = np.array([c.weight for c in CHAPTERS])
    consumer = np.isin(chapter_codes, _CONSUMER_CHAPTERS)
    usual = np.empty((len(ecommerce), 2), dtype=object)
    for slot in range(2):
        general = chapter_codes[
            rng.choice(
                len(chapter_codes), len(ecommerce), p=chapter_weights / chapter_weights.sum()
            )
        ]
        cons_w = chapter_weights * consumer
        shop = chapter_codes[
            rng.choice(len(chapter_codes), len(ecommerce), p=cons_w / cons_w.sum())
        ]
        usual[:, slot] = np.where(ecommerce, shop, general)
    return usual


def _origin_choice(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` third countries drawn by their share of trade."""
    origin_codes = np.array([o.country for o in ORIGINS])
    origin_weights = np.array([o.weight for o in ORIGINS])
    return origin_codes[rng.choice(len(origin_codes), n, p=origin_weights / origin_weights.sum())]


def _importers(rng: np.random.Generator, n: int, n_days: int) -> pd.DataFrame:
    country = _eu_countries(rng, n)
    ecommerce = rng.random(n) < 0.08
    # A share of operators enter during the year; newcomers are riskier (missing-trader schemes).
    newcomer = rng.random(n) < 0.25
    first_day = np.where(newcomer, rng.integers(0, max(1, n_days - 14), n), -1)
    registered_days_before = np.where(newcomer, rng.integers(5, 120, n), rng.integers(200, 5000, n))
    risky = rng.random(n) < np.where(newcomer, 0.30, 0.10)
    propensity = np.where(risky, rng.beta(2.0, 2.2, n), rng.beta(1.0, 40.0, n))
    aeo = (~newcomer) & (rng.random(n) < np.where(propensity < 0.05, 0.16, 0.01))
    activity = rng.lognormal(0.0, 1.3, n) * np.where(ecommerce, 6.0, 1.0)
    usual_chapters = _usual_chapters(rng, ecommerce)
    usual_origin = _origin_choice(rng, n)
    return pd.DataFrame(
        {
            "operator_id": eori_ids(rng, country),
            "role": "importer",
            "country": country,
            "name": party_names(rng, n),
            "aeo": aeo,
            "registered_day": first_day - registered_days_before,
            "_first_day": first_day,
            "_ecommerce": ecommerce,
            "_propensity": propensity,
            "_sloppiness": 0.015 + 0.22 * propensity,
            "_activity": activity / activity.sum(),
            "_usual_chapter_1": usual_chapters[:, 0],
            "_usual_chapter_2": usual_chapters[:, 1],
            "_usual_origin": usual_origin,
        }
    )


def _declarants(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Customs representatives; a few are complicit (latent propensity)."""
    country = _eu_countries(rng, n)
    propensity = np.where(rng.random(n) < 0.1, rng.beta(2, 3, n), rng.beta(1, 40, n))
    return pd.DataFrame(
        {
            "operator_id": eori_ids(rng, country),
            "role": "declarant",
            "country": country,
            "name": party_names(rng, n),
            "aeo": rng.random(n) < 0.3,
            "registered_day": -rng.integers(300, 6000, n),
            "_propensity": propensity,
        }
    )


def _sellers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Third-country sellers; a few supply counterfeit, unsafe or prohibited goods."""
    origin = _origin_choice(rng, n)
    counterfeit = rng.random(n) < 0.05
    return pd.DataFrame(
        {
            "operator_id": np.char.add(
                np.char.add(origin.astype(str), "S"),
                np.char.zfill(rng.choice(10**9, n, replace=False).astype(str), 9),
            ),
            "role": "seller",
            "country": origin,
            "name": party_names(rng, n),
            "aeo": False,
            "registered_day": np.nan,
            "_counterfeit": counterfeit,
            "_unsafe": rng.random(n) < 0.04,
            "_prohibited": rng.random(n) < 0.02,
            "_activity": rng.lognormal(0, 1.0, n),
        }
    )


def _carriers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Carriers filing ENS; a few are used by smugglers (latent risk)."""
    country = np.array(list(EU_MEMBER_STATES))[rng.integers(len(EU_MEMBER_STATES), size=n)]
    return pd.DataFrame(
        {
            "operator_id": eori_ids(rng, country),
            "role": "carrier",
            "country": country,
            "name": party_names(rng, n),
            "aeo": rng.random(n) < 0.4,
            "registered_day": -rng.integers(300, 8000, n),
            "_risk": np.where(rng.random(n) < 0.08, rng.uniform(0.5, 1.0, n), 0.0),
            "_activity": rng.lognormal(0, 1.2, n),
        }
    )
