"""`crisk monitor` on a private copy of the trained workspace: recent traffic from the audit log
against the champions' reference sample, hit rates by week, and the warning that hit rates are
biased when no random controls exist (exploration off)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.definitions import contract_for
from data_contracts.workspace import Workspace
from features.config import FeatureStoreSettings
from features.online import OnlineFeatureReader
from pipelines.cli import app
from serving.audit import AuditLog
from serving.bundle import load_bundle
from serving.config import ServingSettings
from serving.scorer import Scorer
from tests.integration.workspaces import copy_workspace, crisk_home, runs_named

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def monitored(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy whose audit log holds 600 recent items scored in-process by the champions."""
    home = copy_workspace(trained_workspace, tmp_path_factory.mktemp("monitor") / "home")
    with crisk_home(home):
        workspace = Workspace.at(home)
        settings = ServingSettings(home=home, features=FeatureStoreSettings(home=home))
        bundle = load_bundle(settings)
        service = bundle.feature_service("declaration")
        reader = OnlineFeatureReader(settings.features, service)
        scorer = Scorer(bundle, {"declaration": reader}, settings)
        declarations = pd.read_parquet(workspace.data_dir / "declarations.parquet")
        recent = declarations.sort_values("lodged_at").tail(600)
        fields = contract_for("declarations").field_names
        audit = AuditLog(workspace.audit_dir / "audit.sqlite")
        for start in range(0, 600, 200):
            batch = recent.iloc[start : start + 200][fields].to_dict("records")
            for header, entries in scorer.score_subject("declaration", batch).audit:
                audit.append(header, entries)
    return home


def _monitor(home: Path, out: Path, **env: str) -> tuple[str, dict]:
    with crisk_home(home), pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        result = CliRunner().invoke(app, ["monitor", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return " ".join(result.output.split()), json.loads((out / "drift.json").read_text())


def test_monitor_compares_recent_traffic_with_the_training_data(monitored: Path, tmp_path) -> None:
    output, report = _monitor(monitored, tmp_path / "a")
    assert report["items"]["declaration"] == 600
    psi = report["features"]["declaration"]
    assert len(psi) > 20 and all(value >= 0 for value in psi.values())
    assert report["scores"]["declaration"]["psi"] >= 0
    random_rows = [r for r in report["hit_rates"] if r["set"] == "random_controls"]
    assert random_rows, "hit rate by week on random controls"
    assert all(r["low"] <= r["hit_rate"] <= r["high"] for r in random_rows)
    assert not any("biased" in w for w in report["warnings"])
    assert "score PSI" in output
    with crisk_home(monitored) as client:
        (run, *_) = runs_named(client, "crisk monitor")
        assert any(key.startswith("psi_declaration_") for key in run.data.metrics)


def test_with_exploration_off_monitor_warns_that_hit_rates_are_biased(
    monitored: Path, tmp_path: Path
) -> None:
    data = Workspace.at(monitored).data_dir / "control_results.parquet"
    original = pd.read_parquet(data)
    try:
        original[original["selection_reason"] != "random"].to_parquet(data, index=False)
        output, report = _monitor(monitored, tmp_path / "b", CRISK_SERVE_RANDOM_RATE="0")
    finally:
        original.to_parquet(data, index=False)
    assert "hit-rate estimates are biased" in output
    assert "exploration is off" in output
    assert not [r for r in report["hit_rates"] if r["set"] == "random_controls"]
