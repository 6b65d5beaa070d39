"""`crisk train`: one calibrated LightGBM classifier per risk area, plus the revenue model.

For each subject type (declarations, ENS filings) and each risk area with enough labels:
time-ordered split with a label-delay gap, LightGBM with early stopping on the validation
window (monotone constraints where the direction is a business fact, class imbalance handled by
a damped positive weight), a calibration map chosen on the validation window, metrics on the test
window, and an MLflow run whose model is registered as ``<prefix>_<subject>_<area>`` with alias
``challenger`` (and ``champion`` when the area has none yet).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from data_contracts.codelists import RISK_AREAS
from data_contracts.dataset import read_manifest
from data_contracts.definitions import CONTRACT_VERSION
from data_contracts.progress import Progress, advance, quiet
from data_contracts.safe_output import csv_safe_frame
from features.model_input import (
    EXPOSURE_FEATURE,
    ModelFeature,
    encode,
    fit_vocabularies,
    model_features,
    revenue_exposure,
)
from training.calibration import fit_calibration
from training.config import TrainingSettings
from training.dataset import EVENT_TIME, LabelledSet, data_snapshot_id, load_labelled_set
from training.fit_data import FitData
from training.metrics import calibration_curve, json_safe, ranking_metrics
from training.model import REVENUE_TASK, AreaModel, predict
from training.registry import (
    CHALLENGER,
    CHAMPION,
    configure_mlflow,
    registered_name,
    version_by_alias,
)
from training.split import TimeSplit, choose_split
from training.weights import SelectionWeights, selection_weights

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "AREAS_BY_SUBJECT",
    "TrainedModel",
    "fit_area_model",
    "no_model_reasons",
    "no_model_tag",
    "train",
]

logger = logging.getLogger(__name__)

AREAS_BY_SUBJECT: dict[str, tuple[str, ...]] = {
    "declaration": (
        "financial",
        "ipr",
        "product_safety",
        "prohibitions_restrictions",
        "safety_security",
    ),
    "ens": ("safety_security", "prohibitions_restrictions", "ipr", "product_safety", "financial"),
}


def no_model_tag(subject: str, area: str, task: str) -> str:
    """The training run's tag that says why ``subject``/``area``/``task`` got no model."""
    return f"no_model_{subject}_{area}_{task}"


def no_model_reasons(tags: Mapping[str, str]) -> dict[str, str]:
    """``"subject/area (task)"`` -> why it got no model, from a training run's tags."""
    return {
        f"{subject}/{area} ({task})": tags[key]
        for subject, areas in AREAS_BY_SUBJECT.items()
        for area in areas
        for task in ("classification", REVENUE_TASK)
        if (key := no_model_tag(subject, area, task)) in tags
    }


@dataclass
class TrainedModel:
    """A registered model version and how it did."""

    name: str
    version: str
    subject: str
    area: str
    task: str
    run_id: str
    metrics: dict[str, Any] = field(default_factory=dict)
    first_champion: bool = False  # the area had no champion: this version became it


def _lgb_params(settings: TrainingSettings, objective: str) -> dict[str, Any]:
    p = settings.lgbm
    return {
        "objective": objective,
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "max_depth": p.max_depth,
        "min_data_in_leaf": p.min_data_in_leaf,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": p.lambda_l2,
        "max_cat_to_onehot": 8,
        "cat_smooth": 20,
        "min_data_per_group": 50,
        "num_threads": p.num_threads,
        "seed": settings.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def fit_area_model(
    settings: TrainingSettings,
    *,
    subject: str,
    area: str,
    task: str,
    features: tuple[ModelFeature, ...],
    train_frame: pd.DataFrame,
    y_train: np.ndarray,
    w_train: np.ndarray,
    valid_frame: pd.DataFrame,
    y_valid: np.ndarray,
    w_valid: np.ndarray,
    vocabularies: dict[str, list[str]],
    dask: Client | None = None,
) -> AreaModel:
    """Fit one LightGBM (classifier or revenue regressor) with early stopping on validation.

    With a ``dask`` client the trees are grown data-parallel on its cluster
    (:mod:`training.dask_engine`); the model and its spec are otherwise the same.
    """
    names = [f.name for f in features]
    categorical = [i for i, f in enumerate(features) if f.kind == "categorical"]
    x_train = encode(train_frame, names, vocabularies)
    x_valid = encode(valid_frame, names, vocabularies)
    exposure: dict[str, Any] | None = None
    init_train = init_valid = None
    if task == REVENUE_TASK:
        params = _lgb_params(settings, "tweedie") | {
            "tweedie_variance_power": 1.3,
            "metric": "tweedie",
        }
        weight_train, weight_valid = w_train, w_valid
        if EXPOSURE_FEATURE in names:
            exposure = _exposure(x_train, names)
            init_train = revenue_exposure(x_train, {"features": names, "exposure": exposure})
            init_valid = revenue_exposure(x_valid, {"features": names, "exposure": exposure})
    else:
        positives = max(1.0, float(y_train.sum()))
        # Damped re-weighting of the rare class: helps the trees find it; calibration then
        # restores the probabilities.
        pos_weight = float(np.clip(np.sqrt((len(y_train) - positives) / positives), 1.0, 10.0))
        params = _lgb_params(settings, "binary") | {
            "metric": settings.lgbm.early_stopping_metric,
            "monotone_constraints": [f.monotone for f in features],
            # "advanced" was seen to break the constraint (a higher hit rate lowering the
            # score) on weighted data; "intermediate" holds it (tests/model checks).
            "monotone_constraints_method": "intermediate",
        }
        weight_train = w_train * np.where(y_train == 1, pos_weight, 1.0)
        weight_valid = w_valid * np.where(y_valid == 1, pos_weight, 1.0)
    data = FitData(
        x_train=x_train,
        y_train=y_train,
        w_train=weight_train,
        x_valid=x_valid,
        y_valid=y_valid,
        w_valid=weight_valid,
        feature_names=names,
        categorical=categorical,
        init_train=init_train,
        init_valid=init_valid,
    )
    booster, best_iteration, engine = (
        _fit_local(settings, params, data)
        if dask is None
        else _fit_on_cluster(dask, settings, params, data)
    )
    spec: dict[str, Any] = {
        "subject": subject,
        "area": area,
        "task": task,
        "features": names,
        "labels": {f.name: f.label for f in features},
        "vocabularies": vocabularies,
        "best_iteration": best_iteration,
        "params": {k: v for k, v in params.items() if k != "monotone_constraints"},
        "training_engine": engine,
    }
    if task == REVENUE_TASK:
        spec["calibration"] = {"method": "none"}
        if exposure is not None:
            spec["exposure"] = exposure
    else:
        margin = np.asarray(booster.predict(x_valid, raw_score=True))
        spec["calibration"] = fit_calibration(margin, y_valid, w_valid, seed=settings.seed)
    return AreaModel(booster=booster, spec=spec)


def _fit_local(
    settings: TrainingSettings, params: dict[str, Any], data: FitData
) -> tuple[lgb.Booster, int, dict[str, Any]]:
    train_set = lgb.Dataset(
        data.x_train,
        label=data.y_train,
        weight=data.w_train,
        feature_name=data.feature_names,
        categorical_feature=data.categorical,
        init_score=data.init_train,
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(
        data.x_valid,
        label=data.y_valid,
        weight=data.w_valid,
        init_score=data.init_valid,
        reference=train_set,
    )
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.lgbm.max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(settings.lgbm.early_stopping_rounds, verbose=False)],
    )
    booster.free_dataset()
    return booster, booster.best_iteration, {"training_engine": "lightgbm"}


def _fit_on_cluster(
    client: Client, settings: TrainingSettings, params: dict[str, Any], data: FitData
) -> tuple[lgb.Booster, int, dict[str, Any]]:
    from training.dask_engine import fit_on_dask

    fit = fit_on_dask(
        client,
        params,
        data,
        max_rounds=settings.lgbm.max_rounds,
        early_stopping_rounds=settings.lgbm.early_stopping_rounds,
        seed=settings.seed,
    )
    engine = {
        "training_engine": "lightgbm.dask",
        "dask_workers": fit.workers,
        "dask_trained_rounds": fit.trained_rounds,
    }
    return fit.booster, fit.best_iteration, engine


def _exposure(x_train: np.ndarray, names: list[str]) -> dict[str, Any]:
    """The revenue model's offset: log declared value (its training median where missing)."""
    column = np.asarray(x_train[:, names.index(EXPOSURE_FEATURE)], dtype=float)
    with np.errstate(invalid="ignore"):
        offsets = np.log(np.maximum(np.expm1(column), 1.0))
    finite = offsets[np.isfinite(offsets)]
    return {
        "feature": EXPOSURE_FEATURE,
        "missing": float(np.median(finite)) if len(finite) else 0.0,
    }


def _signature(model: AreaModel, features: tuple[ModelFeature, ...]) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string" if f.kind == "categorical" else "double", f.name, required=False)
            for f in features
        ]
    )
    output = "expected_revenue_eur" if model.spec["task"] == REVENUE_TASK else "probability"
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", output)]))


def _input_example(frame: pd.DataFrame, features: tuple[ModelFeature, ...]) -> pd.DataFrame:
    example = frame[[f.name for f in features]].head(2).copy()
    for f in features:
        if f.kind == "categorical":
            example[f.name] = example[f.name].astype("string").fillna("").astype(str)
        else:
            example[f.name] = pd.to_numeric(example[f.name], errors="coerce").astype(float)
    return example


def _log_model(
    settings: TrainingSettings,
    client: Any,
    model: AreaModel,
    features: tuple[ModelFeature, ...],
    data: LabelledSet,
    metrics: dict[str, Any],
    name: str,
    tags: dict[str, str],
) -> TrainedModel:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        booster_path = folder / "model.txt"
        model.booster.save_model(str(booster_path))
        spec_path = folder / "spec.json"
        spec_path.write_text(json.dumps(model.spec, indent=1, default=float))
        reference_path = folder / "reference_sample.parquet"
        data.reference.to_parquet(reference_path, index=False)
        metrics_path = folder / "metrics.json"
        metrics_path.write_text(
            json.dumps(json_safe(metrics), indent=1, default=float, allow_nan=False)
        )
        mlflow.log_artifact(str(metrics_path))
        chatter = io.StringIO()
        # MLflow prints registration notices straight to stderr; keep them in the debug log.
        with contextlib.redirect_stderr(chatter):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).with_name("mlflow_model.py")),
                artifacts={
                    "booster": str(booster_path),
                    "spec": str(spec_path),
                    "reference_sample": str(reference_path),
                },
                signature=_signature(model, features),
                input_example=_input_example(data.reference, features),
                registered_model_name=name,
                pip_requirements=["lightgbm==4.7.0", "pandas==2.3.3", "mlflow==3.17.2"],
            )
        logger.debug("mlflow: %s", chatter.getvalue().strip())
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHALLENGER, version)
    first_champion = version_by_alias(client, name, CHAMPION) is None
    if first_champion:
        # The first model of an area has nothing to beat: it serves until a challenger wins.
        client.set_registered_model_alias(name, CHAMPION, version)
    run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
    return TrainedModel(
        name=name,
        version=version,
        subject=model.spec["subject"],
        area=model.spec["area"],
        task=model.spec["task"],
        run_id=run_id,
        metrics=metrics,
        first_champion=first_champion,
    )


def _flatten(prefix: str, metrics: dict[str, Any]) -> dict[str, float]:
    """Every finite number of a nested metrics dict as an MLflow metric (``a_b_c`` names).

    ``precision_at: {"5": 0.9}`` becomes ``<prefix>precision_at_5``: the headline figures must
    be comparable across runs in MLflow itself, not only inside the metrics artifact.
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_flatten(f"{prefix}{key}_", value))
        elif isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
            flat[f"{prefix}{key}"] = float(value)
    return flat


def _test_metrics(
    y: np.ndarray, score: np.ndarray, revenue: np.ndarray, reasons: pd.Series
) -> dict[str, Any]:
    out: dict[str, Any] = {"controlled": ranking_metrics(y, score, revenue=revenue)}
    random = (reasons == "random").to_numpy()
    out["random_controls"] = ranking_metrics(y[random], score[random], revenue=revenue[random])
    out["calibration_curve"] = calibration_curve(y[random], score[random])
    return out


def _train_subject(
    settings: TrainingSettings,
    client: Any,
    subject: str,
    snapshot: str,
    progress: Progress,
    dask: Client | None,
) -> list[TrainedModel]:
    import mlflow

    progress(f"{subject}: labelled rows and point-in-time features")
    data = load_labelled_set(settings, subject)
    manifest = read_manifest(settings.workspace)
    split = choose_split(settings, data.event_time, data.labels["label_time"])
    logger.info("%s windows: %s", subject, split.describe())
    usable = ~data.labels["selection_reason"].isin(settings.exclude_selection_reasons).to_numpy()
    split = replace(split, train=split.train & usable, validation=split.validation & usable)
    features = model_features(subject, data.extras)
    vocabularies = fit_vocabularies(data.features[split.train], features)
    selection = _selection_weights(settings, data, split)
    weights = selection.weights
    trained: list[TrainedModel] = []
    tasks = [(area, "classification") for area in AREAS_BY_SUBJECT[subject]]
    if subject == "declaration" and manifest.revenue_known:
        tasks.append(("financial", REVENUE_TASK))
    elif subject == "declaration":
        # Unknown is not zero: a revenue model trained on the zeros would learn nothing true.
        # The command line says so in its notes; a warning here would say it twice.
        logger.info(
            "dataset %s: revenue recovered unknown, no revenue model trained", manifest.dataset
        )
    counted = f"training {subject} models"
    advance(progress, counted, 0, len(tasks))
    for done, (area, task) in enumerate(tasks, 1):
        y = (
            data.labels["revenue_recovered_eur"].to_numpy(dtype=float)
            if task == REVENUE_TASK
            else data.labels[f"y_{area}"].to_numpy(dtype=int)
        )
        positives = int((y[split.train] > 0).sum())
        if positives < settings.min_positive_labels or (y[split.validation] > 0).sum() < 3:
            logger.info(
                "%s/%s: %d training hits, below the minimum: no model", subject, area, positives
            )
            # On the training run, so a model card can say why an area has no model.
            mlflow.set_tag(
                no_model_tag(subject, area, task),
                f"{positives} training hits, {int((y[split.validation] > 0).sum())} in "
                f"validation (minimum {settings.min_positive_labels} and 3)",
            )
            advance(progress, counted, done, len(tasks))
            continue
        name = registered_name(settings, subject, "revenue" if task == REVENUE_TASK else area)
        started = time.perf_counter()
        with mlflow.start_run(run_name=f"{name}", nested=True):
            model = fit_area_model(
                settings,
                subject=subject,
                area=area,
                task=task,
                features=features,
                train_frame=data.features[split.train],
                y_train=y[split.train],
                w_train=weights[split.train],
                valid_frame=data.features[split.validation],
                y_valid=y[split.validation],
                w_valid=weights[split.validation],
                vocabularies=vocabularies,
                dask=dask,
            )
            model.spec.update(_provenance(data, split, snapshot, name))
            model.spec["selection_bias"] = selection.info
            model.spec["train_positives"] = positives
            model.spec.update(dataset=manifest.dataset, split=split.source)
            # What serving must build from a request's `extra` map for this model, and how it
            # must check a request's party ids: as the data the model learnt from.
            model.spec["extra_features"] = [asdict(f) for f in data.extras]
            model.spec["identifier_format"] = manifest.identifier_format
            score = predict(model, data.features[split.test])
            y_test = y[split.test]
            revenue = data.labels["revenue_recovered_eur"].to_numpy(dtype=float)[split.test]
            if task == REVENUE_TASK:
                metrics: dict[str, Any] = {
                    "controlled": ranking_metrics(
                        (y_test > 0).astype(int), score, revenue=revenue, with_probabilities=False
                    )
                }
            else:
                metrics = _test_metrics(
                    y_test, score, revenue, data.labels["selection_reason"][split.test]
                )
            metrics["n_train"] = int(split.train.sum())
            metrics["n_train_positive"] = positives
            metrics["seconds"] = time.perf_counter() - started
            mlflow.log_params(
                {
                    "subject": subject,
                    "area": area,
                    "task": task,
                    **{k: v for k, v in model.spec["params"].items() if not isinstance(v, list)},
                    "best_iteration": model.spec["best_iteration"],
                    "calibration": model.spec["calibration"]["method"],
                    **model.spec["training_engine"],
                    "split": split.source,
                    "split_windows": split.describe(),
                    "dataset": manifest.dataset,
                    # How the selection bias of the labels was handled (model cards read it).
                    "selection_weighting": settings.selection_weighting,
                    "ipw_power": settings.ipw_power,
                    "exclude_selection_reasons": ",".join(settings.exclude_selection_reasons),
                    **{
                        f"selection_bias_{k}": v
                        for k, v in selection.info.items()
                        if not isinstance(v, list)
                    },
                }
            )
            mlflow.log_metrics(_flatten("test_", metrics))
            mlflow.set_tags(
                {
                    "feature_service": data.feature_service,
                    "data_snapshot": snapshot,
                    "contract_version": CONTRACT_VERSION,
                    "subject": subject,
                    "area": area,
                }
            )
            tags = {
                "dataset": manifest.dataset,
                "feature_service": data.feature_service,
                "subject": subject,
                "area": area,
                "task": task,
                "data_snapshot": snapshot,
                "contract_version": CONTRACT_VERSION,
            }
            if settings.diagnostics:
                _log_diagnostics(
                    model, data, y_test, score, name, data.labels["selection_reason"][split.test]
                )
            trained.append(_log_model(settings, client, model, features, data, metrics, name, tags))
        logger.info(
            "%s v%s trained in %.1f s", name, trained[-1].version, time.perf_counter() - started
        )
        advance(progress, counted, done, len(tasks))
    return trained


def _selection_weights(
    settings: TrainingSettings, data: LabelledSet, split: TimeSplit
) -> SelectionWeights:
    """Inverse-propensity weights: recorded probabilities where the service selected, a
    propensity fitted on the training and validation windows elsewhere (training.weights)."""
    assert data.population is not None and data.labelled_rows is not None
    event = pd.to_datetime(data.population[EVENT_TIME[data.subject]], utc=True)
    window = (split.train_window[0], split.validation_window[1])
    fit_rows = ((event >= window[0]) & (event < window[1])).to_numpy()
    power = settings.ipw_power if settings.selection_weighting == "ipw" else 0.0
    return selection_weights(
        data.population,
        data.labelled_rows,
        data.labels["selection_probability"].to_numpy(dtype=float),
        data.subject,
        fit_rows=fit_rows,
        power=power,
        seed=settings.seed,
        fit_window=window,
    )


def _log_diagnostics(
    model: AreaModel,
    data: LabelledSet,
    y_test: np.ndarray,
    score: np.ndarray,
    name: str,
    selection_reason: pd.Series,
) -> None:
    """PR curve, calibration curve and SHAP summary (``shap`` library) as run artifacts, and the
    test window's labels and scores (model cards draw their curves from them)."""
    import mlflow

    from training.explain import calibration_plot, pr_curve_plot, shap_summary

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pd.DataFrame(
            {"label": y_test, "score": score, "selection_reason": selection_reason.to_numpy()}
        ).to_parquet(folder / "test_scores.parquet", index=False)
        if model.spec["task"] != REVENUE_TASK:
            pr_curve_plot(y_test, score, folder / "pr_curve.png", f"{name}: test window")
            calibration_plot(
                calibration_curve(y_test, score), folder / "calibration.png", f"{name}: test window"
            )
        matrix = encode(data.reference, model.spec["features"], model.spec["vocabularies"])
        importance = shap_summary(
            model.booster, matrix, model.spec["features"], folder / "shap_summary.png"
        )
        # Feature names include national attributes named by a mapping file: text from outside.
        csv_safe_frame(importance).to_csv(folder / "shap_importance.csv", index=False)
        mlflow.log_artifacts(str(folder), artifact_path="diagnostics")


def _provenance(data: LabelledSet, split: TimeSplit, snapshot: str, name: str) -> dict[str, Any]:
    return {
        "registered_model": name,
        "feature_service": data.feature_service,
        "contract_version": CONTRACT_VERSION,
        "data_snapshot": snapshot,
        "windows": {
            "train": [str(t) for t in split.train_window],
            "validation": [str(t) for t in split.validation_window],
            "test": [str(t) for t in split.test_window],
        },
        "rows": {
            "train": int(split.train.sum()),
            "validation": int(split.validation.sum()),
            "test": int(split.test.sum()),
        },
    }


def _cluster(
    settings: TrainingSettings, progress: Progress
) -> contextlib.AbstractContextManager[Client | None]:
    """The Dask client training runs on, or None to train in this process."""
    if settings.dask_scheduler is None:
        return contextlib.nullcontext(None)
    from training.dask_engine import dask_client

    progress(f"dask cluster {settings.dask_scheduler}")
    return dask_client(settings.dask_scheduler)


def train(
    settings: TrainingSettings,
    subjects: tuple[str, ...] = ("declaration", "ens"),
    progress: Progress = quiet,
) -> list[TrainedModel]:
    """Train, log and register every area model with enough labels; returns what was registered."""
    import mlflow

    client = configure_mlflow(settings)
    snapshot = data_snapshot_id(settings.workspace)
    trained: list[TrainedModel] = []
    manifest = read_manifest(settings.workspace)
    with mlflow.start_run(run_name="crisk train"), _cluster(settings, progress) as dask:
        mlflow.set_tags(
            {
                "data_snapshot": snapshot,
                "contract_version": CONTRACT_VERSION,
                "dataset": manifest.dataset,
                "split": "published" if manifest.split else "last_days",
                "revenue_known": str(manifest.revenue_known).lower(),
                "training_engine": "lightgbm" if dask is None else "lightgbm.dask",
            }
        )
        for subject in subjects:
            trained.extend(_train_subject(settings, client, subject, snapshot, progress, dask))
    unknown = {m.area for m in trained} - set(RISK_AREAS)
    if unknown:
        raise AssertionError(f"unknown areas trained: {unknown}")
    first = {m.name: m.version for m in trained if m.first_champion}
    if first:
        settings.workspace.mark_champion_changed(first, "first model of its area")
    return trained
