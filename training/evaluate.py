"""`crisk evaluate`: spec §5 metrics per risk area and slice, beside baselines and the oracle.

The evaluation window is the test window of training (the last ``test_days``). Three sets are
scored there:

- ``random_controls``: items controlled at random. The only *unbiased* estimate available in
  reality: these are what the report's real-world figures rest on, with their count;
- ``controlled``: every controlled item (biased towards what rules and officers looked for);
- ``synthetic_ground_truth`` (synthetic world only): every item in the window, labelled with the
  world's ground truth, and the oracle (ranking by the true probability) for comparison.

The primary set (the top-level numbers in ``metrics.json``) is the ground truth when it exists,
else the random controls; the ``dataset`` field says which.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.progress import Progress, advance, quiet
from data_contracts.reference import origin_region
from features.model_input import FEATURES_BY_SUBJECT
from features.retrieval import entity_frame, historical_features
from features.risk_profiles import RiskProfiles
from features.services import SERVICE_FOR_SUBJECT
from training.baselines import (
    fit_logistic_regression,
    load_profiles,
    predict_logistic_regression,
    random_scores,
    rule_scores,
)
from training.config import TrainingSettings
from training.dataset import (
    EVENT_TIME,
    SUBJECT_KEYS,
    item_labels,
    load_labelled_set,
    load_records,
)
from training.metrics import calibration_curve, json_safe, ranking_metrics
from training.model import REVENUE_TASK, AreaModel, predict
from training.registry import CHALLENGER, configure_mlflow, load_version, registered_models
from training.split import time_split

__all__ = [
    "EvaluationSet",
    "evaluate",
    "evaluation_sets",
    "operator_register",
    "rule_profiles",
    "score_models",
]

logger = logging.getLogger(__name__)

_SLICE_MIN_ITEMS = 50


@dataclass
class EvaluationSet:
    name: str
    records: pd.DataFrame
    features: pd.DataFrame
    labels: pd.DataFrame  # y_<area>, revenue
    oracle: pd.DataFrame | None = None  # p_<area> (synthetic world only)


def _window_features(
    settings: TrainingSettings, subject: str, records: pd.DataFrame
) -> pd.DataFrame:
    from features.model_input import model_frame, request_features

    entities = entity_frame(records, subject)
    feast = historical_features(
        settings.features, SERVICE_FOR_SUBJECT[subject], entities, engine=settings.retrieval_engine
    )
    return pd.DataFrame(model_frame(request_features(records, subject), feast, subject))  # type: ignore[arg-type]


def _ground_truth(
    settings: TrainingSettings, subject: str, records: pd.DataFrame
) -> pd.DataFrame | None:
    path = settings.workspace.world_dir / "ground_truth.parquet"
    if not path.exists():
        return None
    truth = pd.read_parquet(path)
    truth = truth[truth["subject_type"] == subject]
    if subject == "declaration":
        truth = truth.assign(item_number=truth["item_number"].astype("int64"))
        joined = records[SUBJECT_KEYS[subject]].merge(
            truth, left_on=SUBJECT_KEYS[subject], right_on=["subject_id", "item_number"], how="left"
        )
    else:
        joined = records[SUBJECT_KEYS[subject]].merge(
            truth, left_on="ens_id", right_on="subject_id", how="left"
        )
    if joined["subject_id"].isna().mean() > 0.01:
        logger.warning("ground truth does not match the data store: no synthetic evaluation")
        return None
    return joined.reset_index(drop=True)


def evaluation_sets(
    settings: TrainingSettings, subject: str, window: tuple[pd.Timestamp, pd.Timestamp]
) -> dict[str, EvaluationSet]:
    """The evaluation sets of one subject type in ``window``."""
    workspace = settings.workspace
    records = load_records(workspace, subject)
    event = pd.to_datetime(records[EVENT_TIME[subject]], utc=True)
    in_window = records[(event >= window[0]) & (event < window[1])].reset_index(drop=True)
    features = _window_features(settings, subject, in_window)
    results = pd.read_parquet(workspace.data_dir / "control_results.parquet")
    labels = item_labels(in_window, results, subject)
    controlled = labels.index.to_numpy()
    sets = {
        "controlled": EvaluationSet(
            "controlled", in_window.iloc[controlled].reset_index(drop=True),
            features.iloc[controlled].reset_index(drop=True), labels.reset_index(drop=True),
        )
    }  # fmt: skip
    random_rows = labels["selection_reason"].to_numpy() == "random"
    sets["random_controls"] = EvaluationSet(
        "random_controls", sets["controlled"].records[random_rows].reset_index(drop=True),
        sets["controlled"].features[random_rows].reset_index(drop=True),
        labels[random_rows].reset_index(drop=True),
    )  # fmt: skip
    truth = _ground_truth(settings, subject, in_window)
    if truth is not None:
        truth_labels = pd.DataFrame(
            {f"y_{a}": truth[f"irregular_{a}"].astype(int) for a in
             ("financial", "ipr", "product_safety", "prohibitions_restrictions", "safety_security")}
        )  # fmt: skip
        truth_labels["revenue_recovered_eur"] = truth["recoverable_revenue_eur"].to_numpy()
        sets["synthetic_ground_truth"] = EvaluationSet(
            "synthetic_ground_truth", in_window, features, truth_labels,
            oracle=truth[[c for c in truth.columns if c.startswith("p_")]],
        )  # fmt: skip
    return sets


def test_window(settings: TrainingSettings, subject: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The evaluation window: training's test window, from the records and labels alone."""
    workspace = settings.workspace
    records = load_records(workspace, subject)
    labels = item_labels(
        records, pd.read_parquet(workspace.data_dir / "control_results.parquet"), subject
    )
    event = pd.to_datetime(records[EVENT_TIME[subject]], utc=True)
    labelled_event = event.iloc[labels.index.to_numpy()].reset_index(drop=True)
    end = labelled_event.max().normalize() + pd.Timedelta(days=1)
    split = time_split(
        labelled_event, labels["label_time"].reset_index(drop=True), end=end,
        test_days=settings.test_days, validation_days=settings.validation_days,
        gap_days=settings.label_delay_days, burn_in_days=settings.burn_in_days,
    )  # fmt: skip
    return split.test_window


def primary_set(sets: dict[str, EvaluationSet]) -> EvaluationSet:
    """Ground truth where the world provides it, else the unbiased random controls."""
    return sets.get("synthetic_ground_truth") or sets["random_controls"]


def score_models(models: dict[str, AreaModel], features: pd.DataFrame) -> dict[str, np.ndarray]:
    return {key: predict(model, features) for key, model in models.items()}


def _slices(subject: str, data: EvaluationSet) -> dict[str, np.ndarray]:
    records = data.records
    slices = {"transport_mode": records["transport_mode"].astype(str).to_numpy()}
    if subject == "declaration":
        slices["declaration_type"] = records["declaration_type"].astype(str).to_numpy()
        aeo = pd.to_numeric(data.features["importer_aeo"], errors="coerce").fillna(0).to_numpy()
        slices["aeo"] = np.where(aeo > 0, "aeo", "non_aeo")
        slices["origin_region"] = np.array([origin_region(c) for c in records["origin_country"]])
    else:
        slices["ics2_release"] = records["ics2_release"].astype(str).to_numpy()
        slices["origin_region"] = np.array([origin_region(c) for c in records["consignor_country"]])
    return slices


def _area_metrics(
    subject: str,
    area: str,
    score: np.ndarray,
    tie: np.ndarray,
    data: EvaluationSet,
    baselines: dict[str, np.ndarray],
) -> dict[str, Any]:
    y = data.labels[f"y_{area}"].to_numpy(dtype=int)
    revenue = (
        data.labels["revenue_recovered_eur"].to_numpy(dtype=float) if area == "financial" else None
    )
    out = ranking_metrics(y, score, revenue=revenue, tie_break=tie)
    out["calibration"] = calibration_curve(y, score)
    if data.oracle is not None:
        oracle = ranking_metrics(y, data.oracle[f"p_{area}"].to_numpy(dtype=float), revenue=revenue)
        out["oracle"] = {"precision_at": oracle["precision_at"], "recall_at": oracle["recall_at"]}
        out["precision_at_share_of_oracle"] = {
            k: (v / oracle["precision_at"][k] if oracle["precision_at"][k] else float("nan"))
            for k, v in out["precision_at"].items()
        }
    out["baselines"] = {
        name: {
            key: value
            for key, value in ranking_metrics(
                y, values, revenue=revenue, with_probabilities=False
            ).items()
            if key in ("precision_at", "recall_at", "revenue_at", "pr_auc", "roc_auc")
        }
        for name, values in baselines.items()
    }
    slice_metrics: dict[str, dict[str, Any]] = {}
    for name, values in _slices(subject, data).items():
        slice_metrics[name] = {}
        for value in sorted(set(values)):
            rows = values == value
            if rows.sum() < _SLICE_MIN_ITEMS:
                continue
            part = ranking_metrics(
                y[rows], score[rows], tie_break=tie[rows], with_probabilities=False
            )
            slice_metrics[name][str(value)] = {
                "precision_at": part["precision_at"], "n_items": int(rows.sum()),
                "n_irregular": part["n_irregular"],
            }  # fmt: skip
    out["slices"] = slice_metrics
    return out


def _random_baseline(y_len: int, seed: int) -> np.ndarray:
    return random_scores(y_len, seed)


def evaluate(
    settings: TrainingSettings,
    alias: str = CHALLENGER,
    out_dir: Path | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Evaluate the models behind ``alias``; write ``out_dir/metrics.json``, log it to MLflow."""
    import mlflow

    client = configure_mlflow(settings)
    loaded: dict[str, dict[str, AreaModel]] = {}
    versions: dict[str, str] = {}
    for name in registered_models(client, settings.model_prefix):
        found = load_version(client, name, alias)
        if found is None:
            continue
        version, model = found
        loaded.setdefault(model.spec["subject"], {})[
            REVENUE_TASK if model.spec["task"] == REVENUE_TASK else model.spec["area"]
        ] = model
        versions[name] = str(version.version)
    if not loaded:
        raise LookupError(f"no registered model has the alias {alias!r}; run `crisk train` first")
    report: dict[str, Any] = {
        "alias": alias,
        "models": versions,
        "areas": {},
        "datasets": {},
        "windows": {},  # per subject type: each has its own data and so its own test window
        "primary_datasets": {},
    }
    for subject, models in sorted(loaded.items()):
        progress(f"{subject}: evaluation sets and baselines")
        labelled = load_labelled_set(settings, subject)
        end = labelled.event_time.max().normalize() + pd.Timedelta(days=1)
        split = time_split(
            labelled.event_time, labelled.labels["label_time"], end=end,
            test_days=settings.test_days,
            validation_days=settings.validation_days, gap_days=settings.label_delay_days,
            burn_in_days=settings.burn_in_days,
        )  # fmt: skip
        window = split.test_window
        sets = evaluation_sets(settings, subject, window)
        primary_name = (
            "synthetic_ground_truth" if "synthetic_ground_truth" in sets else "random_controls"
        )
        report["windows"][subject] = {"from": str(window[0]), "to": str(window[1])}
        profiles = rule_profiles(settings, subject)
        register = operator_register(settings)
        # The baseline learns from the same rows as the model (same exclusions).
        reasons = labelled.labels["selection_reason"]
        train_rows = split.train & ~reasons.isin(settings.exclude_selection_reasons).to_numpy()
        logistic_models = {}
        for area in models:
            if area != REVENUE_TASK:
                y_train = labelled.labels[f"y_{area}"].to_numpy(dtype=int)[train_rows]
                logistic_models[area] = fit_logistic_regression(
                    labelled.features[train_rows], y_train, subject, settings.seed
                )
        counted = f"scoring {subject} evaluation sets"
        for done, (set_name, data) in enumerate(sets.items()):
            advance(progress, counted, done, len(sets))
            scores = score_models(models, data.features)
            tie = scores.get(REVENUE_TASK, np.zeros(len(data.features)))
            rules = rule_scores(data.records, subject, profiles, register)
            report["datasets"][f"{subject}:{set_name}"] = {"n_items": len(data.records)}
            for area, model in models.items():
                if area == REVENUE_TASK:
                    continue
                logistic = logistic_models[area]
                baselines = {
                    "random": _random_baseline(len(data.records), settings.seed),
                    "rules": rules,
                    "logistic_regression": predict_logistic_regression(
                        logistic, data.features, subject
                    ),
                }
                metrics = _area_metrics(subject, area, scores[area], tie, data, baselines)
                metrics["subject"] = subject
                metrics["model"] = (
                    f"{model.spec['registered_model']}/{versions.get(model.spec['registered_model'])}"
                )
                key = area if subject == "declaration" else f"{subject}:{area}"
                if set_name == primary_name:
                    report["areas"][key] = {**metrics, "dataset": set_name}
                else:
                    report["areas"].setdefault(f"{key}@{set_name}", {}).update(
                        {
                            k: metrics[k]
                            for k in (
                                "n_items",
                                "n_irregular",
                                "precision_at",
                                "recall_at",
                                "revenue_at",
                                "pr_auc",
                                "roc_auc",
                                "baselines",
                            )
                        }
                    )
        advance(progress, counted, len(sets), len(sets))
        report["primary_datasets"][subject] = primary_name
    report["selection_bias"] = (
        "Labels exist only for controlled items. Training rows are weighted by "
        f"(1 / P(controlled | declared data)) ** {settings.ipw_power}, the propensity estimated on "
        "every item, controlled or not, with LightGBM (training/weights.py); weighting "
        f"{'on' if settings.selection_weighting == 'ipw' else 'off'}. The unbiased estimate of "
        "real-world performance is the random_controls set, reported with its size; on the "
        "synthetic world the ground truth of every item in the window is used as well."
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Strict JSON: a metric that does not exist (no hits in a set, no revenue for an area)
        # is null, not the NaN a strict parser refuses.
        (out_dir / "metrics.json").write_text(
            json.dumps(json_safe(report), indent=1, default=float, allow_nan=False)
        )
    with mlflow.start_run(run_name=f"crisk evaluate @{alias}"):
        windows = report["windows"]
        mlflow.set_tags(
            {
                "alias": alias,
                **{f"dataset_{k}": v for k, v in report["primary_datasets"].items()},
                **{f"window_{k}": f"{w['from']} .. {w['to']}" for k, w in windows.items()},
            }
        )
        for key, metrics in report["areas"].items():
            if "@" in key:
                continue
            clean = key.replace(":", "_")
            for rate, value in metrics["precision_at"].items():
                if np.isfinite(value):
                    mlflow.log_metric(f"{clean}_precision_at_{rate}", float(value))
        if out_dir is not None:
            from training.report import write_model_report

            mlflow.log_artifact(str(out_dir / "metrics.json"))
            mlflow.log_artifact(str(write_model_report(report, out_dir / "report.html")))
    return report


def rule_profiles(settings: TrainingSettings, subject: str) -> RiskProfiles:
    """The risk unit's profiles: the world's file, else derived from the subject's records."""
    world = settings.workspace.world_dir
    if (world / "risk_profiles.json").exists():
        return load_profiles(world)
    return load_profiles(world, load_records(settings.workspace, subject))


def operator_register(settings: TrainingSettings) -> pd.Series | None:
    path = settings.workspace.data_dir / "operators.parquet"
    if not path.exists():
        return None
    operators = pd.read_parquet(path)
    return operators.set_index("operator_id")["registered_at"]


_ = FEATURES_BY_SUBJECT  # the evaluated features are the models' own (see spec)
