"""LightGBM trained data-parallel on a Dask cluster (``CRISK_TRAIN_DASK_SCHEDULER``).

``lightgbm.dask`` runs LightGBM's own distributed learner (``tree_learner=data``): every worker
builds histograms over its share of the rows and the workers agree on each split over
LightGBM's network, so the result is one ordinary :class:`lightgbm.Booster`, and MLflow
logging, calibration, SHAP and serving are the same as for a model trained on one machine.

Three things differ from ``lgb.train`` and are handled here:

- **Early stopping**: lightgbm 4.7's Dask interface does not support it (LightGBM issues #3712,
  #6351: each worker evaluates only the validation rows it holds and stops on its own, and the
  others wait for it forever). The cluster trains ``max_rounds`` trees; the early-stopping rule
  of ``lgb.early_stopping`` (best value so far, stop after ``rounds`` without improvement) is then
  replayed on the whole validation window with the returned booster, tree by tree, and the
  model is cut at the best iteration: the iteration the rule picks given the same curve.
- **Rows to workers**: each worker gets one partition of rows drawn at random (seeded), not a
  time slice: LightGBM finds each feature's bins (and a categorical's known levels) from one
  worker's rows, so each worker must see the whole period.
- **Threads**: each worker trains with as many threads as it has (``num_threads`` is the
  cluster's, not ``CRISK_TRAIN_LGBM_NUM_THREADS``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from training.config import DASK_SCHEDULER_PATTERN
from training.fit_data import FitData

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "DaskFit",
    "dask_client",
    "fit_on_dask",
    "replay_early_stopping",
    "validation_curve",
]

logger = logging.getLogger(__name__)

# Metrics whose larger values are better (LightGBM's own list for these names).
_HIGHER_IS_BETTER = {"average_precision", "auc"}
_LOG_EPSILON = 1e-15  # LightGBM's kEpsilon in binary_logloss
_TWEEDIE_EPSILON = 1e-10  # LightGBM's floor of the prediction in the tweedie metric


@dataclass(frozen=True)
class DaskFit:
    """A booster trained on the cluster and cut at the replayed early-stopping iteration."""

    booster: lgb.Booster
    best_iteration: int
    trained_rounds: int
    workers: int


@contextlib.contextmanager
def dask_client(scheduler: str) -> Iterator[Client]:
    """A client of ``scheduler``: ``local:N`` starts (and closes) a LocalCluster of N workers.

    Local workers are processes with one thread each and no dashboard (nothing listens beyond
    loopback); their logs below ERROR are dropped, and so is their standard output, where
    LightGBM's native library prints its network set-up from the worker's task thread whatever
    the verbosity (its log level and log callback are per thread). A ``tcp://`` or ``tls://``
    scheduler is only connected to: the cluster and its workers' output are its operator's.
    """
    from distributed import Client, LocalCluster

    if not re.fullmatch(DASK_SCHEDULER_PATTERN, scheduler):
        raise ValueError(f"dask_scheduler: {scheduler!r} is neither local:N nor tcp://host:port")
    with contextlib.ExitStack() as stack:
        if scheduler.startswith("local:"):
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=int(scheduler.removeprefix("local:")),
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
            client.run(_silence_standard_output)
        else:
            client = stack.enter_context(Client(scheduler))
        logger.info("dask: %d workers at %s", len(worker_addresses(client)), scheduler)
        yield client


def _silence_standard_output() -> None:
    """On a local worker process: file descriptor 1 (C's stdout too) to the null device."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def worker_addresses(client: Client) -> list[str]:
    return sorted(client.scheduler_info()["workers"])


def _partitioned(client: Client, array: np.ndarray, rows: list[np.ndarray]) -> Any:
    """A dask array with one partition per worker, each partition placed on its worker."""
    import dask
    import dask.array as da

    parts = []
    for worker, index in zip(worker_addresses(client), rows, strict=True):
        future = client.scatter(array[index], workers=[worker], hash=False)
        shape = (len(index), *array.shape[1:])
        parts.append(da.from_delayed(dask.delayed(future), shape=shape, dtype=array.dtype))
    return da.concatenate(parts)


def fit_on_dask(
    client: Client,
    params: dict[str, Any],
    data: FitData,
    *,
    max_rounds: int,
    early_stopping_rounds: int,
    seed: int,
) -> DaskFit:
    """Train on the cluster, replay early stopping on the validation rows, cut the booster."""
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    workers = worker_addresses(client)
    shuffled = np.random.default_rng(seed).permutation(len(data.y_train))
    rows = [np.sort(part) for part in np.array_split(shuffled, len(workers))]
    cluster_params = {k: v for k, v in params.items() if k not in ("num_threads", "metric")}
    regressor = params["objective"] != "binary"
    estimator = (DaskLGBMRegressor if regressor else DaskLGBMClassifier)(
        client=client, n_estimators=max_rounds, **cluster_params
    )
    starting: dict[str, Any] = {}
    if data.init_train is not None:
        starting["init_score"] = _partitioned(client, data.init_train, rows)
    chatter = io.StringIO()
    # lightgbm.dask announces its port search on stdout and warns that it sets the threads
    # itself; neither is news to the person running `crisk train`.
    with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter .* will be ignored")
        estimator.fit(
            _partitioned(client, data.x_train, rows),
            _partitioned(client, data.y_train, rows),
            sample_weight=_partitioned(client, data.w_train, rows),
            feature_name=data.feature_names,
            categorical_feature=data.categorical,
            **starting,
        )
    logger.debug("lightgbm.dask: %s", chatter.getvalue().strip())
    booster = estimator.to_local().booster_
    curve = validation_curve(booster, data, params)
    best = replay_early_stopping(curve, early_stopping_rounds, params["metric"])
    cut = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return DaskFit(
        booster=cut, best_iteration=best, trained_rounds=booster.num_trees(), workers=len(workers)
    )


def validation_curve(booster: lgb.Booster, data: FitData, params: dict[str, Any]) -> np.ndarray:
    """The validation metric after each tree, as LightGBM's metric of that name computes it
    (from the rows' starting scores, as ``lgb.train`` evaluates a validation set with them)."""
    metric = _metric(params)
    x, y, w = data.x_valid, data.y_valid, data.w_valid
    raw = np.zeros(len(y)) if data.init_valid is None else np.array(data.init_valid, dtype=float)
    values = np.empty(booster.num_trees())
    for tree in range(booster.num_trees()):
        # One tree at a time: the running sum is the raw score after each iteration (the
        # starting average is inside the first tree's leaves).
        raw += booster.predict(x, start_iteration=tree, num_iteration=1, raw_score=True)
        values[tree] = metric(raw, y, w)
    return values


def replay_early_stopping(curve: np.ndarray, rounds: int, metric: str) -> int:
    """The 1-based best iteration ``lgb.early_stopping(rounds)`` would stop with on ``curve``."""
    higher = metric in _HIGHER_IS_BETTER
    best_value, best_index = curve[0], 0
    for index, value in enumerate(curve[1:], 1):
        if (value > best_value) if higher else (value < best_value):
            best_value, best_index = value, index
        elif index - best_index >= rounds:
            break
    return best_index + 1


def _metric(params: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    name = params["metric"]
    if name == "binary_logloss":
        return _binary_logloss
    if name == "tweedie":
        power = float(params["tweedie_variance_power"])
        return lambda raw, y, w: _tweedie(raw, y, w, power)
    if name in ("average_precision", "auc"):
        from sklearn.metrics import average_precision_score, roc_auc_score

        score = average_precision_score if name == "average_precision" else roc_auc_score
        return lambda raw, y, w: float(score(y, raw, sample_weight=w))
    raise ValueError(f"early_stopping_metric: {name!r} has no replay on the Dask path")


def _binary_logloss(raw: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    probability = 1.0 / (1.0 + np.exp(-raw))
    chosen = np.where(y > 0, probability, 1.0 - probability)
    loss = -np.log(np.maximum(chosen, _LOG_EPSILON))
    return float(np.sum(loss * w) / np.sum(w))


def _tweedie(raw: np.ndarray, y: np.ndarray, w: np.ndarray, power: float) -> float:
    mean = np.maximum(np.exp(raw), _TWEEDIE_EPSILON)
    loss = -y * mean ** (1 - power) / (1 - power) + mean ** (2 - power) / (2 - power)
    return float(np.sum(loss * w) / np.sum(w))
