"""Baseline price per HS6 over all origins: the fallback for thin commodity × origin cells."""

from features.entities import commodity
from features.views import snapshot_view

commodity_price_baseline_365d = snapshot_view(
    "commodity_price_baseline_365d",
    commodity,
    {
        "hs6_median_log_unit_value": "Median log(EUR/kg) of the HS6's past-year declarations.",
        "hs6_spread_log_unit_value": "Robust spread (IQR/1.349) of log(EUR/kg).",
        "hs6_observations": "Declarations behind the baseline.",
    },
    "Monthly baseline unit value per HS6 over the previous 365 days.",
)
