"""Importer register data: AEO status and EORI registration date (static reference data)."""

from datetime import timedelta

from features.entities import importer
from features.views import snapshot_view

importer_registration_current = snapshot_view(
    "importer_registration_current",
    importer,
    {
        "importer_aeo": "1 if the importer holds an AEO authorisation.",
        "registered_epoch_day": "EORI registration date, days since 1970-01-01.",
    },
    "The operator register: AEO status is a feature, not an exemption from risk analysis.",
    pii=True,
    ttl=timedelta(0),  # reference data: never stale
)
