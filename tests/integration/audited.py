"""A workspace that has served and been evaluated: what decision pages, model cards and the
indicators are built from in the page tests and the notebooks.

From a private copy of the trained test workspace: an evaluation of the champions (logged to
the copy's MLflow), then the real BentoML server on loopback scores declarations and ENS filings
(its audit log and serving-bundle record), takes control results on ``POST /feedback`` and
answers ``POST /explain`` for a few items (kept in ``audited.json`` to compare with the CLI).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from data_contracts.definitions import contract_for
from tests.conftest import start_server, stop_server
from tests.integration.workspaces import copy_workspace, crisk_home

__all__ = ["AuditedWorkspace", "prepare_audited_workspace"]

N_DECLARATIONS = 240
N_ENS = 60


@dataclass(frozen=True)
class AuditedWorkspace:
    home: Path
    results: list[dict[str, Any]]  # every response item the server returned
    explained: dict[str, dict[str, Any]]  # scoring id -> POST /explain body
    feedback: list[dict[str, Any]]  # control results sent to POST /feedback
    evaluation: dict[str, Any]  # metrics.json of the champions' evaluation

    def item(self, scoring_id: str) -> dict[str, Any]:
        return next(r for r in self.results if r["scoring_id"] == scoring_id)


def _records(home: Path, kind: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    fields = contract_for(kind).field_names
    return json.loads(frame[fields].to_json(orient="records", date_format="iso"))


def _sample(home: Path) -> tuple[list[dict], list[dict]]:
    """Declarations half from controlled subjects (so the data store has results for them)."""
    declarations = pd.read_parquet(home / "data" / "declarations.parquet")
    controls = pd.read_parquet(home / "data" / "control_results.parquet")
    controlled = declarations["declaration_id"].isin(set(controls["subject_id"]))
    picked = pd.concat(
        [
            declarations[controlled].sample(N_DECLARATIONS // 2, random_state=3),
            declarations[~controlled].sample(N_DECLARATIONS // 2, random_state=3),
        ]
    )
    ens = pd.read_parquet(home / "data" / "ens.parquet").sample(N_ENS, random_state=3)
    return _records(home, "declarations", picked), _records(home, "ens", ens)


def _feedback(item: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "control_id": f"AUDIT-PAGE-{n}",
        "subject_type": item["subject_type"],
        "subject_id": item["subject_id"],
        "item_number": item["item_number"],
        "controlled_at": "2027-02-01T10:00:00Z",
        "control_type": "physical",
        "selection_reason": "random" if item["random_selection"] else "model",
        "outcome": "irregularity",
        "risk_area": "financial",
        "revenue_recovered_eur": 410.0 + n,
        "seizure": False,
    }


def prepare_audited_workspace(trained: Path, target: Path, log: Path) -> AuditedWorkspace:
    from training.config import TrainingSettings
    from training.evaluate import evaluate

    home = copy_workspace(trained, target)
    with crisk_home(home):
        evaluation = evaluate(
            TrainingSettings(home=home), alias="champion", out_dir=home / "runs" / "evaluation"
        )
    declarations, ens = _sample(home)
    server = start_server(home, log)
    auth = {"scorer", "officer", "auditor"}
    keys = {role: {"Authorization": f"Bearer {server.keys[role]}"} for role in auth}
    try:
        results: list[dict[str, Any]] = []
        for start in range(0, len(declarations), 60):
            body = {"declarations": declarations[start : start + 60], "explain": start == 0}
            if start == 0:
                body["ens"] = ens
            response = httpx.post(
                f"{server.url}/score", json=body, headers=keys["scorer"], timeout=60
            )
            response.raise_for_status()
            results.extend(response.json()["results"])
        declared = [r for r in results if r["subject_type"] == "declaration"]
        selected = [r for r in declared if r["channel"] != "green"]
        chosen = [selected[0] if selected else declared[0], declared[-1]]
        feedback = [_feedback(item, n) for n, item in enumerate(chosen)]
        sent = httpx.post(
            f"{server.url}/feedback", json={"control_results": feedback}, headers=keys["officer"]
        )
        assert sent.json()["accepted"] == len(feedback), sent.text
        ens_item = next(r for r in results if r["subject_type"] == "ens")
        explained = {}
        for item in [*chosen, ens_item]:
            answer = httpx.post(
                f"{server.url}/explain",
                json={"scoring_id": item["scoring_id"]},
                headers=keys["auditor"],
                timeout=60,
            )
            answer.raise_for_status()
            explained[item["scoring_id"]] = answer.json()
    finally:
        stop_server(server.process)
    audited = AuditedWorkspace(home, results, explained, feedback, evaluation)
    (home / "audited.json").write_text(
        json.dumps({"results": results, "explained": explained, "feedback": feedback}, default=str)
    )
    return audited
