"""The Feast repository's one definition site: every entity, source, view and service.

Feast's own CLI (``feast plan`` / ``feast apply`` run in ``features/``) imports every module of
the repository it is not told to ignore and collects the objects it finds as module attributes.
The definitions live in their own modules (one view per file), which import one another under
``features.…``; Feast, run in ``features/``, would import the same files again under other
names (``views.…``) and find every view twice. ``.feastignore`` therefore hides every module but
this one, which names each object once. ``crisk features apply`` registers the same objects
(:func:`definitions`); a test checks the two lists agree.
"""

from __future__ import annotations

from typing import Any

from features.data_sources import declaration_request
from features.entities import (
    carrier,
    commodity,
    commodity_origin,
    consignor,
    declarant,
    first_transit_hub,
    importer,
    importer_chapter,
    importer_origin,
    last_transit_hub,
    national_commodity,
    route,
    seller,
)
from features.on_demand.declared_value_vs_price_baseline import declared_value_vs_price_baseline
from features.on_demand.importer_commodity_novelty import importer_commodity_novelty
from features.on_demand.importer_registration_age import importer_registration_age
from features.services import (
    customs_risk_declaration_v1,
    customs_risk_declaration_v2,
    customs_risk_ens_v1,
    customs_risk_ens_v2,
    customs_risk_ens_v3,
)
from features.views.carrier_hit_rate_365d import carrier_hit_rate_365d
from features.views.commodity_hit_rate_365d import commodity_hit_rate_365d
from features.views.commodity_origin_hit_rate_365d import commodity_origin_hit_rate_365d
from features.views.commodity_origin_price_baseline_365d import (
    commodity_origin_price_baseline_365d,
)
from features.views.commodity_price_baseline_365d import commodity_price_baseline_365d
from features.views.consignor_hit_rate_365d import consignor_hit_rate_365d
from features.views.declarant_hit_rate_365d import declarant_hit_rate_365d
from features.views.first_transit_hub_hit_rate_365d import first_transit_hub_hit_rate_365d
from features.views.importer_chapter_declaration_count_365d import (
    importer_chapter_declaration_count_365d,
)
from features.views.importer_declaration_count_365d import importer_declaration_count_365d
from features.views.importer_hit_rate_365d import importer_hit_rate_365d
from features.views.importer_origin_declaration_count_365d import (
    importer_origin_declaration_count_365d,
)
from features.views.importer_registration_current import importer_registration_current
from features.views.last_transit_hub_hit_rate_365d import last_transit_hub_hit_rate_365d
from features.views.national_commodity_hit_rate_365d import national_commodity_hit_rate_365d
from features.views.route_hit_rate_365d import route_hit_rate_365d
from features.views.seller_hit_rate_365d import seller_hit_rate_365d

__all__ = [
    "ENTITIES",
    "FEATURE_VIEWS",
    "ON_DEMAND_VIEWS",
    "SERVICES",
    "definitions",
]

ENTITIES = (
    importer,
    declarant,
    seller,
    consignor,
    carrier,
    route,
    first_transit_hub,
    last_transit_hub,
    commodity,
    national_commodity,
    commodity_origin,
    importer_chapter,
    importer_origin,
)
FEATURE_VIEWS = (
    importer_declaration_count_365d,
    importer_hit_rate_365d,
    importer_registration_current,
    importer_chapter_declaration_count_365d,
    importer_origin_declaration_count_365d,
    declarant_hit_rate_365d,
    seller_hit_rate_365d,
    commodity_hit_rate_365d,
    national_commodity_hit_rate_365d,
    commodity_origin_hit_rate_365d,
    route_hit_rate_365d,
    commodity_origin_price_baseline_365d,
    commodity_price_baseline_365d,
    carrier_hit_rate_365d,
    consignor_hit_rate_365d,
    first_transit_hub_hit_rate_365d,
    last_transit_hub_hit_rate_365d,
)
ON_DEMAND_VIEWS = (
    declared_value_vs_price_baseline,
    importer_commodity_novelty,
    importer_registration_age,
)
SERVICES = (
    customs_risk_declaration_v1,
    customs_risk_declaration_v2,
    customs_risk_ens_v1,
    customs_risk_ens_v2,
    customs_risk_ens_v3,
)


def definitions() -> list[Any]:
    """All Feast objects of the repository, in the order they are registered."""
    return [*ENTITIES, declaration_request, *FEATURE_VIEWS, *ON_DEMAND_VIEWS, *SERVICES]
