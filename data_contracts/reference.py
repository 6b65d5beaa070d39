"""Reference vocabularies behind the contracts' risk-signal warnings.

Two ideas from ICS2 guidance and credibility checks: a goods description must say what the goods
are (generic words such as "gift" or "parts" are rejected by ICS2), and it should agree with the
declared commodity code. The lists here are small on purpose: a national deployment replaces
them with its own (see ``docs/architecture.md``), and the synthetic world writes its
descriptions from the same vocabulary so the signals are testable.
"""

from __future__ import annotations

import re
from functools import cache

__all__ = [
    "HS_CHAPTER_TERMS",
    "ORIGIN_REGIONS",
    "VAGUE_DESCRIPTIONS",
    "VAGUE_PHRASES",
    "chapter_of_term",
    "is_vague_description",
    "normalise_description",
    "origin_region",
]

# Descriptions ICS2 guidance lists as unacceptable on their own: they do not say what the goods are.
VAGUE_DESCRIPTIONS: frozenset[str] = frozenset(
    {
        "accessories",
        "apparel",
        "appliances",
        "auto parts",
        "clothing",
        "consolidated",
        "consolidated cargo",
        "daily necessities",
        "electronics",
        "equipment",
        "fak",
        "freight of all kinds",
        "foodstuffs",
        "general cargo",
        "gift",
        "gifts",
        "goods",
        "household goods",
        "items",
        "machine parts",
        "machinery",
        "merchandise",
        "miscellaneous",
        "novelties",
        "parts",
        "personal effects",
        "said to contain",
        "sample",
        "samples",
        "spare parts",
        "stc",
        "textiles",
        "tools",
        "various",
        "various goods",
        "general goods",
        "e-commerce goods",
        "ecommerce goods",
        "products",
        "stuff",
        "chemicals",
        "plastic goods",
    }
)

# Phrases that make any description vague, wherever they appear (container-level wording).
VAGUE_PHRASES: tuple[str, ...] = (
    "said to contain",
    "stc",
    "fak",
    "freight of all kinds",
    "consolidated",
    "general cargo",
)

# HS chapter -> nouns a description of goods in that chapter typically contains.
HS_CHAPTER_TERMS: dict[str, tuple[str, ...]] = {
    "03": ("fish", "shrimp", "salmon", "tuna", "squid"),
    "08": ("fruit", "bananas", "nuts", "dates", "citrus"),
    "09": ("coffee", "tea", "spices", "pepper", "cinnamon"),
    "17": ("sugar", "confectionery", "sweets", "molasses"),
    "22": ("wine", "spirits", "beer", "vodka", "whisky"),
    "24": ("cigarettes", "tobacco", "cigars"),
    "28": ("inorganic", "acids", "oxides", "salts"),
    "29": ("organic", "alcohols", "esters", "ketones", "precursor"),
    "30": ("medicaments", "tablets", "vaccines", "pharmaceuticals", "capsules"),
    "33": ("perfume", "cosmetics", "lipstick", "shampoo", "cream"),
    "38": ("refrigerant", "pesticides", "reagents", "additives"),
    "39": ("plastic", "polyethylene", "pvc", "polymer", "film"),
    "40": ("tyres", "rubber", "gaskets", "hoses"),
    "42": ("handbags", "wallets", "suitcases", "belts", "leather"),
    "44": ("wood", "plywood", "timber", "pallets"),
    "48": ("paper", "cardboard", "cartons", "tissue"),
    "52": ("cotton", "yarn", "denim", "fabric"),
    "61": ("t-shirts", "sweaters", "knitted", "jerseys", "hoodies"),
    "62": ("trousers", "jackets", "shirts", "dresses", "suits"),
    "64": ("shoes", "sneakers", "boots", "sandals", "footwear"),
    "69": ("ceramic", "tiles", "porcelain", "tableware"),
    "70": ("glass", "bottles", "glassware", "mirrors"),
    "71": ("jewellery", "gold", "silver", "diamonds", "rings"),
    "72": ("steel", "iron", "coils", "billets"),
    "73": ("screws", "bolts", "pipes", "nails", "fittings"),
    "76": ("aluminium", "foil", "profiles", "ingots"),
    "84": ("pumps", "engines", "computers", "laptops", "valves", "printers"),
    "85": ("phones", "smartphones", "batteries", "chargers", "cables", "headphones", "solar"),
    "87": ("bicycles", "scooters", "vehicle", "tractors", "wheels"),
    "90": ("lenses", "instruments", "microscopes", "sensors", "thermometers"),
    "91": ("watches", "clocks", "wristwatches"),
    "93": ("firearms", "cartridges", "ammunition", "pistols", "rifles"),
    "94": ("furniture", "chairs", "lamps", "mattresses", "tables"),
    "95": ("toys", "dolls", "games", "puzzles", "consoles"),
    "96": ("pens", "brushes", "lighters", "buttons", "zippers"),
    "97": ("paintings", "antiques", "sculptures", "artworks", "coins"),
}

# Regions for reporting slices (spec §5 "origin region"); countries not listed are "other".
ORIGIN_REGIONS: dict[str, str] = {
    **dict.fromkeys(("CN", "HK", "MO", "TW", "JP", "KR", "MN"), "east_asia"),
    **dict.fromkeys(("VN", "TH", "MY", "SG", "ID", "PH", "KH", "MM", "LA"), "south_east_asia"),
    **dict.fromkeys(("IN", "PK", "BD", "LK", "NP"), "south_asia"),
    **dict.fromkeys(
        ("AE", "SA", "IL", "QA", "OM", "KW", "JO", "LB", "IR", "IQ", "BH"), "middle_east"
    ),
    **dict.fromkeys(("TR", "GB", "CH", "NO", "RS", "UA", "BA", "MK", "AL", "ME", "MD", "BY", "RU",
                     "IS", "XK", "GE", "AM", "AZ"), "europe_non_eu"),
    **dict.fromkeys(("US", "CA", "MX", "BR", "AR", "CL", "CO", "PE", "PA", "EC"), "americas"),
    **dict.fromkeys(("MA", "EG", "ZA", "NG", "TN", "DZ", "KE", "GH", "ET", "CI"), "africa"),
    **dict.fromkeys(("AU", "NZ"), "oceania"),
}  # fmt: skip


def origin_region(country: str | None) -> str:
    return ORIGIN_REGIONS.get(country or "", "other")


_NON_WORD = re.compile(r"[^a-z0-9\- ]+")


def normalise_description(text: str) -> str:
    """Lower-case, strip punctuation and collapse spaces, so comparisons see words only."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def is_vague_description(text: str) -> bool:
    """True when the description alone does not say what the goods are (ICS2 guidance)."""
    normalised = normalise_description(text)
    if not normalised or normalised in VAGUE_DESCRIPTIONS:
        return True
    words = f" {normalised} "
    return any(f" {phrase} " in words for phrase in VAGUE_PHRASES)


@cache
def _term_index() -> dict[str, str]:
    return {term: chapter for chapter, terms in HS_CHAPTER_TERMS.items() for term in terms}


def chapter_of_term(word: str) -> str | None:
    """The HS chapter whose vocabulary contains ``word``, if any."""
    return _term_index().get(word)
