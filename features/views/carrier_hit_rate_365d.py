"""Carrier filing volume and control history (ENS)."""

from features.entities import carrier
from features.views import snapshot_view

carrier_hit_rate_365d = snapshot_view(
    "carrier_hit_rate_365d",
    carrier,
    {
        "carrier_filings_90d": "ENS filings by the carrier in the previous 90 days.",
        "carrier_controls_365d": "Controlled filings with an outcome known before the event day.",
        "carrier_irregularities_365d": "Of those, filings found irregular.",
        "carrier_hit_rate_365d": "Smoothed hit rate of the carrier's filings.",
        "carrier_safety_security_hit_rate_365d": "Smoothed safety & security hit rate.",
    },
    "Control outcomes of ENS filings by a carrier.",
    pii=True,
)
