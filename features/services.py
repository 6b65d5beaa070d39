"""Feature services: the versioned feature sets models are trained on and served with.

A service is immutable once a model has been trained on it: change a feature, add a new version.
The model records the service name; serving asks Feast for exactly that service.
"""

from __future__ import annotations

from feast import FeatureService

from features.on_demand.declared_value_vs_price_baseline import declared_value_vs_price_baseline
from features.on_demand.importer_commodity_novelty import importer_commodity_novelty
from features.on_demand.importer_registration_age import importer_registration_age
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
    "ALL_SERVICES",
    "OPTIONAL_VIEWS",
    "SERVICES_BY_SUBJECT",
    "SERVICE_FOR_SUBJECT",
    "customs_risk_declaration_v1",
    "customs_risk_declaration_v2",
    "customs_risk_ens_v1",
    "customs_risk_ens_v2",
    "customs_risk_ens_v3",
]

_TAGS = {"team": "customs-risk", "pii": "true"}

customs_risk_declaration_v1 = FeatureService(
    name="customs_risk_declaration_v1",
    features=[
        importer_declaration_count_365d,
        importer_hit_rate_365d,
        importer_registration_current,
        importer_chapter_declaration_count_365d,
        importer_origin_declaration_count_365d,
        declarant_hit_rate_365d,
        seller_hit_rate_365d,
        commodity_hit_rate_365d,
        route_hit_rate_365d,
        commodity_origin_price_baseline_365d,
        commodity_price_baseline_365d,
        declared_value_vs_price_baseline,
        importer_commodity_novelty,
        importer_registration_age,
    ],
    description="Features of import declaration items, for every declaration risk-area model.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)

# v2 adds the control history of the full national commodity code (subdivisions below HS6
# carry their own duty rates and measures) and of commodity × origin. v1 stays registered,
# unchanged, for the models trained on it.
customs_risk_declaration_v2 = FeatureService(
    name="customs_risk_declaration_v2",
    features=[
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
        declared_value_vs_price_baseline,
        importer_commodity_novelty,
        importer_registration_age,
    ],
    description="Features of import declaration items, with the full national commodity code's "
    "and the commodity × origin's control history.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)

customs_risk_ens_v1 = FeatureService(
    name="customs_risk_ens_v1",
    features=[
        importer_declaration_count_365d,
        importer_hit_rate_365d,
        importer_registration_current,
        carrier_hit_rate_365d,
        route_hit_rate_365d,
        commodity_hit_rate_365d,
        importer_registration_age,
    ],
    description="Features of ENS filings (the consignee is looked up as an importer).",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)

# v2 adds the consignor's history (operator profiling for parties without an EORI). v1 stays
# registered, unchanged, for the models that were trained on it.
customs_risk_ens_v2 = FeatureService(
    name="customs_risk_ens_v2",
    features=[
        importer_declaration_count_365d,
        importer_hit_rate_365d,
        importer_registration_current,
        carrier_hit_rate_365d,
        consignor_hit_rate_365d,
        route_hit_rate_365d,
        commodity_hit_rate_365d,
        importer_registration_age,
    ],
    description="Features of ENS filings, with the consignor's control history.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)

# v3 adds the record of the itinerary's transit countries (transshipment hubs), learned from
# control results rather than a fixed list, so a hub that turns risky is picked up.
customs_risk_ens_v3 = FeatureService(
    name="customs_risk_ens_v3",
    features=[
        importer_declaration_count_365d,
        importer_hit_rate_365d,
        importer_registration_current,
        carrier_hit_rate_365d,
        consignor_hit_rate_365d,
        route_hit_rate_365d,
        first_transit_hub_hit_rate_365d,
        last_transit_hub_hit_rate_365d,
        commodity_hit_rate_365d,
        importer_registration_age,
    ],
    description="Features of ENS filings, with the consignor's and the transit hubs' history.",
    owner="risk-analytics@customs.example",
    tags=_TAGS,
)

# Views a registered service may lack: reference data a workspace may not have (no operator
# register); their features are then missing for every item (cold-start values), as for an
# operator the register does not know.
OPTIONAL_VIEWS: frozenset[str] = frozenset({importer_registration_current.name})

# Every service by the subject type its models score: a workspace without ENS filings
# registers no ENS service.
SERVICES_BY_SUBJECT: dict[str, list[FeatureService]] = {
    "declaration": [customs_risk_declaration_v1, customs_risk_declaration_v2],
    "ens": [customs_risk_ens_v1, customs_risk_ens_v2, customs_risk_ens_v3],
}
ALL_SERVICES = [service for services in SERVICES_BY_SUBJECT.values() for service in services]
# The service new models of each subject type are trained on.
SERVICE_FOR_SUBJECT = {
    "declaration": customs_risk_declaration_v2.name,
    "ens": customs_risk_ens_v3.name,
}
