"""Declarant (customs representative) control history."""

from features.entities import declarant
from features.views import snapshot_view

declarant_hit_rate_365d = snapshot_view(
    "declarant_hit_rate_365d",
    declarant,
    {
        "declarant_declarations_365d": "Items lodged by the declarant in the past year.",
        "declarant_controls_365d": "Controlled items with an outcome known before the event day.",
        "declarant_irregularities_365d": "Of those, items found irregular.",
        "declarant_hit_rate_365d": "Smoothed hit rate of the declarant's controlled items.",
        "declarant_financial_hit_rate_365d": "Smoothed financial hit rate.",
    },
    "Control outcomes of items a declarant lodged.",
    pii=True,
)
