"""The service when things go wrong: a killed server, an unreachable registry or feature store,
an edited audit log."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.definitions import contract_for
from pipelines.cli import app
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.integration


def _declarations(home: Path, n: int) -> list[dict]:
    frame = pd.read_parquet(home / "data" / "declarations.parquet").sample(n, random_state=11)
    fields = contract_for("declarations").field_names
    return json.loads(frame[fields].to_json(orient="records", date_format="iso"))


def test_acknowledged_feedback_survives_kill_9(trained_workspace: Path, tmp_path: Path) -> None:
    server = start_server(trained_workspace, tmp_path / "server.log")
    control = {
        "control_id": "KILL-9-1", "subject_type": "declaration", "subject_id": "26XX1",
        "item_number": 1, "controlled_at": "2027-01-02T10:00:00Z", "control_type": "scan",
        "selection_reason": "random", "outcome": "no_irregularity",
        "revenue_recovered_eur": 0.0, "seizure": False,
    }  # fmt: skip
    try:
        response = httpx.post(
            f"{server.url}/feedback",
            json={"control_results": [control]},
            headers={"Authorization": f"Bearer {server.keys['officer']}"},
        )
        assert response.json()["accepted"] == 1
    finally:
        stop_server(server.process, sig=signal.SIGKILL)
    with sqlite3.connect(trained_workspace / "service" / "feedback.sqlite") as connection:
        stored = connection.execute(
            "SELECT payload FROM control_results WHERE control_id = 'KILL-9-1'"
        ).fetchone()
    assert stored is not None and json.loads(stored[0])["subject_id"] == "26XX1"


def test_without_registry_and_feature_store_the_bundled_champion_serves(
    trained_workspace: Path, tmp_path: Path
) -> None:
    home = tmp_path / "degraded"
    shutil.copytree(trained_workspace, home, ignore=shutil.ignore_patterns("mlflow", "feast"))
    server = start_server(home, tmp_path / "degraded.log")
    try:
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["ready"] and ready["fallback"] and ready["source"] == "bundled"
        assert "registry unavailable" in ready["fallback_reason"]
        assert ready["feature_store"] == "unavailable"
        response = httpx.post(
            f"{server.url}/score",
            json={"declarations": _declarations(trained_workspace, 3)},
            headers={"Authorization": f"Bearer {server.keys['scorer']}"},
        )
        assert response.status_code == 200, response.text
        for result in response.json()["results"]:
            assert "features_unavailable" in result["warnings"]
            assert 0.0 <= result["overall"] <= 1.0
    finally:
        stop_server(server.process)


def test_audit_show_and_verify_detect_an_edited_entry(
    server, trained_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = httpx.post(
        f"{server.url}/score",
        json={"declarations": _declarations(trained_workspace, 4)},
        headers={"Authorization": f"Bearer {server.keys['scorer']}"},
    )
    scoring_id = response.json()["results"][0]["scoring_id"]
    monkeypatch.setenv("CRISK_HOME", str(trained_workspace))
    runner = CliRunner()
    shown = runner.invoke(app, ["audit", "show", scoring_id])
    assert shown.exit_code == 0, shown.output
    assert scoring_id in shown.output and "reasons" in shown.output
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0

    audit = trained_workspace / "service" / "audit" / "audit.sqlite"
    with sqlite3.connect(audit) as connection:
        seq, record = connection.execute(
            "SELECT a.seq, a.record FROM audit a JOIN audit_items i ON i.seq = a.seq"
            " WHERE i.scoring_id = ?",
            (scoring_id,),
        ).fetchone()
        edited = record.replace('"channel":"', '"channel":"x', 1)
        connection.execute("UPDATE audit SET record = ? WHERE seq = ?", (edited, seq))
    try:
        verified = runner.invoke(app, ["audit", "verify"])
        assert verified.exit_code == 1
        assert f"entry {seq}" in verified.output
    finally:
        with sqlite3.connect(audit) as connection:
            connection.execute("UPDATE audit SET record = ? WHERE seq = ?", (record, seq))


def test_operational_endpoints(server) -> None:
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/livez").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.status_code == 200 and "bentoml_service_request_total" in metrics.text
    spec = httpx.get(f"{server.url}/docs.json")
    assert spec.status_code == 200
    assert {"/score", "/feedback", "/explain"} <= set(spec.json()["paths"])
