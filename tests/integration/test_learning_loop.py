"""The learning loop, live: feedback in → retrain → gate decision logged → the running service
answers with the new champion, while requests keep arriving and none fails.

One real server on a private copy of the trained workspace. Officers report control results
for items the service scored (with the selection the service recorded), `crisk retrain` turns
them into features, challengers and logged gate decisions, and the service moves to the new
champions by itself (serving.hotswap) — no restart, every request answered.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.definitions import contract_for
from data_contracts.workspace import Workspace
from pipelines.cli import app
from tests.conftest import start_server, stop_server
from tests.integration.workspaces import alias_version, copy_workspace, crisk_home, runs_named

pytestmark = pytest.mark.integration

MIN_POSITIVE_LABELS = "15"  # as the shared workspace was bootstrapped (tests/conftest.py)


@dataclass
class Traffic:
    """Requests sent one after the other until stopped: status and model versions of each."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    answers: list[tuple[float, int, dict[str, str] | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(
                        f"{self.url}/score", json=self.body, headers=self.headers
                    )
                    versions = response.json()["results"][0]["model_version"]
                    self.answers.append((time.monotonic(), response.status_code, versions))
                except (httpx.HTTPError, ValueError, KeyError):
                    self.answers.append((time.monotonic(), 0, None))
                time.sleep(0.05)


@dataclass
class Loop:
    home: Path
    feedback: dict[str, Any]
    retrain_output: str
    champions_before: dict[str, str]
    champions_after: dict[str, str]
    ready_before: dict[str, Any]
    ready_after: dict[str, Any]
    traffic: Traffic
    swapped_after_seconds: float


def _recent_items(home: Path, n: int) -> list[dict[str, Any]]:
    declarations = pd.read_parquet(Workspace.at(home).data_dir / "declarations.parquet")
    recent = declarations.sort_values("lodged_at").tail(2_000).sample(n, random_state=4)
    fields = contract_for("declarations").field_names
    return json.loads(recent[fields].to_json(orient="records", date_format="iso"))


def _control_results(home: Path, scored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What officers found on the scored items (the world's truth), with the recorded reason."""
    truth = pd.read_parquet(Workspace.at(home).world_dir / "ground_truth.parquet")
    truth = truth[truth["subject_type"] == "declaration"].set_index(["subject_id", "item_number"])
    results = []
    for k, item in enumerate(scored):
        row = truth.loc[(item["subject_id"], item["item_number"])]
        irregular = bool(row["irregular_financial"])
        results.append(
            {
                "control_id": f"LIVE-{k:03d}",
                "subject_type": "declaration",
                "subject_id": item["subject_id"],
                "item_number": item["item_number"],
                "controlled_at": pd.Timestamp(item["lodged_at"]) + pd.Timedelta(hours=5),
                "control_type": "physical",
                "selection_reason": item["selection"]["reason"] or "rule",
                "outcome": "irregularity" if irregular else "no_irregularity",
                "risk_area": "financial" if irregular else None,
                "revenue_recovered_eur": float(row["recoverable_revenue_eur"])
                if irregular
                else 0.0,
                "seizure": False,
            }
        )
    for result in results:
        result["controlled_at"] = result["controlled_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
    return results


def _wait_for_versions(url: str, wanted: dict[str, str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    ready: dict[str, Any] = {}
    while time.monotonic() < deadline:
        ready = httpx.get(f"{url}/readyz", timeout=5).json()
        if all(ready["models"].get(name) == version for name, version in wanted.items()):
            return ready
        time.sleep(0.5)
    raise AssertionError(f"the service did not move to {wanted}: /readyz says {ready}")


@pytest.fixture(scope="module")
def loop(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Loop:
    base = tmp_path_factory.mktemp("learning_loop")
    home = copy_workspace(trained_workspace, base / "home")
    with crisk_home(home) as client, pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRISK_TRAIN_MIN_POSITIVE_LABELS", MIN_POSITIVE_LABELS)
        server = start_server(
            home, base / "server.log", extra_env={"CRISK_SERVE_RELOAD_CHECK_SECONDS": "1"}
        )
        try:
            scorer = {"Authorization": f"Bearer {server.keys['scorer']}"}
            officer = {"Authorization": f"Bearer {server.keys['officer']}"}
            items = _recent_items(home, 60)
            scored = httpx.post(
                f"{server.url}/score", json={"declarations": items}, headers=scorer, timeout=60
            ).json()["results"]
            for item, result in zip(items, scored, strict=True):
                result["lodged_at"] = item["lodged_at"]
            feedback = httpx.post(
                f"{server.url}/feedback",
                json={"control_results": _control_results(home, scored)},
                headers=officer,
                timeout=60,
            ).json()
            ready_before = httpx.get(f"{server.url}/readyz").json()
            names = sorted(ready_before["models"])
            champions_before = {n: alias_version(client, n, "champion") for n in names}
            traffic = Traffic(server.url, scorer, {"declarations": items[:5]})
            sender = threading.Thread(target=traffic.run, daemon=True)
            sender.start()
            retrained = CliRunner().invoke(app, ["retrain"])
            assert retrained.exit_code == 0, retrained.output + repr(retrained.exception)
            promoted_at = time.monotonic()
            champions_after = {n: alias_version(client, n, "champion") for n in names}
            ready_after = _wait_for_versions(server.url, champions_after)
            swapped = time.monotonic() - promoted_at
            time.sleep(2)  # a few more requests on the new champion
            traffic.stop.set()
            sender.join(timeout=60)
        finally:
            stop_server(server.process)
    return Loop(
        home, feedback, retrained.output, champions_before, champions_after, ready_before,
        ready_after, traffic, swapped,
    )  # fmt: skip


def test_feedback_is_accepted_with_the_selection_the_service_recorded(loop: Loop) -> None:
    assert loop.feedback["accepted"] == 60 and loop.feedback["rejected"] == []
    assert loop.feedback["warnings"] == [], "every reported reason agrees with the audit log"


def test_retrain_logs_a_gate_decision_with_counts_and_the_interval(loop: Loop) -> None:
    with crisk_home(loop.home) as client:
        for name in loop.champions_before:
            (run, *_) = runs_named(client, f"crisk promote {name}")
            assert run.data.tags["decision"] in {"promoted", "kept"}
            assert run.data.tags["model"] == name and run.data.tags["reason"]
            if "not enough evidence" not in run.data.tags["reason"]:
                metrics = run.data.metrics
                floor = int(run.data.params["min_hits"])
                assert metrics["n_hits"] >= floor and metrics["n_items"] >= metrics["n_hits"]
                assert metrics["difference_low"] <= metrics["difference_high"]
                assert run.data.params["dataset"] in {"controlled", "random_controls"}


def test_the_running_service_moves_to_the_new_champion(loop: Loop) -> None:
    moved = {n for n, v in loop.champions_after.items() if v != loop.champions_before[n]}
    assert moved, f"retrain promoted nothing:\n{loop.retrain_output}"
    assert loop.ready_before["models"] == loop.champions_before
    assert loop.ready_after["models"] == loop.champions_after, "/readyz shows the new versions"
    assert loop.ready_after["bundle"] != loop.ready_before["bundle"]
    assert loop.swapped_after_seconds < 30
    versions = [v for _, status, v in loop.traffic.answers if status == 200 and v]
    refs = {f"{name}/{loop.champions_after[name]}" for name in moved}
    assert refs & set(versions[-1].values()), "requests are now scored by the new champion"
    assert refs.isdisjoint(versions[0].values()), "and were scored by the old one before"


def test_no_request_failed_while_the_champion_changed(loop: Loop) -> None:
    statuses = [status for _, status, _ in loop.traffic.answers]
    assert len(statuses) >= 20, "requests kept arriving during the retrain and the swap"
    assert set(statuses) == {200}, f"failed requests: {[s for s in statuses if s != 200]}"
