"""Control history of the full national commodity code (CN8 / TARIC10 / national subdivision)."""

from features.entities import national_commodity
from features.views import snapshot_view

national_commodity_hit_rate_365d = snapshot_view(
    "national_commodity_hit_rate_365d",
    national_commodity,
    {
        "national_commodity_declarations_365d": "Items with this full code in the past year.",
        "national_commodity_controls_365d": "Controlled items with an outcome known before.",
        "national_commodity_irregularities_365d": "Of those, items found irregular.",
        "national_commodity_hit_rate_365d": "Smoothed hit rate of the full code.",
        "national_commodity_financial_hit_rate_365d": "Smoothed financial hit rate.",
        "national_commodity_ipr_hit_rate_365d": "Smoothed IPR hit rate.",
        "national_commodity_product_safety_hit_rate_365d": "Smoothed product-safety hit rate.",
        "national_commodity_prohibitions_restrictions_hit_rate_365d": "Smoothed P&R hit rate.",
    },
    "Control outcomes of items declared under one full commodity code: national subdivisions "
    "below HS6 (duty rates, measures) carry risk the HS6 subheading averages away.",
)
