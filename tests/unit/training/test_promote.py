"""The promotion gate: paired bootstrap on the same labelled items, never the ground truth.

The registry and the models are replaced by fakes that hand back fixed scores: these tests cover
which set the gate decides on, the interval of the difference, the decision and its record.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import training.promote as promote
from training.config import TrainingSettings
from training.evaluate import EvaluationSet, primary_choice
from training.promote import PromotionDecision, compare, gate_set

NAME = "crisk_declaration_financial"
SPEC = {"subject": "declaration", "area": "financial", "task": "classification"}


def _labels(n: int = 4_000, rate: float = 0.1, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    return pd.DataFrame(
        {"y_financial": y, "revenue_recovered_eur": y * rng.gamma(2.0, 200.0, n).round(2)}
    )


def _set(name: str, labels: pd.DataFrame) -> EvaluationSet:
    return EvaluationSet(name, labels, labels, labels)


def _scores(labels: pd.DataFrame, noise: float, seed: int) -> np.ndarray:
    """A ranking that finds the irregular items the better, the smaller ``noise``."""
    rng = np.random.default_rng(seed)
    return labels["y_financial"].to_numpy() + rng.normal(0.0, noise, len(labels))


class FakeRegistry:
    """Holds two aliased versions and records alias changes, like an MlflowClient."""

    def __init__(self, versions: dict[str, tuple[str, np.ndarray]]) -> None:
        self.versions = versions  # alias -> (version, score of the model behind it)
        self.alias_calls: list[tuple[str, str, str]] = []

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.alias_calls.append((name, alias, version))


def _decide(
    monkeypatch: pytest.MonkeyPatch,
    sets: dict[str, EvaluationSet],
    *,
    challenger: tuple[str, np.ndarray] | None,
    champion: tuple[str, np.ndarray] | None,
    rules: np.ndarray | None = None,
    spec: dict[str, Any] = SPEC,
    **settings: Any,
) -> tuple[PromotionDecision, FakeRegistry]:
    versions = {a: e for a, e in (("challenger", challenger), ("champion", champion)) if e}
    registry = FakeRegistry(versions)

    def load_version(client: FakeRegistry, name: str, alias: str) -> tuple[Any, Any] | None:
        if alias not in client.versions:
            return None
        version, score = client.versions[alias]
        return SimpleNamespace(version=version), SimpleNamespace(score=score, spec=spec)

    monkeypatch.setattr(promote, "load_version", load_version)
    monkeypatch.setattr(promote, "predict", lambda model, features: model.score)
    n = len(next(iter(sets.values())).labels)
    zero = np.zeros(n) if rules is None else rules
    monkeypatch.setattr(
        promote, "_rules_score", lambda settings, spec, data: zero[: len(data.labels)]
    )
    decision = promote._decide(
        TrainingSettings(gate_resamples=400, **settings), registry, NAME, lambda subject: sets
    )
    return decision, registry


def test_the_gate_decides_on_random_controls_with_enough_hits_else_on_all_controls() -> None:
    many, few = _labels(3_000, 0.1), _labels(300, 0.05)
    chosen, _ = gate_set({"random_controls": _set("random_controls", many)}, SPEC, 30)
    assert chosen is not None and chosen.name == "random_controls"
    sets = {"random_controls": _set("random_controls", few), "controlled": _set("controlled", many)}
    chosen, _ = gate_set(sets, SPEC, 30)
    assert chosen is not None and chosen.name == "controlled"
    chosen, why = gate_set({"random_controls": _set("random_controls", few)}, SPEC, 30)
    assert chosen is None and "not enough evidence" in why and "30 needed" in why


def test_the_synthetic_ground_truth_is_never_a_gate_set() -> None:
    truth = _set("synthetic_ground_truth", _labels(50_000, 0.1))
    chosen, why = gate_set({"synthetic_ground_truth": truth}, SPEC, 30)
    assert chosen is None and "no labelled set" in why
    assert "synthetic_ground_truth" not in promote.GATE_SETS


def test_the_gate_chooses_its_set_as_evaluate_chooses_the_primary_set() -> None:
    few, many = _labels(300, 0.05), _labels(3_000, 0.1)  # 15 and 300 irregular items
    sets = {"random_controls": _set("random_controls", few), "controlled": _set("controlled", many)}
    for random_min_hits in (10, 30):
        chosen, _ = gate_set(sets, SPEC, 5, random_min_hits)
        expected, _ = primary_choice(sets, "financial", random_min_hits)
        assert chosen is not None and chosen.name == expected
    # Chosen, but too thin to decide on: the champion stays.
    chosen, why = gate_set(sets, SPEC, 100, 10)
    assert chosen is None and "in random_controls" in why and "100 needed" in why


def test_the_gate_asks_for_no_ground_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, object]] = []
    truth = _set("synthetic_ground_truth", _labels(100, 0.1))

    def sets(settings: object, subject: str, window: object, **options: object) -> dict:
        asked.append(options)
        return {"synthetic_ground_truth": truth}

    monkeypatch.setattr(promote, "test_window", lambda settings, subject: (None, None))
    monkeypatch.setattr(promote, "evaluation_sets", sets)
    assert promote._gate_sets(TrainingSettings(), "declaration") == {}
    assert asked == [{}]  # the default of evaluation_sets: no ground truth


def test_a_clearly_better_challenger_is_promoted_with_its_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labels = _labels()
    sets = {"controlled": _set("controlled", labels)}
    decision, registry = _decide(
        monkeypatch, sets, challenger=("3", _scores(labels, 0.4, 1)),
        champion=("2", _scores(labels, 1.5, 2)),
    )  # fmt: skip
    assert decision.promoted and registry.alias_calls == [(NAME, "champion", "3")]
    assert (decision.challenger, decision.champion_before, decision.champion_after) == (
        "3",
        "2",
        "3",
    )
    assert decision.metric == "precision_at_5" and decision.dataset == "controlled"
    assert decision.n_items == len(labels) and decision.n_hits == labels["y_financial"].sum()
    assert decision.challenger_value > decision.champion_value
    assert decision.difference_low <= decision.difference <= decision.difference_high
    assert decision.difference_low > 0, "clearly better: the whole interval above zero"
    assert decision.resamples == 400 and decision.confidence == 0.95
    assert "95% [" in decision.reason and "not significantly worse, promoted" in decision.reason


def test_a_significantly_worse_challenger_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = _labels()
    sets = {"controlled": _set("controlled", labels)}
    decision, registry = _decide(
        monkeypatch, sets, challenger=("3", _scores(labels, 1.5, 1)),
        champion=("2", _scores(labels, 0.4, 2)),
    )  # fmt: skip
    assert not decision.promoted and registry.alias_calls == []
    assert decision.champion_after == "2"
    assert decision.difference_high < 0
    assert "significantly worse than the champion" in decision.reason


def test_a_challenger_within_the_noise_of_the_champion_is_promoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slightly worse on these items, but the interval includes no difference."""
    labels = _labels(1_500, 0.1)
    sets = {"controlled": _set("controlled", labels)}
    champion = _scores(labels, 0.8, 2)
    challenger = champion + np.random.default_rng(5).normal(0, 0.1, len(labels))
    decision, _ = _decide(monkeypatch, sets, challenger=("3", challenger), champion=("2", champion))
    assert decision.difference_low < 0 < decision.difference_high or decision.difference >= 0
    assert decision.promoted


def test_the_margin_is_a_share_of_the_champions_value(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = _labels()
    sets = {"controlled": _set("controlled", labels)}
    better, worse = _scores(labels, 0.4, 1), _scores(labels, 1.5, 2)
    strict, _ = _decide(monkeypatch, sets, challenger=("3", worse), champion=("2", better))
    assert not strict.promoted and strict.difference_high < 0
    # Refused while the interval's upper bound lies below -margin x the champion's value.
    relative = -strict.difference_high / strict.champion_value
    absolute = -strict.difference_high
    assert absolute < relative
    between, _ = _decide(
        monkeypatch, sets, challenger=("3", worse), champion=("2", better),
        promotion_margin=(absolute + relative) / 2,
    )  # fmt: skip
    assert not between.promoted and "than the champion" in between.reason
    lenient, _ = _decide(
        monkeypatch, sets, challenger=("3", worse), champion=("2", better),
        promotion_margin=min(relative + 0.01, 0.99),
    )  # fmt: skip
    assert lenient.promoted, lenient.reason  # the rule profiles score nothing here


def test_a_challenger_significantly_below_the_rule_profiles_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labels = _labels()
    sets = {"controlled": _set("controlled", labels)}
    weak = _scores(labels, 3.0, 1)
    decision, registry = _decide(
        monkeypatch, sets, challenger=("3", weak), champion=("2", weak + 0.0),
        rules=_scores(labels, 0.4, 9),
    )  # fmt: skip
    assert not decision.promoted and registry.alias_calls == []
    assert decision.rules_difference_high < 0
    assert "rule profiles" in decision.reason


def test_too_few_hits_keep_the_champion(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = _labels(400, 0.03)
    sets = {"controlled": _set("controlled", labels)}
    decision, registry = _decide(
        monkeypatch, sets, challenger=("3", _scores(labels, 0.1, 1)),
        champion=("2", _scores(labels, 2.0, 2)), gate_min_hits=200,
    )  # fmt: skip
    assert not decision.promoted and registry.alias_calls == []
    assert "not enough evidence" in decision.reason and decision.min_hits == 200


def test_the_revenue_model_is_judged_on_revenue(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = _labels()
    revenue = labels["revenue_recovered_eur"].to_numpy()
    rng = np.random.default_rng(3)
    good, poor = revenue + rng.normal(0, 50, len(labels)), rng.normal(0, 1, len(labels))
    spec = {"subject": "declaration", "area": "financial", "task": promote.REVENUE_TASK}
    sets = {"controlled": _set("controlled", labels)}
    decision, _ = _decide(
        monkeypatch, sets, challenger=("3", poor), champion=("2", good), spec=spec
    )
    assert decision.metric == "revenue_at_5"
    assert not decision.promoted and decision.revenue_difference_high < 0


def test_compare_pairs_the_rankings_on_the_same_resamples() -> None:
    """The same ranking twice: a difference of exactly zero on every resample."""
    labels = _labels(2_000)
    score = _scores(labels, 0.7, 4)
    result = compare(
        SPEC, score, score.copy(), np.zeros(len(labels)), _set("controlled", labels),
        TrainingSettings(gate_resamples=200),
    )  # fmt: skip
    assert result.difference.low == result.difference.high == 0.0
    assert result.revenue_decides


def test_the_first_challenger_becomes_champion_without_scoring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sets = {"controlled": _set("controlled", _labels(100))}
    decision, registry = _decide(monkeypatch, sets, challenger=("1", np.zeros(100)), champion=None)
    assert decision.promoted and decision.reason == "no champion yet"
    assert (decision.champion_before, decision.champion_after) == (None, "1")
    assert registry.alias_calls == [(NAME, "champion", "1")]


def test_without_a_challenger_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    sets = {"controlled": _set("controlled", _labels(100))}
    decision, registry = _decide(monkeypatch, sets, challenger=None, champion=("2", np.zeros(100)))
    assert not decision.promoted and decision.reason == "no challenger"
    assert (decision.champion_before, decision.champion_after) == ("2", "2")
    assert registry.alias_calls == []


def test_a_challenger_that_already_is_the_champion_is_not_re_promoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sets = {"controlled": _set("controlled", _labels(100))}
    decision, registry = _decide(
        monkeypatch, sets, challenger=("2", np.zeros(100)), champion=("2", np.zeros(100))
    )
    assert not decision.promoted
    assert decision.reason == "the challenger is already the champion"
    assert registry.alias_calls == []


def test_gate_settings_have_defaults_and_bounds() -> None:
    settings = TrainingSettings()
    assert settings.gate_min_hits == 30 and settings.gate_confidence == 0.95
    assert settings.promotion_margin == 0.0
    with pytest.raises(ValueError, match="gate_confidence"):
        TrainingSettings(gate_confidence=1.2)
