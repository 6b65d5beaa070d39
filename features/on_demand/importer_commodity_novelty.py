"""How usual the declared chapter and origin are for the importer."""

from __future__ import annotations

from typing import Any

from feast import Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

from features.views.importer_chapter_declaration_count_365d import (
    importer_chapter_declaration_count_365d,
)
from features.views.importer_declaration_count_365d import importer_declaration_count_365d
from features.views.importer_origin_declaration_count_365d import (
    importer_origin_declaration_count_365d,
)


# Fields carry no description: Feast's schema inference compares Fields including it.
@on_demand_feature_view(
    sources=[
        importer_declaration_count_365d,
        importer_chapter_declaration_count_365d,
        importer_origin_declaration_count_365d,
    ],
    schema=[
        Field(name="chapter_share_365d", dtype=Float64),
        Field(name="origin_share_365d", dtype=Float64),
    ],
    mode="python",
    description="A change of an importer's usual commodities or origins.",
    owner="risk-analytics@customs.example",
    tags={"team": "customs-risk", "pii": "false"},
)
def importer_commodity_novelty(inputs: dict[str, Any]) -> dict[str, Any]:
    # Imported here: Feast stores the function with dill, without its module globals.
    from features.transforms import importer_novelty

    return {name: values.tolist() for name, values in importer_novelty(inputs).items()}
