"""Model cards: one self-contained HTML page per served model, for auditors and reviewers.

A card describes one registered model version as it serves (the bundle's versions, not whatever
the registry's alias points at now) and is built only from what was recorded: the version's
spec, reference sample and training run (test-window labels and scores, parameters), the latest
``crisk evaluate`` run that scored this exact version, the training run's notes on areas left
without a model, and every promotion-gate decision about the model in MLflow. Nothing is
re-trained or re-evaluated; only the SHAP values of the reference sample are computed. This
module gathers the content; ``training.model_card_page`` lays it out. Each card is also logged to
MLflow with the model version.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from data_contracts.dataset import read_manifest
from features.model_input import encode
from training.config import TrainingSettings
from training.model_card_page import SHAP_ROWS, ModelCard, index_page, render_card
from training.registry import configure_mlflow

__all__ = ["ModelCard", "ModelCardsResult", "collect_card", "render_card", "write_model_cards"]

logger = logging.getLogger(__name__)

_EVALUATION_RUNS = 30  # the newest evaluation runs searched for one that scored a version


@dataclass
class ModelCardsResult:
    index: Path
    cards: dict[str, Path]  # registered model name -> card
    logged: dict[str, str] = field(default_factory=dict)  # name -> artifact path in its run


# --- collecting ---------------------------------------------------------------------------------


def _artifacts(client: Any, run_id: str) -> Any:
    """The run's artifact store, resolved from its own location.

    Not ``client.download_artifacts``: MLflow caches artifact stores per run id for the whole
    process, so a process that has read another workspace with the same run ids (a copied
    workspace, a notebook comparing two) would read and write the other one's files.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(client.get_run(run_id).info.artifact_uri)


def _download_json(client: Any, run_id: str, path: str, folder: Path) -> dict[str, Any] | None:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        local = _artifacts(client, run_id).download_artifacts(path, str(folder))
        return json.loads(Path(local).read_text())
    except Exception as error:  # an artifact not logged (older runs): the card says so
        logger.debug("run %s has no %s: %s", run_id, path, error)
        return None


def _test_scores(client: Any, run_id: str, folder: Path) -> pd.DataFrame | None:
    try:
        local = _artifacts(client, run_id).download_artifacts(
            "diagnostics/test_scores.parquet", str(folder)
        )
    except Exception:  # trained before test scores were logged
        return None
    return pd.read_parquet(local)


def _evaluation_for(
    client: Any, experiment_id: str, name: str, version: str, cache: dict[str, Any], folder: Path
) -> tuple[dict[str, Any] | None, str | None]:
    """The newest ``crisk evaluate`` report that scored exactly ``name`` version ``version``."""
    runs = client.search_runs(
        [experiment_id],
        filter_string="attributes.run_name LIKE 'crisk evaluate%'",
        order_by=["attributes.start_time DESC"],
        max_results=_EVALUATION_RUNS,
    )
    for run in runs:
        run_id = run.info.run_id
        if run_id not in cache:
            cache[run_id] = _download_json(client, run_id, "metrics.json", folder / run_id)
        report = cache[run_id]
        if report and str(report.get("models", {}).get(name)) == version:
            return report, run_id
    return None, None


def _decisions(client: Any, experiment_id: str, name: str) -> list[dict[str, Any]]:
    """Every promotion-gate decision about ``name``, oldest first (tags, params, metrics)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.model = '{name}'",
        order_by=["attributes.start_time ASC"],
    )
    return [
        {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "time": datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(
                timespec="seconds"
            ),
            "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
        }
        for run in runs
        if "decision" in run.data.tags
    ]


def _areas_without_model(client: Any, run: Any, subject: str, prefix: str) -> dict[str, str]:
    """Areas of this subject with no registered model, and what training recorded about why."""
    from training.train import AREAS_BY_SUBJECT, no_model_tag

    parent_id = run.data.tags.get("mlflow.parentRunId")
    notes = client.get_run(parent_id).data.tags if parent_id else {}
    registered = {m.name for m in client.search_registered_models(f"name LIKE '{prefix}_%'")}
    missing = {}
    for area in AREAS_BY_SUBJECT[subject]:
        if f"{prefix}_{subject}_{area}" in registered:
            continue
        why = notes.get(no_model_tag(subject, area, "classification"))
        missing[area] = (
            f"too few labels when last trained: {why}" if why else "no model registered yet"
        )
    return missing


def _shap(booster: lgb.Booster, reference: pd.DataFrame, spec: Mapping[str, Any]) -> np.ndarray:
    """TreeSHAP values (LightGBM's own, equal to ``shap.TreeExplainer``) on reference rows."""
    rows = reference.head(SHAP_ROWS)
    matrix = encode(rows, spec["features"], spec["vocabularies"])
    return np.asarray(booster.predict(matrix, pred_contrib=True))


def collect_card(
    settings: TrainingSettings,
    client: Any,
    name: str,
    version: str,
    bundle: str | None = None,
    evaluations: dict[str, Any] | None = None,
) -> ModelCard:
    """Read what MLflow holds about ``name`` version ``version`` (nothing is recomputed but
    the SHAP values of the reference sample)."""
    import mlflow

    experiment = client.get_experiment_by_name(settings.experiment)
    model_version = client.get_model_version(name, version)
    run = client.get_run(model_version.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{name}/{version}", dst_path=str(folder / "model")
            )
        )
        artifacts = model_dir / "artifacts"
        spec = json.loads((artifacts / "spec.json").read_text())
        booster = lgb.Booster(model_file=str(artifacts / "model.txt"))
        reference = pd.read_parquet(artifacts / "reference_sample.parquet")
        training_metrics = _download_json(client, run.info.run_id, "metrics.json", folder) or {}
        scores = _test_scores(client, run.info.run_id, folder)
        evaluation, evaluation_run = _evaluation_for(
            client,
            experiment.experiment_id,
            name,
            version,
            {} if evaluations is None else evaluations,
            folder / "evaluations",
        )
    registered = client.get_registered_model(name)
    card = ModelCard(
        name=name,
        version=version,
        spec=spec,
        booster=booster,
        reference=reference,
        registered_at=datetime.fromtimestamp(
            model_version.creation_timestamp / 1000, UTC
        ).isoformat(timespec="seconds"),
        run_id=run.info.run_id,
        aliases=sorted(a for a, v in registered.aliases.items() if str(v) == version),
        params=dict(run.data.params),
        training_metrics=training_metrics,
        test_scores=scores,
        evaluation=evaluation,
        evaluation_run=evaluation_run,
        decisions=_decisions(client, experiment.experiment_id, name),
        areas_without_model=_areas_without_model(
            client, run, spec["subject"], settings.model_prefix
        ),
        manifest=read_manifest(settings.workspace),
        bundle=bundle,
    )
    card.shap = _shap(booster, reference, spec)
    return card


def write_model_cards(
    settings: TrainingSettings,
    models: Mapping[str, str],
    out_dir: Path,
    bundle: str | None = None,
    log_to_mlflow: bool = True,
) -> ModelCardsResult:
    """A card per model version in ``models`` (name -> version) and an index, in ``out_dir``.

    With ``log_to_mlflow`` each card is also logged to its version's training run (artifact
    ``model_card/<name>.html``) and the version is tagged ``model_card`` with that path.
    """
    client = configure_mlflow(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    evaluations: dict[str, Any] = {}
    cards = [
        collect_card(settings, client, name, str(version), bundle, evaluations)
        for name, version in sorted(models.items())
    ]
    paths: dict[str, Path] = {}
    logged: dict[str, str] = {}
    for card in cards:
        path = out_dir / f"{card.name}.html"
        path.write_text(render_card(card))
        paths[card.name] = path
        if log_to_mlflow:
            _artifacts(client, card.run_id).log_artifact(str(path), artifact_path="model_card")
            logged[card.name] = f"model_card/{path.name}"
            client.set_model_version_tag(
                card.name, card.version, "model_card", f"{card.run_id}/model_card/{path.name}"
            )
    index = out_dir / "index.html"
    index.write_text(index_page(cards, paths, bundle))
    return ModelCardsResult(index=index, cards=paths, logged=logged)
