"""How often an importer declared goods of this origin before."""

from features.entities import importer_origin
from features.views import snapshot_view

importer_origin_declaration_count_365d = snapshot_view(
    "importer_origin_declaration_count_365d",
    importer_origin,
    {"importer_origin_declarations_365d": "Importer's items of this origin in the past year."},
    "Importer × origin activity: a change of the usual origins is a risk indicator.",
    pii=True,
)
