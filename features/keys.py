"""Entity keys derived from a record: one definition for feature tables, training and serving.

A key that cannot be formed (no seller, a consumer without EORI, an R1 filing without HS code)
becomes :data:`MISSING_KEY`, which no feature row ever has: the lookup then returns the
cold-start defaults instead of failing.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from features.columns import Columns, column, texts

__all__ = [
    "MISSING_KEY",
    "declaration_keys",
    "ens_keys",
    "ens_route_ids",
    "party_key",
    "transit_hubs",
]

MISSING_KEY = "~"


def _keyed(values: np.ndarray) -> np.ndarray:
    keyed = np.empty(len(values), dtype=object)
    keyed[:] = [MISSING_KEY if v is None else v for v in values.tolist()]
    return keyed


def _joined(*parts: np.ndarray, separator: str = "|", prefix: str = "") -> np.ndarray:
    return np.array(
        [
            MISSING_KEY if None in row else prefix + separator.join(row)
            for row in zip(*parts, strict=True)
        ],
        dtype=object,
    )


def declaration_keys(records: Columns) -> dict[str, np.ndarray]:
    """Join keys of every entity a declaration item touches."""
    hs = texts(records, "hs_code")
    hs6 = np.array([None if h is None else h[:6] for h in hs], dtype=object)
    chapter = np.array([None if h is None else h[:2] for h in hs], dtype=object)
    importer = texts(records, "importer_id")
    origin = texts(records, "origin_country")
    dispatch = texts(records, "dispatch_country")
    mode = texts(records, "transport_mode")
    return {
        "importer_id": _keyed(importer),
        "declarant_id": _keyed(texts(records, "declarant_id")),
        "seller_id": _keyed(texts(records, "seller_id")),
        "commodity_id": _keyed(hs6),
        # The full national code (CN8, TARIC10 or a national 10-digit code) as declared.
        "national_commodity_id": _keyed(hs),
        "commodity_origin_id": _joined(hs6, origin),
        "importer_chapter_id": _joined(importer, chapter),
        "importer_origin_id": _joined(importer, origin),
        "route_id": np.array(
            [
                MISSING_KEY if None in (o, d, m) else f"D|{o}>{d}|{m}"
                for o, d, m in zip(origin, dispatch, mode, strict=True)
            ],
            dtype=object,
        ),
    }


def _route(itinerary: Any, mode: str | None) -> str:
    if itinerary is None or mode is None or len(itinerary) == 0:
        return MISSING_KEY
    return "E|" + ">".join(str(c) for c in list(itinerary)) + "|" + mode


def ens_route_ids(itineraries: Any, modes: Any) -> np.ndarray:
    """Route of an ENS filing: the ordered itinerary and the mode of transport."""
    mode_text = texts({"m": modes}, "m")
    return np.array(
        [_route(i, m) for i, m in zip(list(itineraries), mode_text, strict=True)], dtype=object
    )


_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def party_key(name: str | None, country: str | None) -> str:
    """A party without an identifier (an ENS consignor): normalised name and country.

    Case, punctuation and spacing differences in the name do not make another party.
    """
    if not name or not country:
        return MISSING_KEY
    normalised = " ".join(_NON_ALNUM.sub(" ", name.lower()).split())
    return f"{normalised}|{country}" if normalised else MISSING_KEY


def transit_hubs(itinerary: Any) -> list[str]:
    """Countries an ENS itinerary passes between the country of loading and EU entry."""
    if itinerary is None or len(itinerary) < 3:
        return []
    return [str(c) for c in list(itinerary)[1:-1]]


def ens_keys(records: Columns) -> dict[str, np.ndarray]:
    """Join keys of every entity an ENS filing touches (the consignee is looked up as importer)."""
    hs = texts(records, "hs_code")
    names = texts(records, "consignor_name")
    countries = texts(records, "consignor_country")
    itineraries = column(records, "itinerary")
    hubs = [transit_hubs(i) for i in itineraries]
    return {
        "consignor_id": np.array(
            [party_key(n, c) for n, c in zip(names, countries, strict=True)], dtype=object
        ),
        "importer_id": _keyed(texts(records, "consignee_id")),
        "carrier_id": _keyed(texts(records, "carrier_id")),
        "commodity_id": _keyed(np.array([None if h is None else h[:6] for h in hs], dtype=object)),
        "route_id": ens_route_ids(itineraries, column(records, "transport_mode")),
        "first_transit_hub_id": np.array([h[0] if h else MISSING_KEY for h in hubs], dtype=object),
        "last_transit_hub_id": np.array([h[-1] if h else MISSING_KEY for h in hubs], dtype=object),
    }
