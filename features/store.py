"""Building the Feast store from settings, and the apply / materialize steps."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import yaml

from data_contracts.progress import Progress, advance, quiet
from features.config import FeatureStoreSettings
from features.data_sources import table_location

if TYPE_CHECKING:
    from feast import FeatureStore

__all__ = [
    "Registration",
    "apply_definitions",
    "feature_store",
    "materialize",
    "registration_for",
    "repo_config_dict",
]

logger = logging.getLogger(__name__)

_YAML = Path(__file__).with_name("feature_store.yaml")


def repo_config_dict(settings: FeatureStoreSettings) -> dict[str, Any]:
    """The Feast repo config: ``feature_store.yaml`` with the workspace paths filled in."""
    text = Template(_YAML.read_text()).substitute(CRISK_FEAST_DIR=str(settings.feast_dir))
    config: dict[str, Any] = yaml.safe_load(text)
    if settings.online_store == "redis":
        config["online_store"] = {
            "type": "redis",
            "connection_string": settings.redis_connection_string,
        }
    return config


def _quiet_feast() -> None:
    # Feast resets warning filters on import; these two fire on every apply / offline query.
    warnings.filterwarnings("ignore", message="On demand feature view is an experimental")
    warnings.filterwarnings("ignore", message=r".*fetch_arrow_table\(\) is deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("feast", "feast.infra.registry.caching_registry"):
        logging.getLogger(name).setLevel(logging.WARNING)


def feature_store(settings: FeatureStoreSettings) -> FeatureStore:
    """A FeatureStore on the workspace (imports Feast, about 3 s the first time)."""
    from feast import FeatureStore, RepoConfig

    _quiet_feast()
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(**repo_config_dict(settings))
    return FeatureStore(config=config, repo_path=str(settings.feast_dir))


@dataclass(frozen=True)
class Registration:
    """What a workspace registers: the objects, and the views and services it leaves out.

    ``missing_views``: views whose records the workspace lacks; a registered service that
    names one (the operator register's) serves its features as cold-start values.
    """

    objects: list[Any]
    missing_views: dict[str, frozenset[str]]
    skipped_services: list[str]

    @property
    def names(self) -> list[str]:
        return [obj.name for obj in self.objects]


def registration_for(kinds: Collection[str] | None = None) -> Registration:
    """The Feast objects a workspace holding record ``kinds`` registers (None: every kind).

    A view is registered when the records its table is built from exist; a service when each
    of its views is, or may be missing (``OPTIONAL_VIEWS``: reference data such as the operator
    register); an on-demand view when a registered service uses it.
    """
    from features.data_sources import declaration_request
    from features.repo import ENTITIES, FEATURE_VIEWS, ON_DEMAND_VIEWS, SERVICES
    from features.services import OPTIONAL_VIEWS
    from features.tables import BUILDERS

    reads = {builder.view: builder.reads for builder in BUILDERS}
    present = frozenset(kinds) if kinds is not None else frozenset().union(*reads.values())
    missing: dict[str, frozenset[str]] = {
        view.name: frozenset(str(kind) for kind in reads[view.name] - present)
        for view in FEATURE_VIEWS
        if reads[view.name] - present
    }
    views = [view for view in FEATURE_VIEWS if view.name not in missing]
    services: list[Any] = []
    skipped: list[Any] = []
    for service in SERVICES:
        lacking = {p.name for p in service.feature_view_projections} & set(missing)
        (skipped if lacking - OPTIONAL_VIEWS else services).append(service)
    used = {p.name for service in services for p in service.feature_view_projections}
    odfvs = [odfv for odfv in ON_DEMAND_VIEWS if odfv.name in used]
    return Registration(
        objects=[*ENTITIES, declaration_request, *views, *odfvs, *services],
        missing_views=missing,
        skipped_services=[service.name for service in skipped],
    )


def apply_definitions(
    settings: FeatureStoreSettings, kinds: Collection[str] | None = None
) -> Registration:
    """Register the entities, views and services of a workspace holding record ``kinds``.

    Views and services registered earlier that the workspace can no longer feed are removed,
    so nothing reads a table that is not rebuilt any more.
    """
    store = feature_store(settings)
    registration = registration_for(kinds)
    objects = registration.objects
    # Sources are defined relative to the repo; Feast's DuckDB store resolves paths against the
    # working directory, so the registry gets this workspace's absolute paths: the table as it
    # is on disk (a file or a partitioned directory). The path is rebuilt from the view name
    # every time: the definition objects are shared module state.
    for obj in objects:
        source = getattr(obj, "batch_source", None)
        if source is not None and hasattr(source, "file_options"):
            location = table_location(settings.feast_dir, obj.name, settings.offline_layout)
            source.file_options.uri = str(location)
    names = set(registration.names)
    stale: list[Any] = [
        *(v for v in store.list_feature_views() if v.name not in names),
        *(s for s in store.list_feature_services() if s.name not in names),
        *(o for o in store.list_on_demand_feature_views() if o.name not in names),
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        store.apply(objects, objects_to_delete=stale, partial=not stale)
    return registration


def materialize(
    settings: FeatureStoreSettings,
    end: datetime,
    start: datetime | None = None,
    progress: Progress = quiet,
) -> list[str]:
    """Load each view's latest snapshot up to ``end`` into the online store.

    Snapshot views only need their last days before ``end`` (the cut-off snapshot is there);
    reference views without ttl (the operator register) are loaded from their beginning.
    Returns the views materialised.
    """
    store = feature_store(settings)
    recent = start or end - timedelta(days=2)
    register: list[str] = []
    snapshots: list[str] = []
    for view in store.list_feature_views():
        if not table_location(settings.feast_dir, view.name, settings.offline_layout).exists():
            logger.warning("view %s has no table: not materialised", view.name)
            continue
        (register if not view.ttl or view.ttl.total_seconds() == 0 else snapshots).append(view.name)
    task = "loading the online store (feature views)"
    views = [(name, recent) for name in snapshots]
    views += [(name, datetime(1970, 1, 1, tzinfo=UTC)) for name in register]
    advance(progress, task, 0, len(views))
    # Feast prints progress bars to stdout with print(); keep the CLI's output clean. One view
    # at a time (the same work Feast does in its own loop) so the count can be shown.
    for done, (name, first) in enumerate(views, 1):
        with contextlib.redirect_stdout(io.StringIO()):
            store.materialize(start_date=first, end_date=end, feature_views=[name])
        advance(progress, task, done, len(views))
    return snapshots + register
