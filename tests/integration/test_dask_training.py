"""Training on Dask (``CRISK_TRAIN_DASK_SCHEDULER``): a LocalCluster of 2 worker processes.

Two questions, one cluster for the module:

1. **Same quality as one machine.** The declaration financial model trained with lightgbm.dask
   and with ``lgb.train`` (both through ``fit_area_model``, same rows, weights, categoricals and
   seed) is scored on the same later items. The labels here are the synthetic world's ground
   truth for *every* item: the test judges the learning engine, not the selection of controls,
   and the workspace's own test window (about 400 controlled items, 38 hits) would leave any
   tolerance meaningless. With about 4,500 test items and 380 hits, local training with seeds
   7 to 10 spread by 0.012 in average precision and 0.035 in Precision@5% (225 selected items:
   a binomial sd of about 0.03); distributed training adds its own differences (each feature's
   bins come from one worker's half of the rows, each worker bags its own rows). The tolerance,
   0.03 in average precision and 0.06 in Precision@5%, is about two of those spreads: a real
   defect (a lost categorical, a wrong weight, a wrong early stop) costs far more. The revenue
   model too: it keeps the declared value as its exposure (the log-link offset) on the cluster,
   and the share of the test window's revenue at risk in its top 5% stays within 0.05.
2. **The pipeline around it is unchanged.** ``train`` on a copy of the trained workspace with the
   scheduler set registers models whose MLflow run says which engine trained them, whose
   booster is a plain LightGBM model cut at the replayed best iteration, and which the registry
   loads back and scores like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.config import FeatureStoreSettings
from features.model_input import (
    FEATURES_BY_SUBJECT,
    fit_vocabularies,
    model_frame,
    request_features,
)
from features.retrieval import entity_frame, historical_features
from tests.integration.workspaces import copy_workspace, crisk_home, runs_named
from training.config import LightGBMParams, TrainingSettings
from training.dask_engine import dask_client
from training.metrics import ranking_metrics
from training.model import AreaModel, predict
from training.registry import load_version
from training.train import fit_area_model, train

pytestmark = pytest.mark.integration

AP_TOLERANCE = 0.03
PRECISION_AT_5_TOLERANCE = 0.06
REVENUE_SHARE_TOLERANCE = 0.05
MIN_POSITIVE_LABELS = 15  # as the trained workspace's bootstrap used


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with dask_client("local:2") as client:
        yield client


def _frame_and_truth(home: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Point-in-time features of every declaration item, in lodgement order, and its truth
    (columns: irregular financially, recoverable revenue in EUR)."""
    records = pd.read_parquet(home / "data" / "declarations.parquet")
    records = records.sort_values("lodged_at", kind="stable").reset_index(drop=True)
    truth = pd.read_parquet(home / "world" / "ground_truth.parquet")
    truth = truth[truth["subject_type"] == "declaration"]
    truth = truth.assign(item_number=truth["item_number"].astype("int64"))
    labels = records[["declaration_id", "item_number"]].merge(
        truth,
        left_on=["declaration_id", "item_number"],
        right_on=["subject_id", "item_number"],
        how="left",
        validate="one_to_one",
    )
    features = historical_features(
        FeatureStoreSettings(home=home),
        "customs_risk_declaration_v1",
        entity_frame(records, "declaration"),
    )
    frame = pd.DataFrame(
        model_frame(request_features(records, "declaration"), features, "declaration")
    )
    return frame, labels[["irregular_financial", "recoverable_revenue_eur"]].to_numpy()


def test_dask_model_scores_as_well_as_the_single_machine_model(
    trained_workspace: Path, cluster: Any
) -> None:
    frame, truth = _frame_and_truth(trained_workspace)
    y, revenue = truth[:, 0].astype(int), truth[:, 1].astype(float)
    n = len(frame)
    train_rows, valid_rows, test_rows = (
        slice(0, int(n * 0.7)),
        slice(int(n * 0.7), int(n * 0.85)),
        slice(int(n * 0.85), n),
    )
    weights = np.random.default_rng(3).lognormal(0.0, 0.5, n)  # uneven, as IPW makes them
    features = FEATURES_BY_SUBJECT["declaration"]
    assert any(f.kind == "categorical" for f in features)
    vocabularies = fit_vocabularies(frame[train_rows], features)
    # 200 rounds leave room to stop early (the best iteration was 75 to 112 on one machine over
    # seeds 7 to 10) and halve the cluster's work: it always grows every round.
    settings = TrainingSettings(home=trained_workspace, lgbm=LightGBMParams(max_rounds=200))

    def fit(dask: Any, task: str = "classification", labels: np.ndarray = y) -> AreaModel:
        return fit_area_model(
            settings,
            subject="declaration",
            area="financial",
            task=task,
            features=features,
            train_frame=frame[train_rows],
            y_train=labels[train_rows],
            w_train=weights[train_rows],
            valid_frame=frame[valid_rows],
            y_valid=labels[valid_rows],
            w_valid=weights[valid_rows],
            vocabularies=vocabularies,
            dask=dask,
        )

    local, distributed = fit(None), fit(cluster)
    assert distributed.spec["training_engine"] == {
        "training_engine": "lightgbm.dask",
        "dask_workers": 2,
        "dask_trained_rounds": settings.lgbm.max_rounds,
    }
    assert distributed.booster.num_trees() == distributed.spec["best_iteration"]
    assert 1 <= distributed.spec["best_iteration"] < settings.lgbm.max_rounds  # it did stop
    # The categorical columns stay categorical in the trees the cluster grew.
    categorical = {i for i, f in enumerate(features) if f.kind == "categorical"}
    split_as_categories = _categorical_splits(distributed.booster.dump_model())
    assert split_as_categories and split_as_categories <= categorical
    y_test = y[test_rows]
    # 265 on the shared world since the origin-laundering scheme (seed 5): the tolerances were
    # measured with 300-350, so keep a floor close to what they were measured on.
    assert y_test.sum() >= 250, "too few hits in the test window for the tolerance"
    models = {"local": local, "dask": distributed}
    scores = {name: predict(model, frame[test_rows]) for name, model in models.items()}
    metrics = {name: ranking_metrics(y_test, s) for name, s in scores.items()}
    ap = {name: m["pr_auc"] for name, m in metrics.items()}
    p5 = {name: m["precision_at"]["5"] for name, m in metrics.items()}
    assert abs(ap["dask"] - ap["local"]) <= AP_TOLERANCE, ap
    assert abs(p5["dask"] - p5["local"]) <= PRECISION_AT_5_TOLERANCE, p5
    assert np.corrcoef(scores["local"], scores["dask"])[0, 1] > 0.9
    _revenue_models_agree(fit, cluster, revenue, frame[test_rows], revenue[test_rows])


def _revenue_models_agree(
    fit: Any, cluster: Any, revenue: np.ndarray, test_frame: pd.DataFrame, test_revenue: np.ndarray
) -> None:
    """The revenue model grown on the cluster keeps the declared value as its exposure (the
    log-link offset) and ranks the revenue at risk as the one-machine model does."""
    local, distributed = (fit(dask, "revenue", revenue) for dask in (None, cluster))
    assert distributed.spec["exposure"] == local.spec["exposure"]
    predicted = {"local": predict(local, test_frame), "dask": predict(distributed, test_frame)}
    top = max(1, round(0.05 * len(test_frame)))
    recovered = {
        name: float(test_revenue[np.argsort(-p, kind="stable")[:top]].sum())
        for name, p in predicted.items()
    }
    # Share of the test window's revenue at risk in each model's top 5%: with seeds 7 to 10 it
    # was 0.722-0.747 on one machine and 0.729-0.750 on the cluster (at most 0.02 apart for one
    # seed); the tolerance is two of those spreads.
    share = {name: r / test_revenue.sum() for name, r in recovered.items()}
    assert abs(share["dask"] - share["local"]) <= REVENUE_SHARE_TOLERANCE, share
    assert np.corrcoef(np.log1p(predicted["local"]), np.log1p(predicted["dask"]))[0, 1] > 0.9


def _categorical_splits(dumped: dict[str, Any]) -> set[int]:
    """Feature indices some split of the dumped model treats as categorical (``==`` splits)."""
    found: set[int] = set()

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            if node.get("decision_type") == "==":
                found.add(int(node["split_feature"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in dumped["tree_info"]:
        walk(tree["tree_structure"])
    return found


def test_train_on_dask_registers_plain_models_that_say_how_they_were_trained(
    trained_workspace: Path, tmp_path: Path, cluster: Any
) -> None:
    home = copy_workspace(trained_workspace, tmp_path / "home")
    address = cluster.scheduler.address
    settings = TrainingSettings(
        home=home,
        dask_scheduler=address,
        min_positive_labels=MIN_POSITIVE_LABELS,
        diagnostics=False,
    )
    with crisk_home(home) as client:
        trained = train(settings, subjects=("ens",))
        assert trained, "no ENS area had enough labels in the test workspace"
        (parent,) = runs_named(client, "crisk train")[:1]
        assert parent.data.tags["training_engine"] == "lightgbm.dask"
        for model in trained:
            params = client.get_run(model.run_id).data.params
            assert params["training_engine"] == "lightgbm.dask"
            assert params["dask_workers"] == "2"
            loaded = load_version(client, model.name, "challenger")
            assert loaded is not None
            version, area_model = loaded
            assert str(version.version) == model.version
            assert area_model.booster.num_trees() == area_model.spec["best_iteration"]
            assert area_model.spec["training_engine"]["training_engine"] == "lightgbm.dask"
            probability = predict(
                area_model, _reference_sample(model.name, model.version, tmp_path)
            )
            assert len(probability) and np.isfinite(probability).all()
            assert ((probability >= 0) & (probability <= 1)).all()


def _reference_sample(name: str, version: str, folder: Path) -> pd.DataFrame:
    """The feature rows logged with a registered version (what serving summarises)."""
    target = folder / f"{name}-{version}"
    target.mkdir()
    path = Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(target))
    )
    return pd.read_parquet(path / "artifacts" / "reference_sample.parquet")
