"""Importer activity: how much it declares, how it describes goods, how long it has been seen."""

from features.entities import importer
from features.views import snapshot_view

importer_declaration_count_365d = snapshot_view(
    "importer_declaration_count_365d",
    importer,
    {
        "importer_declarations_30d": "Items declared in the 30 days before the event day.",
        "importer_declarations_90d": "Items declared in the 90 days before the event day.",
        "importer_declarations_365d": "Items declared in the 365 days before the event day.",
        "importer_customs_value_90d": "Customs value declared in the previous 90 days, EUR.",
        "importer_vague_description_share_365d": "Share of vague goods descriptions, past year.",
        "importer_days_since_first_seen": "Days since the importer's first declaration.",
    },
    "Declaration activity of an importer, counted strictly before the event day.",
    pii=True,
)
