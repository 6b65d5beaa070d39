"""The pipeline steps behind the CLI: pure functions of settings that return what they made.

Each step is callable from Python (tests, notebooks, ``retrain``) and returns artefact
references (paths, registered model versions) rather than leaving them for the next step to
find on disk.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from data_contracts.dataset import read_manifest
from data_contracts.inventory import RecordInventory
from data_contracts.io import read_records
from data_contracts.progress import Progress, quiet
from data_contracts.report import write_report
from data_contracts.validate import ValidationResult, validate_frame
from data_contracts.workspace import Workspace
from pipelines.config import PipelineSettings
from pipelines.ingest import IngestResult, data_file, ingest_file, ingest_frame
from world.generate import WorldConfig, WorldFiles, generate_world, write_world

if TYPE_CHECKING:
    from features.store import Registration
    from features.tables import FeatureTableInputs

__all__ = [
    "BootstrapResult",
    "MaterializeResult",
    "ValidateResult",
    "apply_features",
    "bootstrap",
    "feature_inputs",
    "has_champion",
    "ingest_feedback",
    "ingest_world",
    "make_world",
    "materialize_features",
    "train_models",
    "validate_file",
    "workspace_notes",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidateResult:
    result: ValidationResult
    valid_path: Path
    quarantine_path: Path
    report_path: Path

    @property
    def exit_code(self) -> int:
        return 0 if self.result.n_quarantined == 0 else 1


def make_world(
    out: Path,
    *,
    seed: int,
    declarations: int,
    ens: int | None,
    weeks: int,
    start: date,
    progress: Progress = quiet,
) -> WorldFiles:
    """Generate and write a synthetic world."""
    config = WorldConfig(seed=seed, declarations=declarations, ens=ens, weeks=weeks, start=start)
    world = generate_world(config, progress)
    progress("writing the world files")
    return write_world(world, out)


def validate_file(
    kind: str, path: Path, out: Path, progress: Progress = quiet, identifiers: str = "eori"
) -> ValidateResult:
    """Validate a file against its contract; write valid, quarantine and the HTML report.

    ``identifiers`` is the party-id format (``eori``, or ``opaque`` for national ids).

    Raises:
        UnusableInput: the file cannot be validated at all (exit code 2 in the CLI).
    """
    progress(f"reading {path.name}")
    raw = read_records(path)
    result = validate_frame(raw, kind, source=str(path), identifiers=identifiers, progress=progress)
    progress("writing valid rows, quarantine and the report")
    out.mkdir(parents=True, exist_ok=True)
    valid_path = out / "valid.parquet"
    quarantine_path = out / "quarantine.parquet"
    result.valid.to_parquet(valid_path, index=False)
    result.quarantine.to_parquet(quarantine_path, index=False)
    report_path = write_report(result, out / "report.html", str(path))
    return ValidateResult(result, valid_path, quarantine_path, report_path)


def ingest_world(
    settings: PipelineSettings, files: WorldFiles, progress: Progress = quiet
) -> list[IngestResult]:
    """Validate the world's feeds into the workspace's data store (and copy the register)."""
    workspace = settings.workspace.ensure()
    results = []
    for kind, path in (
        ("declarations", files.declarations),
        ("ens", files.ens),
        ("control-results", files.control_results),
    ):
        results.append(
            ingest_file(
                workspace,
                kind,
                path,
                progress,
                reporting_delays=settings.reporting_delay_days,
                layout=settings.records_layout,
            )
        )
    shutil.copy(files.operators, workspace.data_dir / "operators.parquet")
    return results


def ingest_feedback(
    settings: PipelineSettings, path: Path | None = None, progress: Progress = quiet
) -> IngestResult:
    """Control results into the data store: from a file, or everything ``POST /feedback`` stored."""
    workspace = settings.workspace.ensure()
    if path is not None:
        progress(f"reading {path.name}")
        frame = _audited_selections(settings, read_records(path))
        return ingest_frame(
            workspace,
            "control-results",
            frame,
            str(path),
            progress,
            reporting_delays=settings.reporting_delay_days,
            layout=settings.records_layout,
        )
    from serving.state import open_feedback_store

    store = open_feedback_store(settings.serving)
    frame = store.frame() if store is not None else pd.DataFrame()
    if frame.empty:  # the service is up but no officer has reported yet
        return IngestResult("control-results", 0, 0, 0, 0, data_file(workspace, "control-results"))
    return ingest_frame(
        workspace,
        "control-results",
        frame,
        str(store.path) if store is not None else str(workspace.feedback_db),
        progress,
        reporting_delays=settings.reporting_delay_days,
        layout=settings.records_layout,
    )


def _audited_selections(settings: PipelineSettings, frame: pd.DataFrame) -> pd.DataFrame:
    """Control results from a file, with the service's recorded selection where it scored the
    subject (as ``POST /feedback`` does; see serving.selection)."""
    needed = {"subject_type", "subject_id", "selection_reason"}
    if frame.empty or not needed <= set(frame.columns):
        return frame
    from serving.selection import check_selections, reconcile
    from serving.state import open_audit_log

    audit = open_audit_log(settings.serving)
    if audit is None:
        return frame
    records = frame.to_dict("records")
    checks = check_selections(audit, records)
    mismatches = sum(check.status == "mismatch" for check in checks)
    if mismatches:
        logger.warning(
            "%d results contradict the audit log's selection: stored with it", mismatches
        )
    reconciled = pd.DataFrame(
        [reconcile(r, c.as_dict()) for r, c in zip(records, checks, strict=True)]
    )
    return reconciled.astype({c: object for c in reconciled.columns if c in frame.columns})


REVENUE_UNKNOWN_NOTE = (
    "revenue recovered is unknown in this dataset (dataset.json: revenue_known false): no "
    "revenue model is trained, Revenue@n% is not reported and the blue channel is off"
)


def workspace_notes(settings: PipelineSettings) -> list[str]:
    """One line per record kind the workspace lacks, saying what every step does without it,
    and one if the dataset's revenue is unknown."""
    notes = RecordInventory.of(settings.workspace).notes()
    if not read_manifest(settings.workspace).revenue_known:
        notes.append(REVENUE_UNKNOWN_NOTE)
    return notes


def _required_records(workspace: Workspace) -> RecordInventory:
    inventory = RecordInventory.of(workspace)
    for kind, held in (
        ("declarations", inventory.declarations),
        ("control-results", inventory.control_results),
    ):
        if not held:
            raise FileNotFoundError(
                f"{workspace.record_file(kind)}: no validated {kind} yet; run `crisk ingest "
                f"{kind} FILE` (or `crisk import`) first"
            )
    return inventory


def apply_features(settings: PipelineSettings) -> Registration:
    """Register the views and services the workspace's records can feed."""
    from features.store import apply_definitions

    inventory = RecordInventory.of(settings.workspace)
    return apply_definitions(settings.training.features, inventory.kinds)


@dataclass(frozen=True)
class MaterializeResult:
    tables: dict[str, Path]
    cutoff: pd.Timestamp
    views: list[str]
    skipped: dict[str, frozenset[str]] = field(default_factory=dict)  # view -> missing kinds


def feature_inputs(workspace: Workspace) -> FeatureTableInputs:
    """The data store's files the feature tables are computed from."""
    from features.tables import FeatureTableInputs

    return FeatureTableInputs.of(workspace)


def materialize_features(
    settings: PipelineSettings, progress: Progress = quiet
) -> MaterializeResult:
    """Recompute the point-in-time feature tables from the data store and load the online store."""
    from features.store import apply_definitions, materialize
    from features.tables import build_tables, engine_description

    workspace = settings.workspace
    inventory = _required_records(workspace)
    inputs = feature_inputs(workspace)
    features = settings.training.features
    progress(f"computing the point-in-time feature tables ({engine_description(features)})")
    tables = build_tables(features, inputs, workspace.feature_tables_dir)
    progress("registering the Feast definitions")
    apply_definitions(settings.training.features, inventory.kinds)
    views = materialize(
        settings.training.features,
        end=tables.cutoff.to_pydatetime() + pd.Timedelta(hours=1),
        progress=progress,
    )
    return MaterializeResult(
        tables=tables.written, cutoff=tables.cutoff, views=views, skipped=tables.skipped
    )


def train_models(settings: PipelineSettings, progress: Progress = quiet) -> list[Any]:
    """Train every subject type the workspace has records and control results for."""
    from training.train import train

    inventory = _required_records(settings.workspace)
    return train(settings.training, subjects=inventory.subjects, progress=progress)


def areas_without_model(settings: PipelineSettings) -> dict[str, str]:
    """Why the latest training run left each area without a model (training and validation
    hits against the minimum), for a person reading the result."""
    from training.registry import configure_mlflow
    from training.train import no_model_reasons

    client = configure_mlflow(settings.training)
    experiment = client.get_experiment_by_name(settings.training.experiment)
    if experiment is None:
        return {}
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.run_name = 'crisk train'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return no_model_reasons(runs[0].data.tags) if runs else {}


def has_champion(settings: PipelineSettings) -> bool:
    """True when the registry already holds a champion (``make run`` then skips the bootstrap)."""
    if not settings.training.deployment.registry_exists(settings.workspace):
        return False
    from training.registry import CHAMPION, configure_mlflow

    client = configure_mlflow(settings.training)
    models = client.search_registered_models(
        filter_string=f"name LIKE '{settings.training.model_prefix}_%'"
    )
    return any(CHAMPION in m.aliases for m in models)


@dataclass
class BootstrapResult:
    world: WorldFiles
    ingested: list[IngestResult]
    materialized: MaterializeResult
    models: list[Any] = field(default_factory=list)


def bootstrap(settings: PipelineSettings, progress: Progress = quiet) -> BootstrapResult:
    """Synthetic world → contracts → features → models: a workspace ready to serve."""
    world = make_world(
        settings.workspace.world_dir,
        seed=settings.world_seed,
        declarations=settings.world_declarations,
        ens=settings.world_ens,
        weeks=settings.world_weeks,
        start=WorldConfig().start,
        progress=progress,
    )
    ingested = ingest_world(settings, world, progress)
    materialized = materialize_features(settings, progress)
    demo = settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={"min_positive_labels": settings.bootstrap_min_positive_labels}
            )
        }
    )
    models = train_models(demo, progress)
    return BootstrapResult(world=world, ingested=ingested, materialized=materialized, models=models)
