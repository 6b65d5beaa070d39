"""Feast entities: who and what a declaration touches. Join key = ``<entity>_id``."""

from __future__ import annotations

from feast import Entity, ValueType

__all__ = [
    "carrier",
    "commodity",
    "commodity_origin",
    "consignor",
    "declarant",
    "first_transit_hub",
    "importer",
    "importer_chapter",
    "importer_origin",
    "last_transit_hub",
    "national_commodity",
    "route",
    "seller",
]

_TAGS = {"team": "customs-risk", "pii": "false"}
_OPERATOR_TAGS = {"team": "customs-risk", "pii": "true"}  # EORI numbers identify companies

importer = Entity(
    name="importer",
    join_keys=["importer_id"],
    value_type=ValueType.STRING,
    description="Importer (or ENS consignee) by EORI.",
    owner="risk-analytics@customs.example",
    tags=_OPERATOR_TAGS,
)
declarant = Entity(
    name="declarant",
    join_keys=["declarant_id"],
    value_type=ValueType.STRING,
    description="Declarant (customs representative) by EORI.",
    owner="risk-analytics@customs.example",
    tags=_OPERATOR_TAGS,
)
seller = Entity(
    name="seller",
    join_keys=["seller_id"],
    value_type=ValueType.STRING,
    description="Third-country seller.",
    owner="risk-analytics@customs.example",
    tags=_OPERATOR_TAGS,
)
consignor = Entity(
    name="consignor",
    join_keys=["consignor_id"],
    value_type=ValueType.STRING,
    description="ENS consignor without an identifier: normalised name | country.",
    owner="risk-analytics@customs.example",
    tags=_OPERATOR_TAGS,
)
carrier = Entity(
    name="carrier",
    join_keys=["carrier_id"],
    value_type=ValueType.STRING,
    description="Carrier filing the ENS, by EORI.",
    owner="risk-analytics@customs.example",
    tags=_OPERATOR_TAGS,
)
route = Entity(
    name="route",
    join_keys=["route_id"],
    value_type=ValueType.STRING,
    description="Route: origin>dispatch|mode for declarations, itinerary|mode for ENS.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)
# A transit country seen in two positions of an ENS itinerary (the first and the last country
# between loading and EU entry). One table of per-country control history feeds both, under
# separate keys, so a filing's two hubs are looked up in one request without name clashes.
first_transit_hub = Entity(
    name="first_transit_hub",
    join_keys=["first_transit_hub_id"],
    value_type=ValueType.STRING,
    description="First transit country of an ENS itinerary (after loading, before EU entry).",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)
last_transit_hub = Entity(
    name="last_transit_hub",
    join_keys=["last_transit_hub_id"],
    value_type=ValueType.STRING,
    description="Last transit country of an ENS itinerary before EU entry.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)
commodity = Entity(
    name="commodity",
    join_keys=["commodity_id"],
    value_type=ValueType.STRING,
    description="HS6 subheading.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)
national_commodity = Entity(
    name="national_commodity",
    join_keys=["national_commodity_id"],
    value_type=ValueType.STRING,
    description="The full commodity code as declared (CN8, TARIC10 or a national code).",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)
commodity_origin = Entity(
    name="commodity_origin",
    join_keys=["commodity_origin_id"],
    value_type=ValueType.STRING,
    description="HS6 subheading × country of origin ('851713|CN'): the price-baseline cell.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)
importer_chapter = Entity(
    name="importer_chapter",
    join_keys=["importer_chapter_id"],
    value_type=ValueType.STRING,
    description="Importer × HS chapter: how usual a commodity is for an importer.",
    owner="risk-analytics@customs.example",
    tags=_OPERATOR_TAGS,
)
importer_origin = Entity(
    name="importer_origin",
    join_keys=["importer_origin_id"],
    value_type=ValueType.STRING,
    description="Importer × country of origin: how usual an origin is for an importer.",
    owner="risk-analytics@customs.example",
    tags=_OPERATOR_TAGS,
)
