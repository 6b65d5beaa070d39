"""The Dask path's early stopping: LightGBM's validation metrics and stopping rule, replayed.

lightgbm.dask cannot stop early (each worker would judge its own validation rows), so the
cluster trains every round and ``training.dask_engine`` picks the iteration afterwards. These
tests train *locally* with LightGBM's own evaluation and ``lgb.early_stopping`` and check that
the replay computes the same curve and picks the same iteration, for every metric crisk uses.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from pydantic import ValidationError

from training.config import TrainingSettings
from training.dask_engine import replay_early_stopping, validation_curve
from training.fit_data import FitData

ROUNDS = 60
PATIENCE = 8


def _data(task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1_500, 5))
    x[:, 4] = rng.integers(0, 12, len(x))  # a categorical column, as crisk's encoded codes
    signal = x[:, 0] - 0.5 * x[:, 1] + (x[:, 4] % 3 == 0)
    if task == "binary":
        y = (signal + rng.normal(size=len(x)) > 1.2).astype(float)
    else:
        y = np.where(signal + rng.normal(size=len(x)) > 1.0, rng.gamma(2.0, 50.0, len(x)), 0.0)
    return x, y, rng.lognormal(0.0, 0.4, len(x))  # uneven weights, as IPW gives


def _params(metric: str) -> dict[str, Any]:
    objective = "tweedie" if metric == "tweedie" else "binary"
    params = {"objective": objective, "metric": metric, "learning_rate": 0.2, "num_leaves": 7}
    if objective == "tweedie":
        params["tweedie_variance_power"] = 1.3
    # One thread: OpenMP threads spinning on a shared 2-core machine cost seconds per fit.
    common = {"min_data_in_leaf": 20, "seed": 1, "deterministic": True, "num_threads": 1}
    return params | common | {"verbosity": -1}


@pytest.mark.parametrize(
    ("metric", "offset"),
    [
        ("binary_logloss", False),
        ("average_precision", False),
        ("auc", False),
        ("tweedie", False),
        ("tweedie", True),  # the revenue model: log declared value as the starting margin
    ],
)
def test_replay_matches_lightgbm_evaluation_and_early_stopping(metric: str, offset: bool) -> None:
    x, y, w = _data("tweedie" if metric == "tweedie" else "binary")
    train, valid = slice(0, 1_000), slice(1_000, None)
    params = _params(metric)
    init = np.log1p(np.abs(x[:, 2]) * 40.0) if offset else None

    def start(rows: slice) -> np.ndarray | None:
        return None if init is None else init[rows]

    def fit(callback: Any) -> lgb.Booster:
        train_set = lgb.Dataset(
            x[train], y[train], weight=w[train], init_score=start(train), categorical_feature=[4]
        )
        valid_set = lgb.Dataset(
            x[valid], y[valid], weight=w[valid], init_score=start(valid), reference=train_set
        )
        return lgb.train(
            params, train_set, num_boost_round=ROUNDS, valid_sets=[valid_set], callbacks=[callback]
        )

    recorded: dict[str, Any] = {}
    full = fit(lgb.record_evaluation(recorded))
    data = FitData(
        x_train=x[train],
        y_train=y[train],
        w_train=w[train],
        x_valid=x[valid],
        y_valid=y[valid],
        w_valid=w[valid],
        feature_names=[f"f{i}" for i in range(5)],
        categorical=[4],
        init_train=start(train),
        init_valid=start(valid),
    )
    curve = validation_curve(full, data, params)
    expected = np.asarray(recorded["valid_0"][metric])
    np.testing.assert_allclose(curve, expected, rtol=1e-6, atol=1e-9)
    stopped = fit(lgb.early_stopping(PATIENCE, verbose=False))
    assert replay_early_stopping(curve, PATIENCE, metric) == stopped.best_iteration


def test_replay_without_improvement_for_the_patience_stops_at_the_best() -> None:
    falling_then_flat = np.array([0.9, 0.8, 0.7, 0.71, 0.72, 0.69, 0.75, 0.76, 0.77, 0.65])
    assert replay_early_stopping(falling_then_flat, 3, "binary_logloss") == 6
    assert replay_early_stopping(falling_then_flat, 2, "binary_logloss") == 3
    assert replay_early_stopping(falling_then_flat, 3, "auc") == 1  # higher is better
    assert replay_early_stopping(np.array([0.5]), 3, "binary_logloss") == 1


@pytest.mark.parametrize("value", ["local:2", "local:16", "tcp://10.1.2.3:8786", "tls://dask:443"])
def test_dask_scheduler_accepts_a_local_cluster_or_an_address(value: str) -> None:
    assert TrainingSettings(dask_scheduler=value).dask_scheduler == value


@pytest.mark.parametrize("value", ["local:0", "local", "10.1.2.3:8786", "tcp://host", "http://h:1"])
def test_dask_scheduler_refuses_anything_else_naming_the_field(value: str) -> None:
    with pytest.raises(ValidationError, match="dask_scheduler"):
        TrainingSettings(dask_scheduler=value)


def test_dask_scheduler_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRISK_TRAIN_DASK_SCHEDULER", "local:3")
    assert TrainingSettings().dask_scheduler == "local:3"
    monkeypatch.delenv("CRISK_TRAIN_DASK_SCHEDULER")
    assert TrainingSettings().dask_scheduler is None
