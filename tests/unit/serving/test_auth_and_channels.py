"""API keys parsing and channel assignment within capacity."""

from __future__ import annotations

import numpy as np
import pytest

from serving.audit import new_scoring_ids
from serving.auth import parse_api_keys
from serving.channels import (
    ChannelPolicy,
    assign_channels,
    random_draw,
    ranking_quantiles,
    selections,
    threshold_selected,
)


def test_api_keys_parse_roles() -> None:
    assert parse_api_keys("scorer:a, officer:b") == {"a": "scorer", "b": "officer"}


@pytest.mark.parametrize("text", ["scorer", "boss:x", "scorer:"])
def test_bad_api_key_entries_name_the_entry(text: str) -> None:
    with pytest.raises(ValueError, match="entry 1"):
        parse_api_keys(text)


def test_channels_meet_the_capacity() -> None:
    rng = np.random.default_rng(0)
    reference = rng.beta(1, 20, 200_000)
    quantiles = np.quantile(reference, np.linspace(0, 1, 2001)).tolist()
    policy = ChannelPolicy.from_quantiles(
        quantiles,
        None,
        capacity=0.05,
        random_rate=0.005,
        physical_share=0.3,
        post_release_share=0.01,
    )
    traffic = rng.beta(1, 20, 100_000)
    ids = new_scoring_ids(len(traffic))
    channel, randomly = assign_channels(
        traffic,
        np.full(len(traffic), "financial", dtype=object),
        np.zeros(len(traffic)),
        random_draw(ids),
        policy,
    )
    controlled = (channel != "green").mean()
    assert 0.045 < controlled < 0.055
    assert 0.003 < randomly.mean() < 0.007
    assert set(channel[randomly]) == {"red"}


def test_random_draw_is_reproducible() -> None:
    ids = new_scoring_ids(2)
    assert (random_draw(ids) == random_draw(list(ids))).all()
    assert ((random_draw(ids) >= 0) & (random_draw(ids) < 1)).all()


def _policy(reference: np.ndarray, random_rate: float = 0.005) -> ChannelPolicy:
    quantiles = np.quantile(reference, np.linspace(0, 1, 2001)).tolist()
    return ChannelPolicy.from_quantiles(
        quantiles, None, capacity=0.05, random_rate=random_rate, physical_share=0.3,
        post_release_share=0.01,
    )  # fmt: skip


def test_the_random_draw_ignores_the_score() -> None:
    """Random selections are a uniform sample of all traffic, not of what the model released."""
    rng = np.random.default_rng(1)
    traffic = rng.beta(1, 20, 400_000)
    policy = _policy(traffic, random_rate=0.02)
    _, randomly = assign_channels(
        traffic, np.full(len(traffic), "financial", dtype=object), np.zeros(len(traffic)),
        random_draw(new_scoring_ids(len(traffic))), policy,
    )  # fmt: skip
    high = traffic >= policy.select_threshold
    assert randomly[high].any(), "items the model selects are drawn too"
    assert abs(randomly[high].mean() - randomly[~high].mean()) < 0.01
    # The score distribution of the random sample is the traffic's.
    for q in (0.5, 0.9, 0.99):
        assert abs(np.quantile(traffic[randomly], q) / np.quantile(traffic, q) - 1) < 0.1


def test_every_item_records_its_selection_probability() -> None:
    rng = np.random.default_rng(2)
    traffic = rng.beta(1, 20, 50_000)
    policy = _policy(traffic, random_rate=0.01)
    revenue = np.zeros(len(traffic))
    channel, randomly = assign_channels(
        traffic, np.full(len(traffic), "financial", dtype=object), revenue,
        random_draw(new_scoring_ids(len(traffic))), policy,
    )  # fmt: skip
    chosen = threshold_selected(traffic, revenue, policy)
    recorded = selections(chosen, randomly, policy.random_rate)
    reasons = np.array([s["reason"] for s in recorded], dtype=object)
    probability = np.array([s["probability"] for s in recorded])
    assert set(reasons[randomly]) == {"random"}
    assert set(reasons[chosen & ~randomly]) == {"model"}
    assert set(reasons[(channel == "green")].tolist()) == {None}
    assert (probability[chosen] == 1.0).all() and (probability[~chosen] == 0.01).all()


def test_with_a_revenue_model_items_are_ranked_by_what_a_control_brings() -> None:
    """Expected revenue + the hit value per expected non-revenue irregularity, within capacity:
    a likely small recovery waits behind a less likely large one."""
    rng = np.random.default_rng(3)
    n = 20_000
    revenue, non_financial = rng.gamma(0.3, 300.0, n), rng.beta(1, 30, n)
    quantiles = {
        "overall": [0.0] * 2001,
        "reference_scores": {"expected_revenue": revenue, "non_financial": non_financial},
    }
    ranking, hit_value = ranking_quantiles(quantiles, 500.0)
    assert hit_value == 500.0
    policy = ChannelPolicy.from_quantiles(
        ranking, None, capacity=0.05, random_rate=0.0, physical_share=0.3,
        post_release_share=0.01, hit_value_eur=hit_value,
    )  # fmt: skip
    overall = np.full(n, 0.99)  # every item likely irregular: the probability cannot rank them
    value = policy.selection_value(overall, non_financial, revenue)
    np.testing.assert_allclose(value, revenue + 500.0 * non_financial)
    channel, _ = assign_channels(
        value, np.full(n, "financial", dtype=object), revenue, np.ones(n), policy
    )
    selected = channel != "green"
    assert 0.045 < selected.mean() < 0.055
    assert value[selected].min() >= value[~selected].max()
    # Bundles without a revenue model keep ranking by the overall probability.
    assert ranking_quantiles({"overall": [0.1, 0.2]}, 500.0) == ([0.1, 0.2], None)
