"""`crisk retrain`: feedback → data → features → train → evaluate → gate → promote.

A composition of the steps, nothing more: each step is the same function its own command runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_contracts.progress import Progress, quiet
from pipelines.config import PipelineSettings
from pipelines.ingest import IngestResult
from pipelines.steps import MaterializeResult, ingest_feedback, materialize_features, train_models

__all__ = ["RetrainResult", "retrain"]

logger = logging.getLogger(__name__)


@dataclass
class RetrainResult:
    feedback: IngestResult | None
    materialized: MaterializeResult
    models: list[Any]
    metrics: dict[str, Any]
    decisions: list[Any] = field(default_factory=list)


def retrain(
    settings: PipelineSettings,
    feedback_file: Path | None = None,
    progress: Progress = quiet,
) -> RetrainResult:
    """Bring in new control results, rebuild features, train challengers, promote the not-worse."""
    from training.evaluate import evaluate
    from training.promote import promote

    feedback = None
    if feedback_file is not None or _has_feedback_store(settings):
        progress("control results → data store")
        feedback = ingest_feedback(settings, feedback_file, progress)
    progress("features: tables and online store")
    materialized = materialize_features(settings, progress)
    progress("training challengers")
    models = train_models(settings, progress)
    if not models:
        # Too few labels in every area: nothing new to evaluate or gate, champions unchanged.
        progress(
            f"no area has {settings.training.min_positive_labels} training hits yet: "
            "nothing trained, the champions stay"
        )
        return RetrainResult(feedback, materialized, models, {})
    progress("evaluating challengers")
    run_dir = settings.workspace.runs_dir / "latest_evaluation"
    metrics = evaluate(settings.training, out_dir=run_dir, progress=progress)
    progress("promotion gate")
    decisions = promote(settings.training, [m.name for m in models])
    return RetrainResult(feedback, materialized, models, metrics, decisions)


def _has_feedback_store(settings: PipelineSettings) -> bool:
    """The service's feedback store exists (a shared PostgreSQL one always does)."""
    from serving.state import open_feedback_store

    return open_feedback_store(settings.serving) is not None
