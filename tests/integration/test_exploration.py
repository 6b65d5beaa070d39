"""Random controls are an unbiased sample: on the synthetic world, the random-control estimate of
the champion's precision covers the ground truth — and the old draw (among released items only)
could not have measured it at all.

The champion scores every item of the test window; the service's draw (read from scoring ids,
seeded here so the test is repeatable) selects a random share of *all* items. Among the drawn
items, those in the model's own selection (its top 5%) estimate its precision; the ground truth
labels every item of the window, so the true precision is known.
"""

from __future__ import annotations

import numpy as np
import pytest

from serving.channels import random_draw
from serving.monitor import wilson_interval
from tests.integration.workspaces import crisk_home
from training.config import TrainingSettings
from training.evaluate import evaluation_sets
from training.evaluate import test_window as evaluation_window
from training.model import predict
from training.registry import configure_mlflow, load_version

pytestmark = pytest.mark.integration

RATE = 0.2  # a large random share: enough drawn items in the top 5% for an interval
REPLICATIONS = 40


def _scoring_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Ids in the service's format (32 hex digits), from a seeded generator."""
    return [f"{v:032x}" for v in rng.integers(0, 2**62, n) * 3 + 1]


@pytest.fixture(scope="module")
def window(trained_workspace) -> tuple[np.ndarray, np.ndarray]:
    """(champion financial score, true irregularity) of every item of the test window."""
    with crisk_home(trained_workspace):
        settings = TrainingSettings(home=trained_workspace)
        client = configure_mlflow(settings)
        _, model = load_version(client, "crisk_declaration_financial", "champion")
        # The ground truth, asked for explicitly: this test reports against it, nothing decides.
        truth = evaluation_sets(
            settings,
            "declaration",
            evaluation_window(settings, "declaration"),
            with_ground_truth=True,
        )["synthetic_ground_truth"]
        score = predict(model, truth.features)
    return score, truth.labels["y_financial"].to_numpy(dtype=int)


def test_random_controls_estimate_the_models_precision_without_bias(window) -> None:
    score, y = window
    selected = score >= np.quantile(score, 0.95)  # the model's own selection, top 5%
    true_precision = y[selected].mean()
    rng = np.random.default_rng(11)
    covered, estimates, old_reach = 0, [], []
    for _ in range(REPLICATIONS):
        drawn = random_draw(_scoring_ids(rng, len(y))) < RATE  # the service's draw: all items
        in_selection = drawn & selected
        hits, n = int(y[in_selection].sum()), int(in_selection.sum())
        low, high = wilson_interval(hits, n)
        covered += low <= true_precision <= high
        estimates.append(hits / n)
        # The old draw only fell on items the model had released: never on its selection.
        old_reach.append(int((drawn & ~selected & selected).sum()))
    assert covered >= 0.85 * REPLICATIONS, f"the 95% interval covered {covered}/{REPLICATIONS}"
    assert abs(np.mean(estimates) - true_precision) < 0.03, "no systematic error"
    assert set(old_reach) == {0}, "a draw among released items never measures the selection"


def test_the_random_control_hit_rate_estimates_the_population_rate(window) -> None:
    """The base rate too: the old green-only draw misses the riskiest items and underestimates."""
    score, y = window
    released = score < np.quantile(score, 0.95)
    rng = np.random.default_rng(12)
    new_cover = old_cover = 0
    for _ in range(REPLICATIONS):
        drawn = random_draw(_scoring_ids(rng, len(y))) < RATE
        low, high = wilson_interval(int(y[drawn].sum()), int(drawn.sum()))
        new_cover += low <= y.mean() <= high
        old = drawn & released
        low, high = wilson_interval(int(y[old].sum()), int(old.sum()))
        old_cover += low <= y.mean() <= high
    assert new_cover >= 0.85 * REPLICATIONS
    assert old_cover <= 0.2 * REPLICATIONS, "the old draw's estimate is biased low"
