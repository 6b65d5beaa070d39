"""Commodity (HS6) control history per risk area."""

from features.entities import commodity
from features.views import snapshot_view

commodity_hit_rate_365d = snapshot_view(
    "commodity_hit_rate_365d",
    commodity,
    {
        "commodity_declarations_365d": "Items of this HS6 declared in the past year.",
        "commodity_controls_365d": "Controlled items with an outcome known before the event day.",
        "commodity_irregularities_365d": "Of those, items found irregular.",
        "commodity_hit_rate_365d": "Smoothed hit rate of the commodity.",
        "commodity_financial_hit_rate_365d": "Smoothed financial hit rate.",
        "commodity_ipr_hit_rate_365d": "Smoothed IPR hit rate.",
        "commodity_product_safety_hit_rate_365d": "Smoothed product-safety hit rate.",
        "commodity_prohibitions_restrictions_hit_rate_365d": "Smoothed P&R hit rate.",
    },
    "Control outcomes of items of one HS6 subheading.",
)
