"""Which Feast objects a workspace registers, from the record kinds it holds; one builder per
view; one definition site for Feast's own CLI."""

from __future__ import annotations

from pathlib import Path

from features.repo import FEATURE_VIEWS, ON_DEMAND_VIEWS, SERVICES, definitions
from features.services import ALL_SERVICES, SERVICE_FOR_SUBJECT
from features.store import registration_for
from features.tables import BUILDERS

EVERY_KIND = {"declarations", "ens", "control-results", "operators"}


def test_every_view_has_one_builder_and_every_builder_a_view() -> None:
    assert sorted(b.view for b in BUILDERS) == sorted(v.name for v in FEATURE_VIEWS)
    views_dir = Path(__file__).parents[3] / "features" / "views"
    view_files = {p.stem for p in views_dir.glob("*.py") if p.stem != "__init__"}
    assert view_files == {v.name for v in FEATURE_VIEWS}, "file name = view name"


def test_the_definition_site_holds_everything_the_services_use() -> None:
    used = {p.name for s in ALL_SERVICES for p in s.feature_view_projections}
    assert used == {v.name for v in FEATURE_VIEWS} | {o.name for o in ON_DEMAND_VIEWS}
    assert {s.name for s in SERVICES} == {s.name for s in ALL_SERVICES}
    names = [obj.name for obj in definitions()]
    assert len(names) == len(set(names)), "each object once"


def test_a_full_workspace_registers_everything() -> None:
    registration = registration_for(EVERY_KIND)
    assert registration.missing_views == {} and registration.skipped_services == []
    assert set(registration.names) == {obj.name for obj in definitions()}


def test_declarations_and_control_results_only() -> None:
    registration = registration_for({"declarations", "control-results"})
    names = set(registration.names)
    assert SERVICE_FOR_SUBJECT["declaration"] in names
    assert SERVICE_FOR_SUBJECT["ens"] not in names
    assert set(registration.skipped_services) == {
        "customs_risk_ens_v1",
        "customs_risk_ens_v2",
        "customs_risk_ens_v3",
    }
    assert registration.missing_views["carrier_hit_rate_365d"] == {"ens"}
    assert registration.missing_views["importer_registration_current"] == {"operators"}
    assert "importer_registration_current" not in names, "served as cold-start values"
    assert "importer_registration_age" in names, "its on-demand view still runs (on NaN)"


def test_without_control_results_no_service_is_registered() -> None:
    registration = registration_for({"declarations", "ens", "operators"})
    assert not {s.name for s in ALL_SERVICES} & set(registration.names)
