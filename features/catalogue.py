"""What each model feature means, for model cards: its Feast view and the descriptions.

Request features (computed from the record itself) have no view; Feast features take the
description their view declares for them, or the view's own description (on-demand views).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FeatureMeaning", "feature_meanings"]


@dataclass(frozen=True)
class FeatureMeaning:
    view: str
    view_description: str
    description: str


def feature_meanings(service_name: str) -> dict[str, FeatureMeaning]:
    """Feature name -> where it comes from, for the features of one feature service."""
    from features.services import ALL_SERVICES

    service = next((s for s in ALL_SERVICES if s.name == service_name), None)
    if service is None:
        return {}
    meanings: dict[str, FeatureMeaning] = {}
    for view in service._features:  # the view objects the service was built from
        if isinstance(view, str):
            continue
        for feature in view.features:
            meanings[feature.name] = FeatureMeaning(
                view.name, view.description, feature.description or view.description
            )
    return meanings
