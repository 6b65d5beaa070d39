"""Benchmark: training every declaration area model on 1M labelled items (target ≤ 180 s, ≤ 6 GB).

The 1M-item synthetic world labels every item through its ground truth, so a million labelled
rows exist (in reality only controlled items are labelled). Features come from the point-in-time
retrieval (timed apart). crisk's training (``fit_area_model``: LightGBM with early stopping and
calibration, for financial, ipr, product_safety, prohibitions_restrictions and the revenue model)
is compared, in the same run, with scikit-learn's HistGradientBoosting on the same matrices
(classifier per area, Poisson regressor for revenue; same learning rate, leaves, depth, rounds
and early stopping). Each side runs in its own process, so peak memory is its own.

    .venv/bin/python benchmarks/training.py --home /tmp/ws1m
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its own name would shadow the
# `training` package: drop that entry before importing the project.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

AREAS = ("financial", "ipr", "product_safety", "prohibitions_restrictions")


def _prepare(home: Path, rows: int, folder: Path) -> None:
    """Features and ground-truth labels for ``rows`` items, saved for the timed processes."""
    from features.config import FeatureStoreSettings
    from features.model_input import model_frame, request_features
    from features.retrieval import entity_frame, historical_features

    records = pd.read_parquet(home / "data" / "declarations.parquet")
    records = records.sort_values("lodged_at").tail(rows).reset_index(drop=True)
    truth = pd.read_parquet(home / "world" / "ground_truth.parquet")
    truth = truth[truth["subject_type"] == "declaration"]
    truth = truth.assign(item_number=truth["item_number"].astype("int64"))
    labels = records[["declaration_id", "item_number"]].merge(
        truth, left_on=["declaration_id", "item_number"], right_on=["subject_id", "item_number"],
        how="left",
    )  # fmt: skip
    started = time.perf_counter()
    entities = entity_frame(records, "declaration")
    feast = historical_features(
        FeatureStoreSettings(home=home), "customs_risk_declaration_v1", entities
    )
    frame = pd.DataFrame(
        model_frame(request_features(records, "declaration"), feast, "declaration")
    )
    print(
        f"features for {len(frame):,} rows: {time.perf_counter() - started:.1f} s (not timed below)"
    )
    frame.to_parquet(folder / "features.parquet")
    labels[[*(f"irregular_{a}" for a in AREAS), "recoverable_revenue_eur"]].to_parquet(
        folder / "labels.parquet"
    )


def _data(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    frame = pd.read_parquet(folder / "features.parquet")
    labels = pd.read_parquet(folder / "labels.parquet")
    valid = np.zeros(len(frame), dtype=bool)
    valid[int(len(frame) * 0.85) :] = True  # the latest 15%: time-ordered validation
    return frame, labels, valid


def _crisk(folder: Path) -> dict:
    from features.model_input import FEATURES_BY_SUBJECT, fit_vocabularies
    from training.config import TrainingSettings
    from training.model import REVENUE_TASK
    from training.train import fit_area_model

    frame, labels, valid = _data(folder)
    settings = TrainingSettings(home=folder)
    features = FEATURES_BY_SUBJECT["declaration"]
    started = time.perf_counter()
    vocabularies = fit_vocabularies(frame[~valid], features)
    weights = np.ones(len(frame))
    rounds = {}
    tasks = [(a, "classification", f"irregular_{a}") for a in AREAS]
    tasks.append(("financial", REVENUE_TASK, "recoverable_revenue_eur"))
    for area, task, column in tasks:
        y = labels[column].to_numpy(dtype=float if task == REVENUE_TASK else int)
        model = fit_area_model(
            settings, subject="declaration", area=area, task=task, features=features,
            train_frame=frame[~valid], y_train=y[~valid], w_train=weights[~valid],
            valid_frame=frame[valid], y_valid=y[valid], w_valid=weights[valid],
            vocabularies=vocabularies,
        )  # fmt: skip
        rounds[f"{area}/{task}"] = model.spec["best_iteration"]
    return {"seconds": time.perf_counter() - started, "rounds": rounds}


def _sklearn(folder: Path) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from features.model_input import FEATURES_BY_SUBJECT, encode, fit_vocabularies
    from training.config import LightGBMParams

    frame, labels, valid = _data(folder)
    params = LightGBMParams()
    features = FEATURES_BY_SUBJECT["declaration"]
    names = [f.name for f in features]
    started = time.perf_counter()
    vocabularies = fit_vocabularies(frame[~valid], features)
    matrix = encode(frame, names, vocabularies)
    categorical = np.array([f.kind == "categorical" for f in features])
    common = {
        "learning_rate": params.learning_rate, "max_leaf_nodes": params.num_leaves,
        "max_depth": params.max_depth, "min_samples_leaf": params.min_data_in_leaf,
        "max_iter": params.max_rounds, "early_stopping": True,
        "n_iter_no_change": params.early_stopping_rounds, "validation_fraction": 0.15,
        "categorical_features": categorical, "random_state": 7,
    }  # fmt: skip
    rounds = {}
    for area in AREAS:
        y = labels[f"irregular_{area}"].to_numpy(dtype=int)
        model = HistGradientBoostingClassifier(**common).fit(matrix[~valid], y[~valid])
        rounds[area] = int(model.n_iter_)
    revenue = labels["recoverable_revenue_eur"].to_numpy(dtype=float)
    regressor = HistGradientBoostingRegressor(loss="poisson", **common)
    rounds["revenue"] = int(regressor.fit(matrix[~valid], revenue[~valid]).n_iter_)
    return {"seconds": time.perf_counter() - started, "rounds": rounds}


def _child(method: str, folder: Path) -> dict:
    out = folder / f"{method}.json"
    subprocess.run(
        [sys.executable, __file__, "--method", method, "--folder", str(folder)], check=True
    )
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, help="A workspace bootstrapped from a 1M-item world.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("FEAST_USAGE", "False")
    if args.method:
        result = _crisk(args.folder) if args.method == "crisk" else _sklearn(args.folder)
        result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        (args.folder / f"{args.method}.json").write_text(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _prepare(args.home, args.rows, folder)
        crisk = _child("crisk", folder)
        sklearn = _child("sklearn", folder)
    print(f"training all declaration area models on {args.rows:,} labelled items")
    print(
        f"  crisk (LightGBM + calibration): {crisk['seconds']:.1f} s, "
        f"peak {crisk['peak_gb']:.2f} GB"
    )
    print(f"    rounds: {crisk['rounds']}")
    print(f"  baseline (sklearn HistGradientBoosting): {sklearn['seconds']:.1f} s, "
          f"peak {sklearn['peak_gb']:.2f} GB")  # fmt: skip
    print(f"    rounds: {sklearn['rounds']}")
    print(f"  ratio crisk / baseline: {crisk['seconds'] / sklearn['seconds']:.2f}x")
    verdict = "met" if crisk["seconds"] <= 180 and crisk["peak_gb"] <= 6 else "MISSED"
    print(f"  targets <= 180 s and <= 6 GB: {verdict}")


if __name__ == "__main__":
    main()
