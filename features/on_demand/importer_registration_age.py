"""Days between the importer's EORI registration and the declaration."""

from __future__ import annotations

from typing import Any

from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

from features.data_sources import declaration_request
from features.views.importer_registration_current import importer_registration_current


# Fields carry no description: Feast's schema inference compares Fields including it.
@on_demand_feature_view(
    sources=[importer_registration_current, declaration_request],
    schema=[Field(name="registration_age_days", dtype=Float64)],
    mode="python",
    description="Newly registered operators are riskier (missing-trader schemes).",
    owner="risk-analytics@customs.example",
    tags={"team": "customs-risk", "pii": "false"},
)
def importer_registration_age(inputs: dict[str, Any]) -> dict[str, Any]:
    # Imported here: Feast stores the function with dill, without its module globals.
    from features.transforms import registration_age

    return {name: values.tolist() for name, values in registration_age(inputs).items()}
