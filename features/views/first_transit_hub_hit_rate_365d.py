"""Control history of the first transit country of an ENS itinerary (transshipment hubs)."""

from features.entities import first_transit_hub
from features.views import snapshot_view

first_transit_hub_hit_rate_365d = snapshot_view(
    "first_transit_hub_hit_rate_365d",
    first_transit_hub,
    {
        "first_transit_hub_filings_90d": "ENS filings transiting this country, previous 90 days.",
        "first_transit_hub_controls_365d": "Controlled filings through it, outcome known before.",
        "first_transit_hub_hit_rate_365d": "Smoothed hit rate of filings through this country.",
        "first_transit_hub_safety_security_hit_rate_365d": (
            "Smoothed safety & security hit rate of filings through this country."
        ),
    },
    "Transshipment through high-risk countries: a hub's record, learned from control results "
    "(no fixed list, so a hub that turns risky shows as soon as controls find it).",
)
