"""Importer control history: controls, irregularities found and revenue recovered."""

from features.entities import importer
from features.views import snapshot_view

importer_hit_rate_365d = snapshot_view(
    "importer_hit_rate_365d",
    importer,
    {
        "importer_controls_365d": "Items controlled whose outcome was known before the event day.",
        "importer_irregularities_365d": "Of those, items found irregular.",
        "importer_hit_rate_365d": "Smoothed share of controls that found an irregularity.",
        "importer_financial_hit_rate_365d": "Smoothed share of controls with a financial finding.",
        "importer_revenue_recovered_365d": "Revenue recovered from the importer's items, EUR.",
    },
    "Outcomes of past controls of an importer; only outcomes known before the event count.",
    pii=True,
)
