"""Promotion rule: the challenger wins unless it is worse than the champion by more than the margin.

The registry, the evaluation data and the models are replaced by fakes: these tests cover the
decision (``_decide``) and which number it compares (``_metric``), not MLflow or Feast.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import training.promote as promote
from training.config import TrainingSettings
from training.evaluate import EvaluationSet
from training.promote import PromotionDecision

NAME = "crisk_declaration_financial"


class FakeRegistry:
    """Holds the two aliased versions and records alias changes, like an MlflowClient."""

    def __init__(self, versions: dict[str, tuple[str, float]]) -> None:
        # alias -> (version, metric value of the model behind it)
        self.versions = versions
        self.alias_calls: list[tuple[str, str, str]] = []

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.alias_calls.append((name, alias, version))


def _decide(
    monkeypatch: pytest.MonkeyPatch,
    *,
    challenger: tuple[str, float] | None,
    champion: tuple[str, float] | None,
    margin: float = 0.02,
    rules: float = 0.0,  # the rule profiles bind only in the tests about them
) -> tuple[PromotionDecision, FakeRegistry]:
    versions = {
        alias: entry
        for alias, entry in (("challenger", challenger), ("champion", champion))
        if entry is not None
    }
    registry = FakeRegistry(versions)

    def load_version(client: FakeRegistry, name: str, alias: str) -> tuple[Any, Any] | None:
        if alias not in client.versions:
            return None
        version, value = client.versions[alias]
        return SimpleNamespace(version=version), SimpleNamespace(
            value=value, spec={"subject": "declaration"}
        )

    def metric(model: Any, settings: TrainingSettings, data: Any) -> tuple[str, str, float]:
        return "precision_at_5", "random_controls", model.value

    monkeypatch.setattr(promote, "load_version", load_version)
    monkeypatch.setattr(promote, "_metric", metric)
    monkeypatch.setattr(promote, "_rules_metric", lambda settings, spec, data: rules)
    monkeypatch.setattr(promote, "_evaluation_data", lambda settings, subject: {})
    monkeypatch.setattr(promote, "primary_set", lambda sets, area, min_hits: None)
    settings = TrainingSettings(promotion_margin=margin)
    return promote._decide(settings, registry, NAME), registry


def test_a_better_challenger_is_promoted_and_the_record_carries_the_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision, registry = _decide(monkeypatch, challenger=("3", 0.42), champion=("2", 0.40))
    assert decision.promoted
    assert (decision.challenger, decision.champion_before, decision.champion_after) == (
        "3",
        "2",
        "3",
    )
    assert registry.alias_calls == [(NAME, "champion", "3")]
    assert decision.metric == "precision_at_5"
    assert decision.dataset == "random_controls"
    assert decision.challenger_value == pytest.approx(0.42)
    assert decision.champion_value == pytest.approx(0.40)
    assert decision.margin == pytest.approx(0.02)
    assert "0.4200" in decision.reason
    assert "0.4000" in decision.reason
    assert "not worse, promoted" in decision.reason


def test_a_challenger_below_the_rule_profiles_is_refused_even_when_better_than_the_champion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision, registry = _decide(
        monkeypatch, challenger=("3", 0.042), champion=("2", 0.040), rules=0.050
    )
    assert not decision.promoted
    assert decision.champion_after == "2"
    assert registry.alias_calls == []
    assert decision.rules_value == pytest.approx(0.050)
    assert "rule profiles 0.0500" in decision.reason
    assert "worse than the rule profiles, champion kept" in decision.reason


def test_a_challenger_level_with_the_rule_profiles_may_be_promoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision, _ = _decide(monkeypatch, challenger=("3", 0.05), champion=("2", 0.05), rules=0.05)
    assert decision.promoted


def test_an_equal_challenger_is_promoted_as_not_worse(monkeypatch: pytest.MonkeyPatch) -> None:
    decision, registry = _decide(monkeypatch, challenger=("3", 0.40), champion=("2", 0.40))
    assert decision.promoted
    assert registry.alias_calls == [(NAME, "champion", "3")]


def test_a_challenger_slightly_worse_within_the_margin_is_promoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 0.395 is 1.25% below 0.40: inside the 2% allowance.
    decision, _ = _decide(monkeypatch, challenger=("3", 0.395), champion=("2", 0.40))
    assert decision.promoted
    assert decision.champion_after == "3"


def test_a_clearly_worse_challenger_is_refused_and_the_champion_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 0.38 is 5% below 0.40.
    decision, registry = _decide(monkeypatch, challenger=("3", 0.38), champion=("2", 0.40))
    assert not decision.promoted
    assert decision.champion_after == "2"
    assert registry.alias_calls == []
    assert "worse, champion kept" in decision.reason
    assert decision.challenger_value == pytest.approx(0.38)
    assert decision.champion_value == pytest.approx(0.40)


def test_the_margin_is_relative_to_the_champion_not_absolute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In a rare area 0.04 vs 0.05 is 0.01 lower in absolute terms but 20% worse.
    decision, _ = _decide(monkeypatch, challenger=("3", 0.04), champion=("2", 0.05))
    assert not decision.promoted
    decision, _ = _decide(monkeypatch, challenger=("3", 0.0495), champion=("2", 0.05))
    assert decision.promoted


def test_a_zero_margin_requires_the_challenger_to_match_the_champion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worse, _ = _decide(monkeypatch, challenger=("3", 0.3999), champion=("2", 0.40), margin=0.0)
    equal, _ = _decide(monkeypatch, challenger=("3", 0.40), champion=("2", 0.40), margin=0.0)
    assert not worse.promoted
    assert equal.promoted


def test_an_unscorable_champion_does_not_block_a_scorable_challenger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision, _ = _decide(monkeypatch, challenger=("3", 0.1), champion=("2", math.nan))
    assert decision.promoted
    assert math.isnan(decision.champion_value)


def test_an_unscorable_challenger_is_never_promoted(monkeypatch: pytest.MonkeyPatch) -> None:
    decision, registry = _decide(monkeypatch, challenger=("3", math.nan), champion=("2", 0.4))
    assert not decision.promoted
    assert registry.alias_calls == []


def test_the_first_challenger_becomes_champion_without_scoring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision, registry = _decide(monkeypatch, challenger=("1", 0.0), champion=None)
    assert decision.promoted
    assert decision.reason == "no champion yet"
    assert (decision.champion_before, decision.champion_after) == (None, "1")
    assert registry.alias_calls == [(NAME, "champion", "1")]


def test_without_a_challenger_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    decision, registry = _decide(monkeypatch, challenger=None, champion=("2", 0.4))
    assert not decision.promoted
    assert decision.reason == "no challenger"
    assert (decision.champion_before, decision.champion_after) == ("2", "2")
    assert registry.alias_calls == []


def test_a_challenger_that_already_is_the_champion_is_not_re_promoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decision, registry = _decide(monkeypatch, challenger=("2", 0.4), champion=("2", 0.4))
    assert not decision.promoted
    assert decision.reason == "the challenger is already the champion"
    assert registry.alias_calls == []


def _metric_with(
    monkeypatch: pytest.MonkeyPatch,
    *,
    task: str,
    sets: dict[str, EvaluationSet],
    score: np.ndarray,
    promotion_metric: str = "precision_at_5",
    min_hits: int = 1,
) -> tuple[str, str, float]:
    monkeypatch.setattr(promote, "test_window", lambda settings, subject: (None, None))
    monkeypatch.setattr(promote, "evaluation_sets", lambda settings, subject, window: sets)
    monkeypatch.setattr(promote, "predict", lambda model, features: score)
    model = SimpleNamespace(spec={"subject": "declaration", "task": task, "area": "origin"})
    settings = TrainingSettings(promotion_metric=promotion_metric, primary_min_random_hits=min_hits)
    data = promote.primary_set(
        promote._evaluation_data(settings, "declaration"), "origin", min_hits
    )
    return promote._metric(model, settings, data)  # type: ignore[arg-type]


def _evaluation_set(name: str, labels: dict[str, list[int] | list[float]]) -> EvaluationSet:
    frame = pd.DataFrame(labels)
    return EvaluationSet(name, frame, frame, frame)


def test_metric_is_on_random_controls_with_enough_hits_else_every_control_never_ground_truth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 20 items, 10% = the top 2: ground truth has 1 hit there, random controls 2, all controls 0.
    truth = _evaluation_set("synthetic_ground_truth", {"y_origin": [1, 0] + [0] * 18})
    controls = _evaluation_set("random_controls", {"y_origin": [1, 1] + [0] * 18})
    controlled = _evaluation_set("controlled", {"y_origin": [0, 0] + [1] * 18})
    score = np.linspace(1.0, 0.0, 20)
    every = {"random_controls": controls, "controlled": controlled, "synthetic_ground_truth": truth}

    metric = _metric_with(
        monkeypatch, task="classification", sets=every, score=score,
        promotion_metric="precision_at_10", min_hits=2,
    )  # fmt: skip
    assert metric == ("precision_at_10", "random_controls", pytest.approx(1.0))
    # Too few random hits: every labelled control decides, and still not the ground truth.
    metric = _metric_with(
        monkeypatch, task="classification", sets=every, score=score,
        promotion_metric="precision_at_10", min_hits=3,
    )  # fmt: skip
    assert metric == ("precision_at_10", "controlled", pytest.approx(0.0))


def test_the_gate_asks_for_no_ground_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, object]] = []

    def sets(settings: object, subject: str, window: object, **options: object) -> dict:
        asked.append(options)
        return {}

    monkeypatch.setattr(promote, "test_window", lambda settings, subject: (None, None))
    monkeypatch.setattr(promote, "evaluation_sets", sets)
    promote._evaluation_data(TrainingSettings(), "declaration")
    assert asked == [{}]  # the default of evaluation_sets: no ground truth


def test_metric_of_the_revenue_model_is_the_revenue_share_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revenue = [0.0, 300.0] + [0.0] * 17 + [700.0]
    data = _evaluation_set("random_controls", {"revenue_recovered_eur": revenue})
    metric = _metric_with(
        monkeypatch,
        task=promote.REVENUE_TASK,
        sets={"random_controls": data, "controlled": data},
        score=np.linspace(1.0, 0.0, 20),
        promotion_metric="precision_at_10",
    )
    # The top 2 of 20 hold 300 of the 1000 recovered.
    assert metric == ("revenue_at_10", "random_controls", pytest.approx(0.3))
