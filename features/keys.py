"""Entity keys derived from a record: one definition for feature tables, training and serving.

A key that cannot be formed (no seller, a consumer without EORI, an R1 filing without HS code)
becomes :data:`MISSING_KEY`, which no feature row ever has: the lookup then returns the
cold-start defaults instead of failing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["MISSING_KEY", "declaration_keys", "ens_keys", "ens_route_ids"]

MISSING_KEY = "~"


def _clean(values: pd.Series) -> pd.Series:
    out = values.astype("string").str.strip()
    return out.where(out.notna() & (out != ""), MISSING_KEY).astype(object)


def declaration_keys(items: pd.DataFrame) -> pd.DataFrame:
    """Join keys of every entity a declaration item touches."""
    hs6 = items["hs_code"].astype("string").str[:6]
    chapter = hs6.str[:2]
    importer = _clean(items["importer_id"])
    origin = items["origin_country"].astype("string")
    mode = items["transport_mode"].astype("Int64").astype("string")
    return pd.DataFrame(
        {
            "importer_id": importer,
            "declarant_id": _clean(items["declarant_id"]),
            "seller_id": _clean(items["seller_id"]) if "seller_id" in items else MISSING_KEY,
            "commodity_id": _clean(hs6),
            "commodity_origin_id": _clean(hs6 + "|" + origin),
            "importer_chapter_id": _clean(importer + "|" + chapter),
            "importer_origin_id": _clean(importer + "|" + origin),
            "route_id": _clean("D|" + origin + ">" + items["dispatch_country"].astype("string") + "|" + mode),
        },
        index=items.index,
    )


def ens_route_ids(itineraries: pd.Series, modes: pd.Series) -> pd.Series:
    """Route of an ENS filing: the ordered itinerary and the mode of transport."""
    joined = [
        ">".join(str(c) for c in list(route)) if route is not None and len(route) else ""
        for route in itineraries
    ]
    mode = modes.astype("Int64").astype("string").to_numpy()
    return pd.Series(np.char.add(np.char.add(np.char.add("E|", np.array(joined, dtype=str)), "|"),
                                 mode.astype(str)), index=itineraries.index)


def ens_keys(filings: pd.DataFrame) -> pd.DataFrame:
    """Join keys of every entity an ENS filing touches (the consignee is looked up as importer)."""
    hs6 = filings["hs_code"].astype("string").str[:6]
    return pd.DataFrame(
        {
            "importer_id": _clean(filings["consignee_id"]),
            "carrier_id": _clean(filings["carrier_id"]),
            "commodity_id": _clean(hs6),
            "route_id": _clean(ens_route_ids(filings["itinerary"], filings["transport_mode"])),
        },
        index=filings.index,
    )
