"""Everything `crisk features apply` registers: entities, sources, views and services."""

from __future__ import annotations

from typing import Any

__all__ = ["definitions"]


def definitions() -> list[Any]:
    """All Feast objects of the repository (imported here, so importing crisk stays cheap)."""
    from features.data_sources import declaration_request
    from features.entities import ALL_ENTITIES
    from features.services import ALL_SERVICES

    views: dict[str, Any] = {}
    odfvs: dict[str, Any] = {}
    for service in ALL_SERVICES:
        for projection in service._features:  # the view objects the service was built from
            target = odfvs if type(projection).__name__ == "OnDemandFeatureView" else views
            target[getattr(projection, "name", str(projection))] = projection
    return [*ALL_ENTITIES, declaration_request, *views.values(), *odfvs.values(), *ALL_SERVICES]
