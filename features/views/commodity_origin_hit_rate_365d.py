"""Control history of a commodity (HS6) from one country of origin."""

from features.entities import commodity_origin
from features.views import snapshot_view

commodity_origin_hit_rate_365d = snapshot_view(
    "commodity_origin_hit_rate_365d",
    commodity_origin,
    {
        "commodity_origin_declarations_365d": "Items of this HS6 from this origin, past year.",
        "commodity_origin_controls_365d": "Controlled items with an outcome known before.",
        "commodity_origin_irregularities_365d": "Of those, items found irregular.",
        "commodity_origin_hit_rate_365d": "Smoothed hit rate of the commodity from the origin.",
        "commodity_origin_financial_hit_rate_365d": "Smoothed financial hit rate.",
    },
    "Control outcomes per commodity × origin: origin fraud and anti-dumping evasion show here.",
)
