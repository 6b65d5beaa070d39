"""`crisk promote`: the challenger replaces the champion unless it is significantly worse.

A gate that knows its uncertainty. Challenger and champion are scored on the *same* labelled
items of their subject's evaluation window — what a deployment has, never the synthetic ground
truth — in the set ``crisk evaluate`` takes as primary (``primary_choice``): the random controls
when they hold at least ``primary_min_random_hits`` irregular items of the area (the unbiased
set), else every labelled control of the window (``controlled``). A paired bootstrap over those
items gives the interval of the difference challenger − champion in Precision@n% and
Revenue@n% (n from ``promotion_metric``). The challenger is promoted when

- the evidence is enough: the set holds at least ``gate_min_hits`` hits (else the champion is
  kept: a coin toss on a handful of hits must not replace a model);
- it is not significantly worse than the champion: the interval's upper bound is not below
  ``-promotion_margin`` × the champion's value (on precision, and on revenue for the financial
  and revenue models);
- it is not significantly worse than the rule-based profiles on the same items (a model that
  selects worse than the rules it supplements must not take over).

Every decision is an MLflow run (tags ``decision``, ``model``, ``reason``; parameters and metrics
with the counts, the values, the interval bounds), so an auditor can see why the model that
served on a given day was serving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.baselines import rule_scores
from training.bootstrap import Interval, paired_bootstrap
from training.config import TrainingSettings
from training.evaluate import (
    EvaluationSet,
    evaluation_sets,
    operator_register,
    primary_choice,
    rule_profiles,
    test_window,
)
from training.model import REVENUE_TASK, predict
from training.registry import (
    CHALLENGER,
    CHAMPION,
    configure_mlflow,
    load_version,
    registered_models,
)

__all__ = ["GATE_SETS", "Comparison", "PromotionDecision", "compare", "gate_set", "promote"]

logger = logging.getLogger(__name__)

# The sets the gate may decide on, in order of preference; never the synthetic ground truth.
GATE_SETS = ("random_controls", "controlled")
_NAN = float("nan")


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
    challenger_value: float = _NAN
    champion_value: float = _NAN
    margin: float = 0.0
    rules_value: float = _NAN
    n_items: int = 0
    n_hits: int = 0
    difference: float = _NAN
    difference_low: float = _NAN
    difference_high: float = _NAN
    rules_difference_low: float = _NAN
    rules_difference_high: float = _NAN
    revenue_challenger: float = _NAN
    revenue_champion: float = _NAN
    revenue_difference_low: float = _NAN
    revenue_difference_high: float = _NAN
    confidence: float = _NAN
    resamples: int = 0
    min_hits: int = 0


@dataclass(frozen=True)
class Comparison:
    """Challenger, champion and rules on the same items, with paired-bootstrap intervals."""

    dataset: str
    n_items: int
    n_hits: int
    metric: str  # precision_at_<n> or revenue_at_<n>: the one the decision leads with
    challenger: Interval
    champion: Interval
    rules: Interval
    difference: Interval  # challenger - champion on the metric
    rules_difference: Interval  # challenger - rules on the metric
    revenue_challenger: Interval
    revenue_champion: Interval
    revenue_difference: Interval
    revenue_decides: bool  # revenue is this model's own objective (financial, revenue model)


def _rate(settings: TrainingSettings) -> str:
    return settings.promotion_metric.rsplit("_", 1)[-1]


def _target(spec: dict[str, Any], data: EvaluationSet) -> np.ndarray:
    if spec["task"] == REVENUE_TASK:
        return (data.labels["revenue_recovered_eur"].to_numpy(dtype=float) > 0).astype(int)
    return data.labels[f"y_{spec['area']}"].to_numpy(dtype=int)


def gate_set(
    sets: dict[str, EvaluationSet],
    spec: dict[str, Any],
    min_hits: int,
    random_min_hits: int | None = None,
) -> tuple[EvaluationSet | None, str]:
    """The set to decide on, chosen as ``crisk evaluate`` chooses its primary set.

    Random controls when they hold ``random_min_hits`` irregular items of the model's area
    (``primary_min_random_hits``; ``min_hits`` when not given), else every labelled control of
    the window; never the synthetic ground truth. Returns (None, why) when the chosen set is
    missing or holds fewer than ``min_hits`` hits of the model's target: too little evidence.
    """
    usable = {name: sets[name] for name in GATE_SETS if name in sets}
    if not usable:
        return None, f"not enough evidence: no labelled set; {min_hits} needed"
    threshold = min_hits if random_min_hits is None else random_min_hits
    name, why = primary_choice(usable, spec.get("area"), threshold)
    data = usable.get(name)
    hits = 0 if data is None else int(_target(spec, data).sum())
    if data is None or hits < min_hits:
        size = 0 if data is None else len(data.labels)
        return None, (
            f"not enough evidence: {hits} hits in {name} ({size} items; {why}); {min_hits} needed"
        )
    return data, why


def compare(
    spec: dict[str, Any],
    challenger_score: np.ndarray,
    champion_score: np.ndarray,
    rules_score: np.ndarray,
    data: EvaluationSet,
    settings: TrainingSettings,
) -> Comparison:
    """Paired bootstrap of challenger, champion and rules on ``data`` (same items)."""
    rate = _rate(settings)
    y = _target(spec, data)
    revenue = data.labels["revenue_recovered_eur"].to_numpy(dtype=float)
    boot = paired_bootstrap(
        y,
        {
            "challenger": (challenger_score, None),
            "champion": (champion_score, None),
            "rules": (rules_score, None),
        },
        rate=float(rate),
        revenue=revenue,
        resamples=settings.gate_resamples,
        confidence=settings.gate_confidence,
        seed=settings.seed,
    )
    revenue_model = spec["task"] == REVENUE_TASK
    measure = "revenue" if revenue_model else "precision"
    return Comparison(
        dataset=data.name,
        n_items=len(y),
        n_hits=int(y.sum()),
        metric=f"{measure}_at_{rate}",
        challenger=boot.value(measure, "challenger"),
        champion=boot.value(measure, "champion"),
        rules=boot.value(measure, "rules"),
        difference=boot.difference(measure, "challenger", "champion"),
        rules_difference=boot.difference(measure, "challenger", "rules"),
        revenue_challenger=boot.value("revenue", "challenger"),
        revenue_champion=boot.value("revenue", "champion"),
        revenue_difference=boot.difference("revenue", "challenger", "champion"),
        revenue_decides=revenue_model or spec.get("area") == "financial",
    )


def _significantly_worse(difference: Interval, reference: Interval, margin: float) -> bool:
    """The whole interval lies below the tolerated loss (``margin`` of the reference)."""
    if not difference.finite:
        return False
    tolerance = margin * abs(reference.value) if reference.finite else 0.0
    return bool(difference.high < -tolerance)


def _verdict(comparison: Comparison, settings: TrainingSettings) -> tuple[bool, str]:
    margin = settings.promotion_margin
    if not comparison.challenger.finite:
        return False, "the challenger cannot be scored on this set, champion kept"
    worse = _significantly_worse(comparison.difference, comparison.champion, margin)
    worse_revenue = comparison.revenue_decides and _significantly_worse(
        comparison.revenue_difference, comparison.revenue_champion, margin
    )
    below_rules = _significantly_worse(comparison.rules_difference, comparison.rules, 0.0)
    if worse or worse_revenue:
        what = "precision" if worse else "revenue"
        return False, f"significantly worse than the champion ({what}), champion kept"
    if below_rules:
        return False, "significantly worse than the rule profiles, champion kept"
    return True, "not significantly worse, promoted"


def _describe(comparison: Comparison, settings: TrainingSettings, verdict: str) -> str:
    d, r = comparison.difference, comparison.revenue_difference
    level = f"{settings.gate_confidence:.0%}"
    revenue = (
        f"; revenue share {comparison.revenue_challenger.value:.4f} vs "
        f"{comparison.revenue_champion.value:.4f}, difference {level} [{r.low:+.4f}, {r.high:+.4f}]"
        if r.finite
        else ""
    )
    return (
        f"{comparison.dataset}: {comparison.n_items} items, {comparison.n_hits} hits; challenger "
        f"{comparison.metric} {comparison.challenger.value:.4f} vs champion "
        f"{comparison.champion.value:.4f}, difference {d.value:+.4f} {level} "
        f"[{d.low:+.4f}, {d.high:+.4f}]{revenue}; rule profiles {comparison.rules.value:.4f}: "
        f"{verdict}"
    )


def _rules_score(
    settings: TrainingSettings, spec: dict[str, Any], data: EvaluationSet
) -> np.ndarray:
    subject = spec["subject"]
    profiles = rule_profiles(settings, subject)
    return rule_scores(data.records, subject, profiles, operator_register(settings))


def _gate_sets(settings: TrainingSettings, subject: str) -> dict[str, EvaluationSet]:
    sets = evaluation_sets(settings, subject, test_window(settings, subject))
    return {name: sets[name] for name in GATE_SETS if name in sets}


def _decision(
    name: str,
    versions: tuple[str, str],
    promoted: bool,
    reason: str,
    comparison: Comparison | None,
    settings: TrainingSettings,
) -> PromotionDecision:
    challenger, champion = versions
    common: dict[str, Any] = {
        "margin": settings.promotion_margin,
        "confidence": settings.gate_confidence,
        "resamples": settings.gate_resamples,
        "min_hits": settings.gate_min_hits,
    }
    after = challenger if promoted else champion
    if comparison is None:
        return PromotionDecision(name, challenger, champion, after, promoted, reason, **common)
    c = comparison
    return PromotionDecision(
        name, challenger, champion, after, promoted, reason, metric=c.metric, dataset=c.dataset,
        challenger_value=c.challenger.value, champion_value=c.champion.value,
        rules_value=c.rules.value, n_items=c.n_items, n_hits=c.n_hits,
        difference=c.difference.value, difference_low=c.difference.low,
        difference_high=c.difference.high, rules_difference_low=c.rules_difference.low,
        rules_difference_high=c.rules_difference.high,
        revenue_challenger=c.revenue_challenger.value, revenue_champion=c.revenue_champion.value,
        revenue_difference_low=c.revenue_difference.low,
        revenue_difference_high=c.revenue_difference.high, **common,
    )  # fmt: skip


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
    versions = (challenger_version, champion_version)
    if champion_version == challenger_version:
        return _decision(
            name, versions, False, "the challenger is already the champion", None, settings
        )
    spec = challenger[1].spec
    sets = (evaluation_data or (lambda subject: _gate_sets(settings, subject)))(spec["subject"])
    data, why = gate_set(sets, spec, settings.gate_min_hits, settings.primary_min_random_hits)
    if data is None:
        return _decision(name, versions, False, f"{why}: champion kept", None, settings)
    comparison = compare(
        spec,
        predict(challenger[1], data.features),
        predict(champion[1], data.features),
        _rules_score(settings, spec, data),
        data,
        settings,
    )
    promoted, verdict = _verdict(comparison, settings)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger_version)
    reason = _describe(comparison, settings, verdict)
    return _decision(name, versions, promoted, reason, comparison, settings)


_PARAMS = (
    "challenger", "champion_before", "champion_after", "metric", "dataset", "margin",
    "confidence", "resamples", "min_hits",
)  # fmt: skip
_METRICS = (
    "challenger_value", "champion_value", "rules_value", "n_items", "n_hits", "difference",
    "difference_low", "difference_high", "rules_difference_low", "rules_difference_high",
    "revenue_challenger", "revenue_champion", "revenue_difference_low", "revenue_difference_high",
)  # fmt: skip


def log_decision(decision: PromotionDecision) -> None:
    """One MLflow run per decision (shape agreed with the model card: tags, params, metrics)."""
    import mlflow

    with mlflow.start_run(run_name=f"crisk promote {decision.name}", nested=True):
        record = asdict(decision)
        mlflow.set_tags(
            {"decision": "promoted" if decision.promoted else "kept", "model": decision.name,
             "reason": decision.reason}
        )  # fmt: skip
        mlflow.log_params({k: record[k] for k in _PARAMS})
        mlflow.log_metrics({k: float(record[k]) for k in _METRICS if np.isfinite(float(record[k]))})


def promote(settings: TrainingSettings, names: list[str] | None = None) -> list[PromotionDecision]:
    """Decide for every registered model (or ``names``); each decision is logged to MLflow."""
    client = configure_mlflow(settings)
    decisions = []
    cache: dict[str, dict[str, EvaluationSet]] = {}  # one set of sets per subject type

    def evaluation_data(subject: str) -> dict[str, EvaluationSet]:
        if subject not in cache:
            cache[subject] = _gate_sets(settings, subject)
        return cache[subject]

    for name in registered_models(client, settings.model_prefix) if names is None else names:
        decision = _decide(settings, client, name, evaluation_data)
        log_decision(decision)
        logger.info("%s: %s", name, decision.reason)
        decisions.append(decision)
    promoted = {d.name: str(d.champion_after) for d in decisions if d.promoted}
    if promoted:
        # Running services watch this file and move to the new champions (serving.hotswap).
        settings.workspace.mark_champion_changed(promoted, "crisk promote")
    return decisions
