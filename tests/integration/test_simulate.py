"""`crisk simulate` on a small world: every strategy, the outputs in their agreed shape.

A 30,000-item world of 30 weeks, its last 4 replayed with a retraining after two: the real
feature tables, scorer, training and gate run for the learning strategies. The 26-week figures
on the default world are in docs/learning_loop.md (too slow for the suite).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.integration.workspaces import crisk_home, runs_named
from world.simulate import STRATEGIES

pytestmark = pytest.mark.integration

WEEKS = 4


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("simulate")
    home, out = base / "home", base / "out"
    with crisk_home(home), pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRISK_BOOTSTRAP_MIN_POSITIVE_LABELS", "15")
        result = CliRunner().invoke(
            app,
            [
                "simulate", "--weeks", str(WEEKS), "--capacity", "5%", "--explore", "10%",
                "--out", str(out), "--declarations", "30000", "--world-weeks", "30",
                "--retrain-every", "2", "--shift-week", "27", "--seed", "5", "--processes", "1",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    return home, out, " ".join(result.output.split())


def test_summary_has_exactly_the_agreed_shape(simulated) -> None:
    _, out, _ = simulated
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"weeks", "capacity", "explore", "strategies"}
    assert (summary["weeks"], summary["capacity"], summary["explore"]) == (WEEKS, 0.05, 0.1)
    assert list(summary["strategies"]) == list(STRATEGIES)
    for strategy in summary["strategies"].values():
        assert set(strategy) == {"controls", "hits", "revenue_recovered_eur", "by_week"}
        assert [w["week"] for w in strategy["by_week"]] == list(range(1, WEEKS + 1))
        for week in strategy["by_week"]:
            assert set(week) == {"week", "controls", "hits", "revenue_recovered_eur"}
        assert strategy["controls"] == sum(w["controls"] for w in strategy["by_week"])
        assert strategy["hits"] == sum(w["hits"] for w in strategy["by_week"])


def test_every_strategy_fills_the_same_capacity_and_the_oracle_leads(simulated) -> None:
    _, out, _ = simulated
    weeks = pd.read_csv(out / "weeks.csv")
    per_week = weeks.groupby("week")["controls"].nunique()
    assert (per_week == 1).all(), "the same number of controls for every strategy each week"
    totals = weeks.groupby("strategy")[["hits", "random_controls"]].sum()
    assert totals.loc["oracle", "hits"] >= totals["hits"].drop("oracle").max()
    assert totals.loc["static", "hits"] > 2 * totals.loc["random", "hits"]
    assert totals.loc["retrained_explore", "random_controls"] > 0
    assert totals.loc["retrained", "random_controls"] == 0
    assert (weeks["hits"] <= weeks["controls"]).all()


def test_retraining_went_through_the_gate_and_everything_is_written(simulated) -> None:
    home, out, output = simulated
    decisions = pd.read_csv(out / "decisions.csv")
    assert set(decisions["strategy"]) == {"retrained", "retrained_explore"}
    assert decisions["reason"].str.len().gt(0).all()
    for name in (
        "table.csv",
        "table.md",
        "hit_rate.png",
        "recall.png",
        "revenue.png",
        "share_of_best.png",
    ):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "table.csv")
    assert {"revenue_vs_random", "revenue_vs_rules", "hit_rate_after_change"} <= set(table)
    assert "retrained_explore" in output and "MLflow run" in output
    with crisk_home(home) as client:
        (run, *_) = runs_named(client, "crisk simulate")
        assert run.data.params["weeks"] == str(WEEKS)
        assert "static_hits" in run.data.metrics


def test_bad_options_are_one_line_errors() -> None:
    result = CliRunner().invoke(app, ["simulate", "--capacity", "lots"])
    assert result.exit_code == 2 and "--capacity" in result.output
    result = CliRunner().invoke(app, ["simulate", "--strategies", "random,greedy"])
    assert result.exit_code == 2 and "greedy" in result.output
