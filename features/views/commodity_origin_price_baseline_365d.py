"""Baseline price per HS6 × origin (the JRC THESEUS idea): robust median and spread."""

from features.entities import commodity_origin
from features.views import snapshot_view

commodity_origin_price_baseline_365d = snapshot_view(
    "commodity_origin_price_baseline_365d",
    commodity_origin,
    {
        "co_median_log_unit_value": "Median log(EUR/kg) of the cell's past-year declarations.",
        "co_spread_log_unit_value": "Robust spread (IQR/1.349) of log(EUR/kg).",
        "co_observations": "Declarations behind the baseline.",
    },
    "Monthly baseline unit value per commodity × origin over the previous 365 days.",
)
