"""`crisk evaluate`: spec §5 metrics per risk area and slice, beside baselines and the oracle.

The evaluation window is training's test window (``choose_split``: the dataset's published split
when it has one, else the last ``test_days``). Three sets are scored there, per subject type:

- ``controlled``: every labelled control of the window. Precision@n% is the share of irregular
  items among the top n% of these *inspected* items ranked by score, Recall@n% the share of their
  irregular items found there: what published customs-fraud benchmarks report. It ranks what was
  inspected, so it is biased towards what the administration chose to control (and, on a
  dataset where every item was inspected, it is the whole window);
- ``random_controls``: items controlled at random, the only unbiased view a deployment has,
  reported with their count and 95% intervals (Wilson for precision and recall, a bootstrap for
  the AUCs);
- ``synthetic_ground_truth`` (synthetic world only): every item of the window labelled with the
  world's ground truth, and the oracle (ranking by the true probability). For the comparison
  with the oracle only: it is never the primary set, and nothing that decides (training,
  calibration, thresholds, the promotion gate) reads it; ``evaluation_sets`` reads it only when
  asked to.

The primary set of an area (its top-level numbers in ``metrics.json``) is ``random_controls``
when they hold at least ``primary_min_random_hits`` irregular items of the area, else
``controlled``; ``dataset`` and ``dataset_reason`` say which and why. The learned baselines
(logistic regression, label-encoded and raw-column LightGBM) are trained on the training window
only, on the rows the models learn from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.dataset import DatasetManifest, read_manifest
from data_contracts.progress import Progress, advance, quiet
from data_contracts.record_store import has_records, read_stored_records
from data_contracts.reference import origin_region
from features.model_input import FEATURES_BY_SUBJECT
from features.risk_profiles import RiskProfiles
from training.baselines import (
    RawColumnsModel,
    fit_label_encoded_lightgbm,
    fit_logistic_regression,
    fit_raw_columns_lightgbm,
    load_profiles,
    predict_logistic_regression,
    predict_raw_columns,
    random_scores,
    rule_scores,
)
from training.config import TrainingSettings
from training.dataset import (
    EVENT_TIME,
    SUBJECT_KEYS,
    LabelledSet,
    item_labels,
    load_labelled_set,
    load_records,
    subject_extras,
    window_features,
)
from training.metrics import calibration_curve, json_safe, ranking_intervals, ranking_metrics
from training.model import REVENUE_TASK, AreaModel, predict
from training.registry import CHALLENGER, configure_mlflow, load_version, registered_models
from training.split import TimeSplit, choose_split

__all__ = [
    "BASELINE_NAMES",
    "SET_DESCRIPTIONS",
    "EvaluationSet",
    "evaluate",
    "evaluation_sets",
    "operator_register",
    "primary_choice",
    "primary_set",
    "rule_profiles",
    "score_models",
    "test_window",
]

logger = logging.getLogger(__name__)

_SLICE_MIN_ITEMS = 50
_SET_KEYS = ("n_items", "n_irregular", "precision_at", "recall_at", "revenue_at", "pr_auc",
             "roc_auc", "baselines")  # fmt: skip
BASELINE_NAMES = (
    "random",
    "rules",
    "logistic_regression",
    "label_encoded_lightgbm",
    "raw_columns_lightgbm",
)
SET_DESCRIPTIONS = {
    "controlled": "every labelled control of the test window: Precision@n% is the share of "
    "irregular items among the top n% of these inspected items ranked by score and Recall@n% "
    "the share of their irregular items found there, as published customs-fraud benchmarks "
    "report; it ranks what was inspected, so it leans towards what the administration chose "
    "to control",
    "random_controls": "items controlled at random in the test window: the unbiased estimate, "
    "with n and 95% intervals (Wilson for precision and recall, bootstrap for the AUCs)",
    "synthetic_ground_truth": "every item of the test window labelled with the synthetic "
    "world's ground truth: for the comparison with the oracle only; nothing that decides "
    "reads it",
}


@dataclass
class EvaluationSet:
    name: str
    records: pd.DataFrame
    features: pd.DataFrame
    labels: pd.DataFrame  # y_<area>, revenue
    oracle: pd.DataFrame | None = None  # p_<area> (synthetic world only)
    n_window: int = 0  # items of the window, controlled or not


def _window_features(
    settings: TrainingSettings, subject: str, records: pd.DataFrame
) -> pd.DataFrame:
    extras = subject_extras(settings.workspace, subject)
    return window_features(settings, subject, records, extras)


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
    settings: TrainingSettings,
    subject: str,
    window: tuple[pd.Timestamp, pd.Timestamp],
    *,
    with_ground_truth: bool = False,
) -> dict[str, EvaluationSet]:
    """The evaluation sets of one subject type in ``window``.

    ``with_ground_truth`` adds the synthetic world's ground truth (reporting against the oracle
    only): the promotion gate and anything else that decides leaves it off.
    """
    workspace = settings.workspace
    records = load_records(workspace, subject)
    event = pd.to_datetime(records[EVENT_TIME[subject]], utc=True)
    in_window = records[(event >= window[0]) & (event < window[1])].reset_index(drop=True)
    features = _window_features(settings, subject, in_window)
    results = read_stored_records(workspace, "control-results")
    labels = item_labels(in_window, results, subject)
    controlled = labels.index.to_numpy()
    sets = {
        "controlled": EvaluationSet(
            "controlled", in_window.iloc[controlled].reset_index(drop=True),
            features.iloc[controlled].reset_index(drop=True), labels.reset_index(drop=True),
            n_window=len(in_window),
        )
    }  # fmt: skip
    random_rows = labels["selection_reason"].to_numpy() == "random"
    sets["random_controls"] = EvaluationSet(
        "random_controls", sets["controlled"].records[random_rows].reset_index(drop=True),
        sets["controlled"].features[random_rows].reset_index(drop=True),
        labels[random_rows].reset_index(drop=True), n_window=len(in_window),
    )  # fmt: skip
    truth = _ground_truth(settings, subject, in_window) if with_ground_truth else None
    if truth is not None:
        truth_labels = pd.DataFrame(
            {f"y_{a}": truth[f"irregular_{a}"].astype(int) for a in
             ("financial", "ipr", "product_safety", "prohibitions_restrictions", "safety_security")}
        )  # fmt: skip
        truth_labels["revenue_recovered_eur"] = truth["recoverable_revenue_eur"].to_numpy()
        sets["synthetic_ground_truth"] = EvaluationSet(
            "synthetic_ground_truth", in_window, features, truth_labels,
            oracle=truth[[c for c in truth.columns if c.startswith("p_")]],
            n_window=len(in_window),
        )  # fmt: skip
    return sets


def _subject_split(settings: TrainingSettings, subject: str) -> TimeSplit:
    workspace = settings.workspace
    records = load_records(workspace, subject)
    labels = item_labels(records, read_stored_records(workspace, "control-results"), subject)
    event = pd.to_datetime(records[EVENT_TIME[subject]], utc=True)
    labelled_event = event.iloc[labels.index.to_numpy()].reset_index(drop=True)
    return choose_split(settings, labelled_event, labels["label_time"].reset_index(drop=True))


def test_window(settings: TrainingSettings, subject: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The evaluation window: training's test window, from the records and labels alone."""
    return _subject_split(settings, subject).test_window


def primary_choice(
    sets: dict[str, EvaluationSet], area: str | None, min_hits: int
) -> tuple[str, str]:
    """(set name, why): random controls with enough hits of ``area``, else every control.

    Never the synthetic ground truth: a deployment has none, so nothing that decides reads it.
    """
    random = sets.get("random_controls")
    column = f"y_{area}" if area else "y_any"
    hits = 0
    if random is not None and len(random.labels) and column in random.labels:
        hits = int(random.labels[column].sum())
    if random is not None and hits >= min_hits:
        return "random_controls", (
            f"{hits:,} irregular among {len(random.labels):,} random controls: the unbiased set"
        )
    n_random = 0 if random is None else len(random.labels)
    if n_random == 0:
        why = "no random controls in the test window"
    else:
        why = f"{hits:,} irregular among {n_random:,} random controls, fewer than {min_hits}"
    return "controlled", (
        f"{why}: figures come from the controls the administration chose (biased towards what "
        "it looked for)"
    )


def primary_set(
    sets: dict[str, EvaluationSet], area: str | None = None, min_hits: int = 30
) -> EvaluationSet:
    """The set that decides for ``area`` (see :func:`primary_choice`)."""
    return sets[primary_choice(sets, area, min_hits)[0]]


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


_NO_REVENUE = ("revenue_at", "revenue_at_normalised")


def _without_revenue(metrics: dict[str, Any]) -> dict[str, Any]:
    """Revenue unknown (not zero): no Revenue@n% at all, rather than a figure made of zeros."""
    return {k: (None if k in _NO_REVENUE else v) for k, v in metrics.items()}


def _area_metrics(
    subject: str,
    area: str,
    score: np.ndarray,
    tie: np.ndarray,
    data: EvaluationSet,
    baselines: dict[str, np.ndarray],
    revenue_known: bool,
) -> dict[str, Any]:
    y = data.labels[f"y_{area}"].to_numpy(dtype=int)
    revenue = (
        data.labels["revenue_recovered_eur"].to_numpy(dtype=float)
        if area == "financial" and revenue_known
        else None
    )
    out = ranking_metrics(y, score, revenue=revenue, tie_break=tie)
    out["calibration"] = calibration_curve(y, score)
    if data.name in ("random_controls", "controlled"):
        # Small sets: a P@5% of 19 selected items is a wide guess, and the report says how wide.
        out.update(ranking_intervals(y, score, tie_break=tie))
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
    if not revenue_known:
        out = _without_revenue(out)
        out["baselines"] = {k: _without_revenue(v) for k, v in out["baselines"].items()}
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


@dataclass
class _LearnedBaselines:
    """The baselines trained on the training window for one area."""

    logistic: Any
    label_encoded: RawColumnsModel
    raw_columns: RawColumnsModel

    def scores(self, data: EvaluationSet, subject: str) -> dict[str, np.ndarray]:
        if not len(data.records):  # e.g. no random controls at all: nothing to score
            empty = np.zeros(0)
            return dict.fromkeys(BASELINE_NAMES[2:], empty)
        return {
            "logistic_regression": predict_logistic_regression(
                self.logistic, data.features, subject
            ),
            "label_encoded_lightgbm": predict_raw_columns(self.label_encoded, data.records),
            "raw_columns_lightgbm": predict_raw_columns(self.raw_columns, data.records),
        }


def _fit_baselines(
    settings: TrainingSettings,
    subject: str,
    labelled: LabelledSet,
    train_rows: np.ndarray,
    areas: list[str],
    manifest: DatasetManifest,
) -> dict[str, _LearnedBaselines]:
    records = labelled.records[train_rows].reset_index(drop=True)
    features = labelled.features[train_rows].reset_index(drop=True)
    out = {}
    for area in areas:
        y = labelled.labels[f"y_{area}"].to_numpy(dtype=int)[train_rows]
        out[area] = _LearnedBaselines(
            logistic=fit_logistic_regression(features, y, subject, settings.seed),
            label_encoded=fit_label_encoded_lightgbm(
                records, y, subject, manifest.extra, settings.seed
            ),
            raw_columns=fit_raw_columns_lightgbm(
                records, y, subject, manifest.extra, settings.seed
            ),
        )
    return out


def _load_models(
    settings: TrainingSettings, client: Any, alias: str
) -> tuple[dict[str, dict[str, AreaModel]], dict[str, str]]:
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
    return loaded, versions


def _set_note(name: str, data: EvaluationSet) -> dict[str, Any]:
    entry: dict[str, Any] = {"n_items": len(data.records), "measures": SET_DESCRIPTIONS[name]}
    if name == "controlled":
        entry["n_window_items"] = data.n_window
        if data.n_window and len(data.records) >= 0.99 * data.n_window:
            entry["measures"] += (
                "; every item of the test window was inspected, so this is the whole window"
            )
    return entry


def _evaluate_subject(
    settings: TrainingSettings,
    subject: str,
    models: dict[str, AreaModel],
    versions: dict[str, str],
    manifest: DatasetManifest,
    report: dict[str, Any],
    progress: Progress = quiet,
) -> None:
    progress(f"{subject}: evaluation sets and baselines")
    labelled = load_labelled_set(settings, subject)
    split = choose_split(settings, labelled.event_time, labelled.labels["label_time"])
    window = split.test_window
    sets = evaluation_sets(settings, subject, window, with_ground_truth=True)
    report["windows"][subject] = {"from": str(window[0]), "to": str(window[1])}
    report["splits"][subject] = {"source": split.source, "windows": split.describe()}
    # Rule profiles derived from data (no risk unit's file) read the training window only.
    profiles = rule_profiles(settings, subject, labelled.records[split.train])
    register = operator_register(settings)
    # The learned baselines learn from the same rows as the model (same exclusions).
    reasons = labelled.labels["selection_reason"]
    train_rows = split.train & ~reasons.isin(settings.exclude_selection_reasons).to_numpy()
    areas = [a for a in models if a != REVENUE_TASK]
    learned = _fit_baselines(settings, subject, labelled, train_rows, areas, manifest)
    chosen: dict[str, str] = {}
    for area in areas:
        key = area if subject == "declaration" else f"{subject}:{area}"
        chosen[area], why = primary_choice(sets, area, settings.primary_min_random_hits)
        report["primary_reasons"][key] = why
    counted = f"scoring {subject} evaluation sets"
    for done, (set_name, data) in enumerate(sets.items()):
        advance(progress, counted, done, len(sets))
        scores = score_models(models, data.features)
        tie = scores.get(REVENUE_TASK, np.zeros(len(data.features)))
        rules = rule_scores(data.records, subject, profiles, register)
        report["datasets"][f"{subject}:{set_name}"] = _set_note(set_name, data)
        for area in areas:
            model = models[area]
            baselines = {
                "random": _random_baseline(len(data.records), settings.seed),
                "rules": rules,
                **learned[area].scores(data, subject),
            }
            metrics = _area_metrics(
                subject, area, scores[area], tie, data, baselines, manifest.revenue_known
            )
            metrics["subject"] = subject
            name = model.spec["registered_model"]
            metrics["model"] = f"{name}/{versions.get(name)}"
            key = area if subject == "declaration" else f"{subject}:{area}"
            extra_keys = ("oracle", "precision_at_share_of_oracle", "precision_at_interval",
                          "recall_at_interval", "pr_auc_interval", "roc_auc_interval")  # fmt: skip
            report["areas"][f"{key}@{set_name}"] = {
                k: metrics[k] for k in (*_SET_KEYS, *extra_keys) if k in metrics
            }
            if set_name == chosen[area]:
                report["areas"][key] = {
                    **{k: v for k, v in metrics.items() if k not in extra_keys[:2]},
                    "dataset": set_name,
                    "dataset_reason": report["primary_reasons"][key],
                }
    advance(progress, counted, len(sets), len(sets))
    for area in areas:
        key = area if subject == "declaration" else f"{subject}:{area}"
        truth = report["areas"].get(f"{key}@synthetic_ground_truth")
        if truth is not None and key in report["areas"]:
            # The oracle, from the ground truth of every item in the window (reporting only).
            report["areas"][key]["oracle"] = {
                **truth["oracle"],
                "dataset": "synthetic_ground_truth",
            }
            report["areas"][key]["precision_at_share_of_oracle"] = truth[
                "precision_at_share_of_oracle"
            ]
    names = sorted(set(chosen.values()))
    report["primary_datasets"][subject] = names[0] if len(names) == 1 else ", ".join(names)
    if not len(sets["random_controls"].records):
        report["notes"].append(
            f"{subject}: no random controls in the test window: every figure comes from the "
            "controls the administration chose (biased towards what it looked for)"
        )


def _notes(manifest: DatasetManifest) -> list[str]:
    notes = [f"dataset {manifest.dataset!r} ({manifest.source})"]
    if not manifest.revenue_known:
        notes.append(
            "revenue recovered is unknown for this dataset (not zero): Revenue@n% is not "
            "reported and no revenue model is trained"
        )
    return notes


def _log_run(report: dict[str, Any], alias: str, out_dir: Path | None) -> None:
    import mlflow

    with mlflow.start_run(run_name=f"crisk evaluate @{alias}"):
        windows = report["windows"]
        mlflow.set_tags(
            {
                "alias": alias,
                "dataset": report["dataset"],
                **{f"dataset_{k}": v for k, v in report["primary_datasets"].items()},
                **{f"window_{k}": f"{w['from']} .. {w['to']}" for k, w in windows.items()},
                **{f"split_{k}": v["source"] for k, v in report["splits"].items()},
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


def evaluate(
    settings: TrainingSettings,
    alias: str = CHALLENGER,
    out_dir: Path | None = None,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Evaluate the models behind ``alias``; write ``out_dir/metrics.json``, log it to MLflow."""
    client = configure_mlflow(settings)
    loaded, versions = _load_models(settings, client, alias)
    manifest = read_manifest(settings.workspace)
    report: dict[str, Any] = {
        "dataset": manifest.dataset,
        "alias": alias,
        "models": versions,
        "areas": {},
        "datasets": {},
        "windows": {},  # per subject type: each has its own data and so its own test window
        "splits": {},
        "primary_datasets": {},
        "primary_reasons": {},
        "revenue_known": manifest.revenue_known,
        "notes": _notes(manifest),
    }
    for subject, models in sorted(loaded.items()):
        _evaluate_subject(settings, subject, models, versions, manifest, report, progress)
    report["selection_bias"] = (
        "Labels exist only for controlled items. Training rows are weighted by "
        f"(1 / p) ** {settings.ipw_power}: p is the selection probability the service recorded "
        "in its audit log where it selected the item, else P(controlled | declared data) "
        "estimated with a cross-fitted LightGBM on the training and validation windows only "
        "(training/weights.py; each model spec's selection_bias says how many rows had a "
        "recorded propensity); weighting "
        f"{'on' if settings.selection_weighting == 'ipw' else 'off'}. The unbiased estimate of "
        "real-world performance is the random_controls set, reported with its size and 95% "
        "intervals; it is the primary set of an area when it holds at least "
        f"{settings.primary_min_random_hits} irregular items of it, else every labelled control "
        "is (biased towards what was chosen for control). The synthetic world's ground truth "
        "is reported for the comparison with the oracle only."
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Strict JSON: a metric that does not exist (no hits in a set, no revenue for an area)
        # is null, not the NaN a strict parser refuses.
        (out_dir / "metrics.json").write_text(
            json.dumps(json_safe(report), indent=1, default=float, allow_nan=False)
        )
    _log_run(report, alias, out_dir)
    return report


def rule_profiles(
    settings: TrainingSettings, subject: str, training_records: pd.DataFrame | None = None
) -> RiskProfiles:
    """The risk unit's profiles: the world's file, else derived from the subject's records
    (``training_records`` when given: derived values must not see the test window)."""
    world = settings.workspace.world_dir
    if (world / "risk_profiles.json").exists():
        return load_profiles(world)
    records = load_records(settings.workspace, subject) if training_records is None else None
    return load_profiles(world, training_records if training_records is not None else records)


def operator_register(settings: TrainingSettings) -> pd.Series | None:
    if not has_records(settings.workspace, "operators"):
        return None
    operators = read_stored_records(settings.workspace, "operators")
    return operators.set_index("operator_id")["registered_at"]


_ = FEATURES_BY_SUBJECT  # the evaluated features are the models' own (see spec)
