"""Two `crisk serve` replicas on one workspace, sharing Redis and PostgreSQL (the scale profile).

Declaration models are trained and promoted (`training.train`, `training.promote`, what
`crisk train` and `crisk promote` run) into an MLflow registry on PostgreSQL, the online
features are materialised into Redis, and two `crisk serve` processes on two ports (replica ids
``replica-a``, ``replica-b``) build their bundle from that registry and read both: the same
request gets the same scores from either, a feedback batch sent to both is stored once, and
`crisk audit verify` checks both replicas' chains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient

from data_contracts.definitions import contract_for
from tests.conftest import RunningServer, start_server, stop_server
from tests.integration.workspaces import copy_workspace
from tests.services import new_database, running_redis

pytestmark = pytest.mark.integration

CRISK = str(Path(sys.executable).with_name("crisk"))


@dataclass
class Replicas:
    home: Path
    env: dict[str, str]
    postgres: str
    servers: list[RunningServer]
    trained: list[str]  # the registered models


def _crisk(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRISK, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _materialize_into_redis(home: Path, redis: str) -> None:
    from features.config import FeatureStoreSettings
    from features.store import apply_definitions, materialize
    from features.tables import cutoff_of

    settings = FeatureStoreSettings(home=home, online_store="redis", redis_connection_string=redis)
    apply_definitions(settings)
    lodged = pd.read_parquet(home / "data" / "declarations.parquet", columns=["lodged_at"])
    cutoff = cutoff_of(lodged["lodged_at"])
    materialize(settings, end=cutoff.to_pydatetime() + pd.Timedelta(hours=1))


def _train_and_promote(home: Path, postgres: str) -> list[str]:
    """Declaration models trained and promoted into the registry on PostgreSQL (small ones:
    what is tested is where they go, not their quality); MLflow's process-wide URIs and the
    environment are restored afterwards, so nothing of it reaches other tests."""
    import mlflow

    from data_contracts.deployment import DeploymentSettings
    from training.config import LightGBMParams, TrainingSettings
    from training.promote import promote
    from training.train import train

    settings = TrainingSettings(
        home=home,
        deployment=DeploymentSettings(profile="scale", postgres_url=postgres),
        min_positive_labels=15,
        diagnostics=False,
        reference_sample_size=2_000,
        lgbm=LightGBMParams(max_rounds=60),
    )
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    environment = dict(os.environ)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        models = train(settings, subjects=("declaration",))
        decisions = promote(settings)
    finally:
        os.environ.clear()
        os.environ.update(environment)
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    assert all(d.champion_after for d in decisions), decisions
    return [m.name for m in models]


@pytest.fixture(scope="module")
def replicas(
    trained_workspace: Path, postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    home = copy_workspace(trained_workspace, root / "home")
    postgres = new_database(postgres_server, "replicas")
    trained = _train_and_promote(home, postgres)
    with running_redis() as redis:
        env = {
            **os.environ,
            "CRISK_HOME": str(home),
            "CRISK_PROFILE": "scale",
            "CRISK_POSTGRES_URL": postgres,
            "CRISK_FEATURES_REDIS_CONNECTION_STRING": redis,
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        _materialize_into_redis(home, redis)
        servers: list[RunningServer] = []

        def start(replica: str) -> RunningServer:
            extra = {k: v for k, v in env.items() if k.startswith("CRISK_")}
            # Two servers starting at once on two cores: more time than one needs.
            server = start_server(
                home,
                root / f"{replica}.log",
                extra | {"CRISK_SERVE_REPLICA_ID": replica},
                ready_seconds=240,
            )
            servers.append(server)
            return server

        try:
            # Both at once, as a deployment starts its replicas (and half the waiting).
            with ThreadPoolExecutor(2) as pool:
                started = list(pool.map(start, ("replica-a", "replica-b")))
            yield Replicas(home, env, postgres, started, trained)
        finally:
            for server in servers:
                stop_server(server.process)


def _headers(server: RunningServer, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.keys[role]}"}


def _declarations(home: Path, n: int) -> list[dict[str, Any]]:
    frame = pd.read_parquet(home / "data" / "declarations.parquet").sample(n, random_state=12)
    fields = contract_for("declarations").field_names
    return json.loads(frame[fields].to_json(orient="records", date_format="iso"))


def _scores(item: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the replica: everything but the per-request ids and draws."""
    drawn = {"scoring_id", "channel", "random_selection", "selection"}
    return {k: v for k, v in item.items() if k not in drawn}


def test_the_registry_on_postgres_serves_both_replicas(replicas: Replicas) -> None:
    from data_contracts.deployment import sqlalchemy_url

    uri = sqlalchemy_url(replicas.postgres)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champions = {
        m.name: m.aliases["champion"]
        for m in client.search_registered_models(filter_string="name LIKE 'crisk_%'")
        if "champion" in m.aliases
    }
    assert sorted(champions) == sorted(replicas.trained), "the champions are not on PostgreSQL"
    for server in replicas.servers:
        ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
        assert ready["fallback"] is False and ready["feature_store"] == "ok", ready
        assert ready["models"] == {name: str(v) for name, v in champions.items()}


def test_the_same_request_gets_the_same_scores_from_either_replica(replicas: Replicas) -> None:
    body = {"declarations": _declarations(replicas.home, 20), "explain": True}
    answers = []
    for server in replicas.servers:
        response = httpx.post(
            f"{server.url}/score", json=body, headers=_headers(server, "scorer"), timeout=60
        )
        assert response.status_code == 200, response.text
        answers.append(response.json()["results"])
    first, second = ([_scores(item) for item in answer] for answer in answers)
    assert first == second
    assert all("features_unavailable" not in json.dumps(item) for item in first)


def _feedback(home: Path, n: int) -> list[dict[str, Any]]:
    declarations = _declarations(home, n)
    return [
        {
            "control_id": f"REPLICA-{k}",
            "subject_type": "declaration",
            "subject_id": d["declaration_id"],
            "item_number": d["item_number"],
            "controlled_at": "2027-02-01T10:00:00Z",
            "control_type": "documentary",
            "selection_reason": "other",
            "outcome": "no_irregularity",
            "revenue_recovered_eur": 0.0,
            "seizure": False,
        }
        for k, d in enumerate(declarations)
    ]


def test_feedback_sent_to_both_replicas_is_stored_once(replicas: Replicas) -> None:
    from serving.postgres_state import PostgresFeedbackStore

    batch = {"control_results": _feedback(replicas.home, 8)}
    answers = [
        httpx.post(
            f"{server.url}/feedback", json=batch, headers=_headers(server, "officer"), timeout=60
        ).json()
        for server in replicas.servers
    ]
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [(8, 0), (0, 8)], answers
    stored = PostgresFeedbackStore(replicas.postgres).frame()
    assert sorted(stored["control_id"]) == sorted(r["control_id"] for r in batch["control_results"])
    assert not (replicas.home / "service" / "feedback.sqlite").exists()


def test_crisk_audit_verify_checks_both_replicas_chains(replicas: Replicas) -> None:
    body = {"declarations": _declarations(replicas.home, 5), "explain": False}
    for server in replicas.servers:
        response = httpx.post(
            f"{server.url}/score", json=body, headers=_headers(server, "scorer"), timeout=60
        )
        assert response.status_code == 200, response.text
    verified = _crisk(replicas.env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit log intact" in verified.stdout and "in 2 chains" in verified.stdout
    head = json.loads(_crisk(replicas.env, "audit", "head").stdout)
    assert set(head["chains"]) == {"replica-a", "replica-b"}
    assert not (replicas.home / "service" / "audit" / "audit.sqlite").exists()
