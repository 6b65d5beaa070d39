"""Route volume and control history (declarations: origin>dispatch|mode; ENS: itinerary|mode)."""

from features.entities import route
from features.views import snapshot_view

route_hit_rate_365d = snapshot_view(
    "route_hit_rate_365d",
    route,
    {
        "route_declarations_90d": "Items or filings on the route in the previous 90 days.",
        "route_controls_365d": "Controlled items with an outcome known before the event day.",
        "route_irregularities_365d": "Of those, items found irregular.",
        "route_hit_rate_365d": "Smoothed hit rate on the route.",
        "route_safety_security_hit_rate_365d": "Smoothed safety & security hit rate (ENS).",
    },
    "Control outcomes on a route: transshipment schemes show as risky routes.",
)
