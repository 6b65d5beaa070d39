"""Declared unit value against the commodity × origin price baseline (undervaluation signal)."""

from __future__ import annotations

from typing import Any

from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

from features.data_sources import declaration_request
from features.views.commodity_origin_price_baseline_365d import (
    commodity_origin_price_baseline_365d,
)
from features.views.commodity_price_baseline_365d import commodity_price_baseline_365d


# Fields carry no description: Feast's schema inference compares Fields including it.
@on_demand_feature_view(
    sources=[
        commodity_origin_price_baseline_365d,
        commodity_price_baseline_365d,
        declaration_request,
    ],
    schema=[
        Field(name="log_unit_value", dtype=Float64),
        Field(name="price_z_score", dtype=Float64),
        Field(name="price_ratio_to_baseline", dtype=Float64),
        Field(name="price_baseline_level", dtype=Float64),
    ],
    mode="python",
    description="How far the declared price is from what this commodity from this origin costs.",
    owner="risk-analytics@customs.example",
    tags={"team": "customs-risk", "pii": "false"},
)
def declared_value_vs_price_baseline(inputs: dict[str, Any]) -> dict[str, Any]:
    # Imported here: Feast stores the function with dill, without its module globals.
    from features.transforms import price_deviation

    return {name: values.tolist() for name, values in price_deviation(inputs).items()}
