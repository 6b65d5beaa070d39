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
from world.catalogue import CHAPTERS, ORIGINS

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

    # Importers -------------------------------------------------------------------------------
    country = _eu_countries(rng, n_importers)
    ecommerce = rng.random(n_importers) < 0.08
    # A share of operators enter during the year; newcomers are riskier (missing-trader schemes).
    newcomer = rng.random(n_importers) < 0.25
    first_day = np.where(newcomer, rng.integers(0, max(1, n_days - 14), n_importers), -1)
    registered_days_before = np.where(
        newcomer, rng.integers(5, 120, n_importers), rng.integers(200, 5000, n_importers)
    )
    risky = rng.random(n_importers) < np.where(newcomer, 0.30, 0.10)
    propensity = np.where(risky, rng.beta(2.0, 2.2, n_importers), rng.beta(1.0, 40.0, n_importers))
    aeo = (~newcomer) & (rng.random(n_importers) < np.where(propensity < 0.05, 0.16, 0.01))
    activity = rng.lognormal(0.0, 1.3, n_importers) * np.where(ecommerce, 6.0, 1.0)
    chapter_codes = np.array([c.code for c in CHAPTERS])
    chapter_weights = np.array([c.weight for c in CHAPTERS])
    consumer = np.isin(chapter_codes, _CONSUMER_CHAPTERS)
    usual_chapters = np.empty((n_importers, 2), dtype=object)
    for slot in range(2):
        general = chapter_codes[
            rng.choice(len(chapter_codes), n_importers, p=chapter_weights / chapter_weights.sum())
        ]
        cons_w = chapter_weights * consumer
        shop = chapter_codes[rng.choice(len(chapter_codes), n_importers, p=cons_w / cons_w.sum())]
        usual_chapters[:, slot] = np.where(ecommerce, shop, general)
    origin_codes = np.array([o.country for o in ORIGINS])
    origin_weights = np.array([o.weight for o in ORIGINS])
    usual_origin = origin_codes[
        rng.choice(len(origin_codes), n_importers, p=origin_weights / origin_weights.sum())
    ]
    importers = pd.DataFrame(
        {
            "operator_id": eori_ids(rng, country),
            "role": "importer",
            "country": country,
            "name": party_names(rng, n_importers),
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

    # Declarants (customs representatives) ------------------------------------------------------
    d_country = _eu_countries(rng, n_declarants)
    d_propensity = np.where(
        rng.random(n_declarants) < 0.1, rng.beta(2, 3, n_declarants), rng.beta(1, 40, n_declarants)
    )
    declarants = pd.DataFrame(
        {
            "operator_id": eori_ids(rng, d_country),
            "role": "declarant",
            "country": d_country,
            "name": party_names(rng, n_declarants),
            "aeo": rng.random(n_declarants) < 0.3,
            "registered_day": -rng.integers(300, 6000, n_declarants),
            "_propensity": d_propensity,
        }
    )
    importers["_declarant"] = rng.integers(0, n_declarants, n_importers)
    importers["_self_declares"] = rng.random(n_importers) < 0.25

    # Sellers (third-country parties) -----------------------------------------------------------
    s_origin = origin_codes[
        rng.choice(len(origin_codes), n_sellers, p=origin_weights / origin_weights.sum())
    ]
    counterfeit = rng.random(n_sellers) < 0.05
    sellers = pd.DataFrame(
        {
            "operator_id": np.char.add(
                np.char.add(s_origin.astype(str), "S"),
                np.char.zfill(rng.choice(10**9, n_sellers, replace=False).astype(str), 9),
            ),
            "role": "seller",
            "country": s_origin,
            "name": party_names(rng, n_sellers),
            "aeo": False,
            "registered_day": np.nan,
            "_counterfeit": counterfeit,
            "_unsafe": rng.random(n_sellers) < 0.04,
            "_prohibited": rng.random(n_sellers) < 0.02,
            "_activity": rng.lognormal(0, 1.0, n_sellers),
        }
    )

    # Carriers ------------------------------------------------------------------------------------
    c_country = np.array(list(EU_MEMBER_STATES))[
        rng.integers(len(EU_MEMBER_STATES), size=n_carriers)
    ]
    carriers = pd.DataFrame(
        {
            "operator_id": eori_ids(rng, c_country),
            "role": "carrier",
            "country": c_country,
            "name": party_names(rng, n_carriers),
            "aeo": rng.random(n_carriers) < 0.4,
            "registered_day": -rng.integers(300, 8000, n_carriers),
            "_risk": np.where(
                rng.random(n_carriers) < 0.08, rng.uniform(0.5, 1.0, n_carriers), 0.0
            ),
            "_activity": rng.lognormal(0, 1.2, n_carriers),
        }
    )

    from world.catalogue import TRANSIT_HUBS

    hubs = rng.permutation(np.array(TRANSIT_HUBS))
    return Operators(
        importers=importers,
        declarants=declarants,
        sellers=sellers,
        carriers=carriers,
        risky_hubs=(str(hubs[0]), str(hubs[1])),
        late_hub=str(hubs[2]),
    )
