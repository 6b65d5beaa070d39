"""MLflow tracking and the model registry (the workspace's SQLite store, or PostgreSQL).

Models cross from training to serving by registered name and alias: ``challenger`` is the
latest candidate, ``champion`` what serves. Stages are not used (deprecated in MLflow 3).
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import TYPE_CHECKING, Any

from training.config import TrainingSettings
from training.model import AreaModel

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "configure_mlflow",
    "load_version",
    "registered_models",
    "registered_name",
    "version_by_alias",
]

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


def registered_name(settings: TrainingSettings, subject: str, area: str) -> str:
    return f"{settings.model_prefix}_{subject}_{area}"


def configure_mlflow(settings: TrainingSettings) -> MlflowClient:
    """Point MLflow at the configured store (the workspace's SQLite file, or PostgreSQL) and the
    experiment; returns a client."""
    from data_contracts.deployment import prepare_mlflow_store

    workspace = settings.workspace.ensure()
    uri = settings.mlflow_tracking_uri
    artifacts = settings.deployment.artifacts_dir(workspace)
    for name, value in settings.deployment.environment(workspace).items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # MLflow's own SQLAlchemy mapper deprecation, printed on every start.
    warnings.filterwarnings("ignore", message=".*noload.*loader strategy is deprecated")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow
    from mlflow import MlflowClient

    prepare_mlflow_store(uri, artifacts)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        experiment_id = client.create_experiment(
            settings.experiment, artifact_location=artifacts.as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return client


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version behind ``name@alias``, or None when the alias (or model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def version_tags(version: Any) -> dict[str, str]:
    return dict(version.tags or {})


def load_version(
    client: MlflowClient, name: str, alias: str
) -> tuple[ModelVersion, AreaModel] | None:
    """(ModelVersion, AreaModel) behind ``name@alias``, read from its logged artifacts."""
    import json
    import tempfile
    from pathlib import Path

    import lightgbm as lgb
    import mlflow

    version = version_by_alias(client, name, alias)
    if version is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(f"models:/{name}/{version.version}", dst_path=tmp)
        )
        artifacts = folder / "artifacts"
        booster = lgb.Booster(model_file=str(artifacts / "model.txt"))
        spec = json.loads((artifacts / "spec.json").read_text())
    return version, AreaModel(booster=booster, spec=spec)


def registered_models(client: MlflowClient, prefix: str) -> list[str]:
    """Names of this deployment's registered models."""
    return sorted(
        m.name for m in client.search_registered_models(filter_string=f"name LIKE '{prefix}_%'")
    )
