"""How often an importer declared goods of this HS chapter before."""

from features.entities import importer_chapter
from features.views import snapshot_view

importer_chapter_declaration_count_365d = snapshot_view(
    "importer_chapter_declaration_count_365d",
    importer_chapter,
    {"importer_chapter_declarations_365d": "Importer's items of this chapter in the past year."},
    "Importer × HS chapter activity: a first-time commodity is a classic risk indicator.",
    pii=True,
)
