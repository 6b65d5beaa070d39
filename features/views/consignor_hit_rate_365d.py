"""ENS consignor filing volume and control history (the shipper behind the goods)."""

from features.entities import consignor
from features.views import snapshot_view

consignor_hit_rate_365d = snapshot_view(
    "consignor_hit_rate_365d",
    consignor,
    {
        "consignor_filings_90d": "ENS filings naming this consignor in the previous 90 days.",
        "consignor_controls_365d": "Controlled filings with an outcome known before the event day.",
        "consignor_irregularities_365d": "Of those, filings found irregular.",
        "consignor_hit_rate_365d": "Smoothed hit rate of the consignor's filings.",
        "consignor_safety_security_hit_rate_365d": "Smoothed safety & security hit rate.",
    },
    "Control outcomes of ENS filings from a consignor (operator profiling without an EORI).",
    pii=True,
)
