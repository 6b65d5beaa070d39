"""The synthetic world's static knowledge: commodity chapters, origins, offices, routes.

Figures are invented but plausible in order of magnitude (EUR/kg by chapter, duty rates in the
range of the Common Customs Tariff). Nothing here is a statement about a real country's risk:
which countries act as risky transshipment hubs is drawn per world (see ``operators.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.reference import HS_CHAPTER_TERMS

__all__ = [
    "CHAPTERS",
    "OFFICES",
    "ORIGINS",
    "TRANSIT_HUBS",
    "Chapter",
    "Origin",
    "build_commodities",
]


@dataclass(frozen=True)
class Chapter:
    """An HS chapter as the world uses it."""

    code: str
    price_eur_per_kg: float  # median unit value of genuine goods
    duty_rate: float  # typical third-country duty
    item_mass_kg: float  # median net mass of one declared item
    weight: float  # share of trade
    ipr_prone: float = 0.0  # how attractive to counterfeiters (0..1)
    product_safety_prone: float = 0.0
    prohibitions_prone: float = 0.0
    dual_use: float = 0.0  # weight in safety & security targeting
    counted: bool = False  # declared with supplementary units (pieces)


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("03", 6.0, 0.12, 900.0, 2.0),
    Chapter("08", 2.5, 0.08, 1500.0, 2.0),
    Chapter("09", 8.0, 0.03, 400.0, 1.0),
    Chapter("17", 1.5, 0.20, 2000.0, 1.0),
    Chapter("22", 5.0, 0.10, 800.0, 1.0, prohibitions_prone=0.1),
    Chapter("24", 40.0, 0.35, 300.0, 0.5, ipr_prone=0.6, prohibitions_prone=0.3),
    Chapter("28", 1.2, 0.05, 3000.0, 1.0, dual_use=0.5, prohibitions_prone=0.2),
    Chapter("29", 6.0, 0.06, 800.0, 1.5, dual_use=0.6, prohibitions_prone=0.7),
    Chapter("30", 90.0, 0.0, 60.0, 1.5, ipr_prone=0.5, product_safety_prone=0.6),
    Chapter("33", 25.0, 0.05, 120.0, 2.0, ipr_prone=0.7, product_safety_prone=0.6),
    Chapter("38", 4.0, 0.06, 900.0, 1.0, prohibitions_prone=0.6, dual_use=0.3),
    Chapter("39", 2.2, 0.065, 1200.0, 5.0),
    Chapter("40", 3.5, 0.04, 700.0, 2.0),
    Chapter("42", 35.0, 0.04, 90.0, 2.5, ipr_prone=0.9, counted=True),
    Chapter("44", 0.8, 0.03, 4000.0, 2.0),
    Chapter("48", 1.5, 0.0, 2500.0, 2.0),
    Chapter("52", 4.0, 0.08, 1500.0, 2.0),
    Chapter("61", 18.0, 0.12, 250.0, 5.0, ipr_prone=0.8, counted=True),
    Chapter("62", 22.0, 0.12, 250.0, 5.0, ipr_prone=0.8, counted=True),
    Chapter("64", 20.0, 0.17, 300.0, 4.0, ipr_prone=0.9, counted=True),
    Chapter("69", 2.5, 0.07, 1500.0, 1.5),
    Chapter("70", 2.0, 0.05, 1500.0, 1.5),
    Chapter("71", 900.0, 0.025, 3.0, 0.8, ipr_prone=0.5),
    Chapter("72", 0.7, 0.0, 20000.0, 2.0),
    Chapter("73", 2.5, 0.03, 2500.0, 4.0),
    Chapter("76", 3.0, 0.06, 3000.0, 1.5),
    Chapter("84", 30.0, 0.02, 400.0, 10.0, dual_use=0.4, counted=True),
    Chapter(
        "85",
        40.0,
        0.03,
        200.0,
        12.0,
        ipr_prone=0.6,
        product_safety_prone=0.7,
        dual_use=0.5,
        counted=True,
    ),
    Chapter("87", 8.0, 0.06, 1500.0, 4.0, product_safety_prone=0.3, counted=True),
    Chapter("90", 80.0, 0.03, 60.0, 3.0, dual_use=0.4, counted=True),
    Chapter("91", 400.0, 0.045, 8.0, 0.8, ipr_prone=0.9, counted=True),
    Chapter("93", 150.0, 0.03, 40.0, 0.3, prohibitions_prone=0.9, dual_use=0.9, counted=True),
    Chapter("94", 6.0, 0.03, 900.0, 4.0, product_safety_prone=0.3),
    Chapter("95", 12.0, 0.047, 300.0, 4.0, ipr_prone=0.7, product_safety_prone=0.8, counted=True),
    Chapter("96", 10.0, 0.04, 200.0, 1.5, ipr_prone=0.3),
    Chapter("97", 2000.0, 0.0, 15.0, 0.2, prohibitions_prone=0.8),
)

assert {c.code for c in CHAPTERS} == set(HS_CHAPTER_TERMS), "chapters and vocabulary must agree"


@dataclass(frozen=True)
class Origin:
    """A third country the world imports from."""

    country: str
    weight: float
    region: str
    price_factor: float  # origin-specific price level of genuine goods
    modes: tuple[float, float, float, float, float]  # sea, rail, road, air, postal


ORIGINS: tuple[Origin, ...] = (
    Origin("CN", 30.0, "east_asia", 0.85, (0.55, 0.08, 0.0, 0.17, 0.20)),
    Origin("US", 10.0, "americas", 1.25, (0.55, 0.0, 0.0, 0.40, 0.05)),
    Origin("GB", 8.0, "europe_non_eu", 1.15, (0.25, 0.02, 0.63, 0.07, 0.03)),
    Origin("TR", 7.0, "europe_non_eu", 0.9, (0.35, 0.02, 0.55, 0.06, 0.02)),
    Origin("CH", 5.0, "europe_non_eu", 1.3, (0.02, 0.15, 0.75, 0.07, 0.01)),
    Origin("IN", 5.0, "south_asia", 0.8, (0.75, 0.0, 0.0, 0.20, 0.05)),
    Origin("VN", 4.0, "south_east_asia", 0.8, (0.80, 0.0, 0.0, 0.15, 0.05)),
    Origin("JP", 3.0, "east_asia", 1.3, (0.60, 0.0, 0.0, 0.38, 0.02)),
    Origin("KR", 3.0, "east_asia", 1.15, (0.60, 0.0, 0.0, 0.38, 0.02)),
    Origin("TW", 2.0, "east_asia", 1.05, (0.60, 0.0, 0.0, 0.36, 0.04)),
    Origin("BD", 2.0, "south_asia", 0.7, (0.85, 0.0, 0.0, 0.15, 0.0)),
    Origin("TH", 2.0, "south_east_asia", 0.85, (0.80, 0.0, 0.0, 0.18, 0.02)),
    Origin("MY", 2.0, "south_east_asia", 0.9, (0.80, 0.0, 0.0, 0.18, 0.02)),
    Origin("ID", 2.0, "south_east_asia", 0.8, (0.85, 0.0, 0.0, 0.13, 0.02)),
    Origin("PK", 1.5, "south_asia", 0.7, (0.85, 0.0, 0.0, 0.15, 0.0)),
    Origin("BR", 2.0, "americas", 0.95, (0.85, 0.0, 0.0, 0.15, 0.0)),
    Origin("MX", 1.0, "americas", 0.95, (0.80, 0.0, 0.0, 0.20, 0.0)),
    Origin("MA", 1.5, "africa", 0.8, (0.55, 0.0, 0.40, 0.05, 0.0)),
    Origin("EG", 1.0, "africa", 0.8, (0.85, 0.0, 0.0, 0.15, 0.0)),
    Origin("ZA", 1.0, "africa", 1.0, (0.80, 0.0, 0.0, 0.20, 0.0)),
    Origin("NG", 0.6, "africa", 0.8, (0.75, 0.0, 0.0, 0.25, 0.0)),
    Origin("AE", 1.5, "middle_east", 1.05, (0.60, 0.0, 0.0, 0.38, 0.02)),
    Origin("IL", 1.0, "middle_east", 1.2, (0.50, 0.0, 0.0, 0.50, 0.0)),
    Origin("SA", 0.8, "middle_east", 1.0, (0.80, 0.0, 0.0, 0.20, 0.0)),
    Origin("RS", 1.0, "europe_non_eu", 0.85, (0.0, 0.10, 0.88, 0.02, 0.0)),
    Origin("UA", 1.5, "europe_non_eu", 0.8, (0.10, 0.20, 0.68, 0.02, 0.0)),
    Origin("NO", 2.0, "europe_non_eu", 1.3, (0.45, 0.05, 0.45, 0.05, 0.0)),
    Origin("AU", 0.8, "oceania", 1.2, (0.70, 0.0, 0.0, 0.30, 0.0)),
    Origin("CA", 1.5, "americas", 1.2, (0.70, 0.0, 0.0, 0.30, 0.0)),
    Origin("SG", 1.5, "south_east_asia", 1.1, (0.60, 0.0, 0.0, 0.38, 0.02)),
)

# Countries goods commonly pass through on their way to the EU; a world draws its risky hubs here.
TRANSIT_HUBS: tuple[str, ...] = ("AE", "SG", "MY", "TR", "EG", "MA", "LK", "OM", "PA", "HK")

# (office code, member state, port kind) — port kind decides which transport modes clear there.
OFFICES: tuple[tuple[str, str, str], ...] = (
    ("NL000396", "NL", "sea"),
    ("NL000854", "NL", "air"),
    ("BE212000", "BE", "sea"),
    ("BE101000", "BE", "air"),
    ("DE004056", "DE", "sea"),
    ("DE002652", "DE", "air"),
    ("DE009551", "DE", "road"),
    ("FR002500", "FR", "sea"),
    ("FR001260", "FR", "air"),
    ("IT262100", "IT", "sea"),
    ("IT107100", "IT", "air"),
    ("ES000811", "ES", "sea"),
    ("ES002801", "ES", "air"),
    ("PL301010", "PL", "road"),
    ("PL331030", "PL", "rail"),
    ("GR002101", "GR", "sea"),
    ("AT100000", "AT", "road"),
    ("HU101000", "HU", "road"),
    ("LT213000", "LT", "rail"),
    ("PT000103", "PT", "sea"),
    ("DK003102", "DK", "sea"),
    ("SE000600", "SE", "post"),
    ("DE008004", "DE", "post"),
    ("NL000858", "NL", "post"),
    ("BE101400", "BE", "post"),
    ("SI005109", "SI", "sea"),
    ("RO340100", "RO", "road"),
)

_MATERIALS = (
    "cotton",
    "steel",
    "plastic",
    "wooden",
    "glass",
    "leather",
    "synthetic",
    "aluminium",
    "ceramic",
    "rubber",
    "paper",
    "mixed",
    "organic",
    "frozen",
    "dried",
    "electric",
)
_QUALIFIERS = ("new", "assorted", "retail packed", "bulk", "industrial", "consumer", "")


def build_commodities(rng: np.random.Generator, per_chapter: int) -> pd.DataFrame:
    """Draw a commodity catalogue: HS6 codes with price, mass, duty and a lower-duty twin.

    Every commodity gets a *twin*: a code in another chapter with a lower duty and a similar
    price level. Misclassification in the world declares the twin, so its only trace is a
    description at odds with the declared chapter (and the lost duty), as in the field.
    """
    rows = []
    for chapter in CHAPTERS:
        headings = rng.choice(np.arange(1, 100), size=per_chapter, replace=False)
        for heading in headings:
            subheading = int(rng.integers(10, 100))
            hs6 = f"{chapter.code}{heading:02d}{subheading:02d}"
            terms = HS_CHAPTER_TERMS[chapter.code]
            noun = terms[int(rng.integers(len(terms)))]
            material = _MATERIALS[int(rng.integers(len(_MATERIALS)))]
            qualifier = _QUALIFIERS[int(rng.integers(len(_QUALIFIERS)))]
            rows.append(
                {
                    "hs6": hs6,
                    "chapter": chapter.code,
                    "noun": noun,
                    "description": " ".join(w for w in (qualifier, material, noun) if w),
                    "price_eur_per_kg": chapter.price_eur_per_kg * float(rng.lognormal(0, 0.5)),
                    "price_sigma": float(rng.uniform(0.22, 0.38)),
                    "item_mass_kg": chapter.item_mass_kg * float(rng.lognormal(0, 0.4)),
                    "duty_rate": max(0.0, chapter.duty_rate * float(rng.uniform(0.6, 1.4))),
                    "weight": chapter.weight / per_chapter * float(rng.lognormal(0, 0.6)),
                    "ipr_prone": chapter.ipr_prone,
                    "product_safety_prone": chapter.product_safety_prone,
                    "prohibitions_prone": chapter.prohibitions_prone,
                    "dual_use": chapter.dual_use,
                    "counted": chapter.counted,
                }
            )
    catalogue = pd.DataFrame(rows).drop_duplicates("hs6").reset_index(drop=True)
    catalogue["weight"] /= catalogue["weight"].sum()
    # Lower-duty twin: nearest price level among cheaper-duty codes of other chapters.
    log_price = np.log(catalogue["price_eur_per_kg"].to_numpy())
    duty = catalogue["duty_rate"].to_numpy()
    chapter_codes = catalogue["chapter"].to_numpy()
    twins = np.full(len(catalogue), -1)
    for i in range(len(catalogue)):
        eligible = (chapter_codes != chapter_codes[i]) & (duty < duty[i] - 0.02)
        if eligible.any():
            candidates = np.flatnonzero(eligible)
            twins[i] = candidates[np.argmin(np.abs(log_price[candidates] - log_price[i]))]
    catalogue["twin"] = twins
    return catalogue
