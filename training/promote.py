"""`crisk promote`: the challenger replaces the champion only if it is not worse.

Both versions are scored on the same evaluation window and set, chosen as ``crisk evaluate``
chooses it (random controls when they hold enough hits of the area, else every labelled
control; never the synthetic ground truth, which a deployment does not have). The challenger
wins when its metric is at least the champion's less ``promotion_margin`` of it (relative, so
it means the same in a rare area as in a frequent one) and at least what the rule-based
profiles reach on the same set (a model that selects worse than the rules it supplements must
not take over). Every decision, with its numbers, is an MLflow run, so an auditor can see why
the model that served on a given day was serving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.baselines import rule_scores
from training.config import TrainingSettings
from training.evaluate import (
    EvaluationSet,
    evaluation_sets,
    operator_register,
    primary_set,
    rule_profiles,
    test_window,
)
from training.metrics import ranking_metrics
from training.model import REVENUE_TASK, AreaModel, predict
from training.registry import (
    CHALLENGER,
    CHAMPION,
    configure_mlflow,
    load_version,
    registered_models,
)

__all__ = ["PromotionDecision", "promote"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionDecision:
    name: str
    challenger: str | None
    champion_before: str | None
    champion_after: str | None
    promoted: bool
    reason: str
    metric: str = ""
    dataset: str = ""
    challenger_value: float = float("nan")
    champion_value: float = float("nan")
    margin: float = 0.0
    rules_value: float = float("nan")


def _rate(settings: TrainingSettings) -> str:
    return settings.promotion_metric.rsplit("_", 1)[-1]


def _value(spec: dict[str, Any], score: np.ndarray, data: EvaluationSet, rate: str) -> float:
    """Precision at ``rate`` % (revenue share for the revenue model) of a ranking by ``score``."""
    if spec["task"] == REVENUE_TASK:
        revenue = data.labels["revenue_recovered_eur"].to_numpy(dtype=float)
        result = ranking_metrics(
            (revenue > 0).astype(int), score, revenue=revenue, with_probabilities=False
        )
        return float(result["revenue_at"][rate])
    y = data.labels[f"y_{spec['area']}"].to_numpy(dtype=int)
    return float(ranking_metrics(y, score, with_probabilities=False)["precision_at"][rate])


def _metric(
    model: AreaModel, settings: TrainingSettings, data: EvaluationSet
) -> tuple[str, str, float]:
    """(metric name, dataset, value) of one model on its subject's evaluation set."""
    rate = _rate(settings)
    measure = "revenue_at" if model.spec["task"] == REVENUE_TASK else "precision_at"
    value = _value(model.spec, predict(model, data.features), data, rate)
    return f"{measure}_{rate}", data.name, value


def _rules_metric(settings: TrainingSettings, spec: dict[str, Any], data: EvaluationSet) -> float:
    """What the rule-based profiles reach on the same set and metric as the model."""
    subject = spec["subject"]
    profiles = rule_profiles(settings, subject)
    score = rule_scores(data.records, subject, profiles, operator_register(settings))
    return _value(spec, score, data, _rate(settings))


def _evaluation_data(settings: TrainingSettings, subject: str) -> dict[str, EvaluationSet]:
    # Without the synthetic ground truth: the gate decides on what a deployment has.
    return evaluation_sets(settings, subject, test_window(settings, subject))


def _decide(
    settings: TrainingSettings,
    client: Any,
    name: str,
    evaluation_data: Callable[[str], dict[str, EvaluationSet]] | None = None,
) -> PromotionDecision:
    challenger = load_version(client, name, CHALLENGER)
    champion = load_version(client, name, CHAMPION)
    if challenger is None:
        current = None if champion is None else str(champion[0].version)
        return PromotionDecision(name, None, current, current, False, "no challenger")
    challenger_version = str(challenger[0].version)
    if champion is None:
        client.set_registered_model_alias(name, CHAMPION, challenger_version)
        return PromotionDecision(
            name, challenger_version, None, challenger_version, True, "no champion yet"
        )
    champion_version = str(champion[0].version)
    if champion_version == challenger_version:
        return PromotionDecision(
            name, challenger_version, champion_version, champion_version, False,
            "the challenger is already the champion",
        )  # fmt: skip
    sets = (evaluation_data or (lambda subject: _evaluation_data(settings, subject)))(
        challenger[1].spec["subject"]
    )
    data = primary_set(sets, challenger[1].spec.get("area"), settings.primary_min_random_hits)
    metric, dataset, new = _metric(challenger[1], settings, data)
    _, _, old = _metric(champion[1], settings, data)
    rules = _rules_metric(settings, challenger[1].spec, data)
    margin = settings.promotion_margin
    not_worse = bool(np.isfinite(new) and (not np.isfinite(old) or new >= old * (1 - margin)))
    beats_rules = bool(not np.isfinite(rules) or (np.isfinite(new) and new >= rules))
    promoted = not_worse and beats_rules
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger_version)
    verdict = (
        "not worse, promoted"
        if promoted
        else "worse than the rule profiles, champion kept"
        if not_worse
        else "worse, champion kept"
    )
    reason = (
        f"challenger {metric} {new:.4f} vs champion {old:.4f} (allowed {margin:.0%} less), "
        f"rule profiles {rules:.4f}: {verdict}"
    )
    return PromotionDecision(
        name, challenger_version, champion_version,
        challenger_version if promoted else champion_version, promoted, reason, metric, dataset,
        new, old, margin, rules,
    )  # fmt: skip


def promote(settings: TrainingSettings, names: list[str] | None = None) -> list[PromotionDecision]:
    """Decide for every registered model (or ``names``); each decision is logged to MLflow."""
    import mlflow

    client = configure_mlflow(settings)
    decisions = []
    cache: dict[str, dict[str, EvaluationSet]] = {}  # one evaluation per subject type

    def evaluation_data(subject: str) -> dict[str, EvaluationSet]:
        if subject not in cache:
            cache[subject] = _evaluation_data(settings, subject)
        return cache[subject]

    for name in registered_models(client, settings.model_prefix) if names is None else names:
        decision = _decide(settings, client, name, evaluation_data)
        with mlflow.start_run(run_name=f"crisk promote {name}"):
            record = asdict(decision)
            mlflow.set_tags(
                {"decision": "promoted" if decision.promoted else "kept", "model": name,
                 "reason": decision.reason}
            )  # fmt: skip
            mlflow.log_params(
                {
                    k: record[k]
                    for k in (
                        "challenger",
                        "champion_before",
                        "champion_after",
                        "metric",
                        "dataset",
                        "margin",
                    )
                }
            )
            for key in ("challenger_value", "champion_value", "rules_value"):
                if np.isfinite(record[key]):
                    mlflow.log_metric(key, record[key])
        logger.info("%s: %s", name, decision.reason)
        decisions.append(decision)
    return decisions
