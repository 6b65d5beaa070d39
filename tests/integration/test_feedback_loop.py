"""The mission loop on a private copy of the trained workspace: score → control → feedback →
retrain.

Officers' control results go through the real service (`POST /feedback` with the officer key),
`crisk feedback ingest` moves them into the data store exactly once, and `crisk retrain` turns
them into outcome features, challengers trained on the new data, an evaluation and one logged
promotion decision per model. A bad control-results file is quarantined with its reasons and
kept out of the data store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner, Result

from data_contracts.workspace import Workspace
from features.config import FeatureStoreSettings
from features.online import OnlineFeatureReader
from features.retrieval import entity_frame, historical_features
from features.services import SERVICE_FOR_SUBJECT
from features.tables import cutoff_of
from pipelines.cli import app
from serving.feedback import FeedbackStore
from tests.conftest import start_server, stop_server
from tests.integration.workspaces import (
    alias_version,
    copy_workspace,
    crisk_home,
    mlflow_client,
    runs_named,
)
from training.dataset import data_snapshot_id
from training.registry import registered_models

pytestmark = pytest.mark.integration

PREFIX = "crisk"
EXPERIMENT = "crisk"
DECLARATION_SERVICE = SERVICE_FOR_SUBJECT["declaration"]
# The shared workspace was bootstrapped with 15 (tests/conftest.py); at the production default
# (200 training hits) no area of the 30,000-item world has enough labels and retrain trains none.
MIN_POSITIVE_LABELS = "15"
HISTORY = (
    "importer_controls_365d",
    "importer_irregularities_365d",
    "importer_revenue_recovered_365d",
)
# What the officers report: (outcome, risk_area, revenue) per item of the importer.
FLAGGED_FINDINGS = (
    ("irregularity", "financial", 1250.0),
    ("irregularity", "financial", 800.5),
    ("irregularity", "ipr", 0.0),
    ("no_irregularity", None, 0.0),
    ("no_irregularity", None, 0.0),
)
CLEARED_FINDINGS = (("no_irregularity", None, 0.0), ("no_irregularity", None, 0.0))


# --- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Importers:
    flagged: str  # three irregular items and two compliant ones reported
    cleared: str  # two compliant items reported
    bystander: str  # nothing reported


def _data(home: Path) -> pd.DataFrame:
    return pd.read_parquet(Workspace.at(home).data_dir / "control_results.parquet")


def _quarantine(home: Path) -> pd.DataFrame:
    path = Workspace.at(home).quarantine_dir / "control_results.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=["control_id"])


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("control_id").reset_index(drop=True)


def _uncontrolled_recent_items(home: Path) -> tuple[pd.DataFrame, pd.Timestamp]:
    """One item per declaration never controlled, lodged 20 to 80 days before the cut-off."""
    workspace = Workspace.at(home)
    declarations = pd.read_parquet(workspace.data_dir / "declarations.parquet")
    controlled = set(_data(home)["subject_id"])
    cutoff = cutoff_of(declarations["lodged_at"])
    lodged = declarations["lodged_at"]
    items = declarations[
        (lodged >= cutoff - pd.Timedelta(days=80))
        & (lodged < cutoff - pd.Timedelta(days=20))
        & ~declarations["declaration_id"].isin(controlled)
    ]
    items = items.sample(frac=1.0, random_state=3).drop_duplicates("declaration_id")
    return items.sort_values("lodged_at"), cutoff


def _result(item: pd.Series, number: int, finding: tuple[str, str | None, float]) -> dict[str, Any]:
    outcome, area, revenue = finding
    controlled_at = item["lodged_at"] + pd.Timedelta(days=3, hours=2)  # before the cut-off
    return {
        "control_id": f"LOOP-{number:03d}",
        "subject_type": "declaration",
        "subject_id": str(item["declaration_id"]),
        "item_number": int(item["item_number"]),
        "controlled_at": controlled_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "control_type": "physical" if outcome == "irregularity" else "documentary",
        "selection_reason": "model",
        "outcome": outcome,
        "risk_area": area,
        "revenue_recovered_eur": revenue,
        "seizure": area == "ipr",
        "note": f"loop test {number}",
    }


def _control_results(home: Path) -> tuple[list[dict[str, Any]], Importers, pd.Timestamp]:
    items, cutoff = _uncontrolled_recent_items(home)
    ranked = items["importer_id"].value_counts()
    importers = Importers(*(str(i) for i in ranked.index[1:4]))
    assert ranked[importers.flagged] >= len(FLAGGED_FINDINGS)
    assert ranked[importers.cleared] >= len(CLEARED_FINDINGS)
    results: list[dict[str, Any]] = []
    for importer, findings in (
        (importers.flagged, FLAGGED_FINDINGS),
        (importers.cleared, CLEARED_FINDINGS),
    ):
        own = items[items["importer_id"] == importer]
        for (_, item), finding in zip(own.iterrows(), findings, strict=False):
            results.append(_result(item, len(results) + 1, finding))
    assert len(results) == len(FLAGGED_FINDINGS) + len(CLEARED_FINDINGS)
    return results, importers, cutoff


def _probe(home: Path, importers: Importers, cutoff: pd.Timestamp) -> pd.DataFrame:
    """An item of each importer scored just after the cut-off: the online snapshot's instant."""
    declarations = pd.read_parquet(Workspace.at(home).data_dir / "declarations.parquet")
    order = [importers.flagged, importers.cleared, importers.bystander]
    latest = declarations.groupby("importer_id")["lodged_at"].idxmax()
    items = declarations.loc[latest[order].to_numpy()].copy()
    items["lodged_at"] = cutoff + pd.Timedelta(hours=2)
    return entity_frame(items, "declaration").set_axis(order)


def _history(home: Path, entities: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The importers' control history as (offline, online) features, one row per importer."""
    settings = FeatureStoreSettings(home=home)
    offline = historical_features(settings, DECLARATION_SERVICE, entities, engine="duckdb")
    reader = OnlineFeatureReader(settings, DECLARATION_SERVICE)
    online = pd.DataFrame(reader.get({c: entities[c].to_numpy() for c in entities.columns}))
    return (
        offline[list(HISTORY)].set_axis(entities.index),
        online[list(HISTORY)].set_axis(entities.index),
    )


def _latest_version(client: MlflowClient, name: str) -> int:
    return max(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _words(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Ingested:
    result: Result
    data: pd.DataFrame
    quarantined_rows: int


def _ingest(home: Path) -> Ingested:
    result = _invoke("feedback", "ingest")
    assert result.exit_code == 0, result.output + repr(result.exception)
    return Ingested(result, _data(home), len(_quarantine(home)))


# --- the loop, once ------------------------------------------------------------------------------


@dataclass
class Loop:
    home: Path
    sent: list[dict[str, Any]]
    invalid: dict[str, Any]
    posted: httpx.Response
    resent: httpx.Response
    stored_by_service: pd.DataFrame
    data_before: pd.DataFrame
    first: Ingested
    second: Ingested
    probe: pd.DataFrame
    history_before: tuple[pd.DataFrame, pd.DataFrame]
    champions_before: dict[str, str]
    latest_before: dict[str, int]
    decision_runs_before: dict[str, int]
    snapshot_before: str
    retrained: Result


@pytest.fixture(scope="module")
def loop(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Loop:
    """Officers report through the real service, then `feedback ingest` twice, then `retrain`."""
    base = tmp_path_factory.mktemp("feedback_loop")
    home = copy_workspace(trained_workspace, base / "home")
    sent, importers, cutoff = _control_results(home)
    invalid = {**sent[0], "control_id": "LOOP-BAD", "risk_area": None}  # irregular, no area
    data_before = _data(home)
    with crisk_home(home) as client, pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRISK_TRAIN_MIN_POSITIVE_LABELS", MIN_POSITIVE_LABELS)
        server = start_server(home, base / "server.log")
        try:
            headers = {"Authorization": f"Bearer {server.keys['officer']}"}
            body = {"control_results": [*sent, invalid]}
            posted = httpx.post(f"{server.url}/feedback", json=body, headers=headers, timeout=30)
            resent = httpx.post(f"{server.url}/feedback", json=body, headers=headers, timeout=30)
        finally:
            stop_server(server.process)
        stored_by_service = FeedbackStore(Workspace.at(home).feedback_db).frame()

        probe = _probe(home, importers, cutoff)
        history_before = _history(home, probe)
        names = registered_models(client, PREFIX)
        champions_before = {name: alias_version(client, name, "champion") for name in names}
        latest_before = {name: _latest_version(client, name) for name in names}
        decision_runs_before = {
            name: len(runs_named(client, f"crisk promote {name}")) for name in names
        }
        snapshot_before = data_snapshot_id(Workspace.at(home))

        first = _ingest(home)
        second = _ingest(home)
        retrained = _invoke("retrain")
    return Loop(
        home, sent, invalid, posted, resent, stored_by_service, data_before, first, second,
        probe, history_before, champions_before, latest_before, decision_runs_before,
        snapshot_before, retrained,
    )  # fmt: skip


def _retrained(loop: Loop) -> Result:
    assert loop.retrained.exit_code == 0, loop.retrained.output + repr(loop.retrained.exception)
    return loop.retrained


# --- feedback: service → data store --------------------------------------------------------------


def test_the_service_stores_officers_results_once_and_rejects_the_invalid_one(loop: Loop) -> None:
    n = len(loop.sent)
    assert loop.posted.status_code == 200, loop.posted.text
    first = loop.posted.json()
    assert (first["accepted"], first["duplicates"]) == (n, 0)
    (rejected,) = first["rejected"]
    assert rejected["index"] == n
    assert {(r["field"], r["rule"]) for r in rejected["reasons"]} == {
        ("risk_area", "risk_area_required_when_irregular")
    }
    # The resend (a retry after a lost response) is counted, not stored again.
    assert loop.resent.status_code == 200, loop.resent.text
    again = loop.resent.json()
    assert (again["accepted"], again["duplicates"]) == (0, n)
    assert again["rejected"] == first["rejected"]

    stored = _by_id(loop.stored_by_service)
    assert stored["control_id"].tolist() == sorted(r["control_id"] for r in loop.sent)
    # Sent without reported_at: the outcome is known from the moment the service received it.
    received = pd.to_datetime(stored.pop("reported_at"), utc=True, format="ISO8601")
    assert received.notna().all()
    assert (received >= pd.to_datetime(stored["controlled_at"], utc=True, format="ISO8601")).all()
    # Subjects this service never scored: the audit has no selection probability for them.
    assert stored.pop("selection_probability").isna().all()
    assert stored.to_dict("records") == sorted(loop.sent, key=lambda r: r["control_id"])


def test_feedback_ingest_moves_every_stored_result_into_the_data_store_exactly_once(
    loop: Loop,
) -> None:
    n = len(loop.sent)
    summary = f"{n} control results: {n} valid, 0 quarantined"
    assert summary in loop.first.result.output
    before, after = loop.data_before, loop.first.data
    assert len(after) == len(before) + n
    assert after.dtypes.to_dict() == before.dtypes.to_dict()

    # Nothing already stored was lost or altered...
    new_ids = {r["control_id"] for r in loop.sent}
    pd.testing.assert_frame_equal(_by_id(after[~after["control_id"].isin(new_ids)]), _by_id(before))
    # ...and every officer's result arrived with all its values.
    stored = after.set_index("control_id")
    for sent in loop.sent:
        row = stored.loc[sent["control_id"]]
        assert row["controlled_at"] == pd.Timestamp(sent["controlled_at"])
        assert row["item_number"] == sent["item_number"]
        for field in ("subject_type", "subject_id", "control_type", "selection_reason", "outcome"):
            assert row[field] == sent[field], (sent["control_id"], field)
        assert row["revenue_recovered_eur"] == pytest.approx(sent["revenue_recovered_eur"])
        assert bool(row["seizure"]) is sent["seizure"]
        assert row["note"] == sent["note"]
        if sent["risk_area"] is None:
            assert pd.isna(row["risk_area"])
        else:
            assert row["risk_area"] == sent["risk_area"]
    assert loop.invalid["control_id"] not in set(after["control_id"])

    # The second ingest of the same store adds nothing.
    assert summary in loop.second.result.output
    pd.testing.assert_frame_equal(_by_id(loop.second.data), _by_id(after))


def test_reingesting_unchanged_feedback_records_no_superseded_history(loop: Loop) -> None:
    assert loop.first.quarantined_rows == 0
    assert loop.second.quarantined_rows == loop.first.quarantined_rows


# --- retrain: data → features → challengers → evaluation → decisions -----------------------------


def test_retrain_makes_the_reported_outcomes_visible_in_offline_and_online_features(
    loop: Loop,
) -> None:
    _retrained(loop)
    offline_before, online_before = loop.history_before
    offline_after, online_after = _history(loop.home, loop.probe)
    # Serving and training saw the same history before, and see the same history after.
    pd.testing.assert_frame_equal(online_before, offline_before)
    pd.testing.assert_frame_equal(online_after, offline_after)
    assert np.isfinite(offline_before.to_numpy()).all(), "the importers have a history"

    expected = pd.DataFrame(
        {
            "importer_controls_365d": [len(FLAGGED_FINDINGS), len(CLEARED_FINDINGS), 0],
            "importer_irregularities_365d": [
                sum(f[0] == "irregularity" for f in FLAGGED_FINDINGS),
                0,
                0,
            ],
            "importer_revenue_recovered_365d": [
                sum(f[2] for f in FLAGGED_FINDINGS),
                0.0,
                0.0,
            ],
        },
        index=offline_before.index,
    )
    pd.testing.assert_frame_equal(offline_after - offline_before, expected.astype(float))
    pd.testing.assert_frame_equal(online_after - online_before, expected.astype(float))


def test_retrain_registers_challengers_trained_on_the_new_data_and_evaluates_them(
    loop: Loop,
) -> None:
    output = _retrained(loop).output
    for step in ("control results → data store", "features", "training challengers"):
        assert step in output
    client = mlflow_client(loop.home)
    snapshot = data_snapshot_id(Workspace.at(loop.home))
    assert snapshot != loop.snapshot_before, "the data store changed"
    challengers = {}
    for name, latest in loop.latest_before.items():
        version = client.get_model_version_by_alias(name, "challenger")
        assert int(version.version) == _latest_version(client, name) > latest, name
        assert version.tags["data_snapshot"] == snapshot, f"{name}: not trained on the new data"
        assert version.run_id is not None, f"{name}: registered without its training run"
        run = client.get_run(version.run_id)
        assert client.get_run(run.data.tags["mlflow.parentRunId"]).info.run_name == "crisk train"
        challengers[name] = str(version.version)

    report = json.loads(
        (Workspace.at(loop.home).runs_dir / "latest_evaluation" / "metrics.json").read_text()
    )
    assert report["alias"] == "challenger"
    assert report["models"] == challengers
    (evaluation,) = runs_named(client, "crisk evaluate @challenger")
    assert evaluation.data.tags["alias"] == "challenger"
    logged = sorted(a.path for a in client.list_artifacts(evaluation.info.run_id))
    assert logged == ["metrics.json", "report.html"]


def test_retrain_logs_one_promotion_decision_per_model_with_its_reason(loop: Loop) -> None:
    output = _words(_retrained(loop).output)
    client = mlflow_client(loop.home)
    for name, champion_before in loop.champions_before.items():
        runs = runs_named(client, f"crisk promote {name}")
        assert len(runs) == loop.decision_runs_before[name] + 1, name
        decision = max(runs, key=lambda r: r.info.start_time)
        tags, params = decision.data.tags, decision.data.params
        challenger = alias_version(client, name, "challenger")
        champion = alias_version(client, name, "champion")
        assert params["challenger"] == challenger != champion_before
        assert params["champion_before"] == champion_before
        assert params["champion_after"] == champion
        if tags["decision"] == "promoted":
            assert champion == challenger and tags["reason"].endswith(
                "not significantly worse, promoted"
            )
        else:
            assert tags["decision"] == "kept", tags
            assert champion == champion_before and tags["reason"].endswith("champion kept")
        if not tags["reason"].startswith("not enough evidence"):  # else nothing was compared
            assert {"challenger_value", "champion_value"} <= set(decision.data.metrics)
        assert _words(f"{name}: {tags['reason']}") in output  # the CLI says why, too


def test_the_loop_leaves_the_shared_workspace_untouched(
    loop: Loop, trained_workspace: Path
) -> None:
    _retrained(loop)
    assert len(_data(trained_workspace)) == len(loop.data_before)
    original = mlflow_client(trained_workspace)
    for name, champion in loop.champions_before.items():
        assert alias_version(original, name, "champion") == champion
        assert _latest_version(original, name) == loop.latest_before[name]


# --- a control-results file ----------------------------------------------------------------------

COMMANDS = {
    "feedback-ingest": ("feedback", "ingest"),
    "ingest-control-results": ("ingest", "control-results"),
}
# control_id -> (what is wrong, the (field, rule) that must be among its reasons)
BAD_ROWS: dict[str, tuple[dict[str, Any], tuple[str, str]]] = {
    "FILE-EARLY": ({"controlled_at": "lodged-2d"}, ("controlled_at", "controlled_before_subject")),
    "FILE-NOAREA": ({"risk_area": ""}, ("risk_area", "risk_area_required_when_irregular")),
    "FILE-NEGATIVE": ({"revenue_recovered_eur": -5.0}, ("revenue_recovered_eur", "at_least")),
    "FILE-XRAY": ({"control_type": "xray"}, ("control_type", "code_list")),
    "FILE-WHEN": ({"controlled_at": "yesterday"}, ("controlled_at", "type")),
}


def _control_file(home: Path, path: Path) -> Path:
    """One good control result and one of each kind of bad one, as a CSV file."""
    items, _ = _uncontrolled_recent_items(home)
    item = items.iloc[0]
    good = {
        **_result(item, 0, ("irregularity", "financial", 300.0)),
        "control_id": "FILE-GOOD",
    }
    rows = [good]
    for control_id, (change, _) in BAD_ROWS.items():
        row = {**good, **change, "control_id": control_id}
        if row["controlled_at"] == "lodged-2d":
            row["controlled_at"] = (item["lodged_at"] - pd.Timedelta(days=2)).isoformat()
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def private_home(trained_workspace: Path, tmp_path: Path) -> Path:
    return copy_workspace(trained_workspace, tmp_path / "home")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_control_results_in_a_file_are_quarantined_with_reasons_and_kept_out_of_the_data(
    private_home: Path, tmp_path: Path, command: str
) -> None:
    file = _control_file(private_home, tmp_path / "controls.csv")
    before = _data(private_home)
    with crisk_home(private_home):
        result = _invoke(*COMMANDS[command], str(file))
    assert result.exit_code == 1, result.output + repr(result.exception)  # some quarantined
    assert f"1 valid, {len(BAD_ROWS)} quarantined" in result.output

    after = _data(private_home)
    assert len(after) == len(before) + 1
    assert set(after["control_id"]) - set(before["control_id"]) == {"FILE-GOOD"}
    quarantine = _quarantine(private_home).set_index("control_id")
    assert set(quarantine.index) == set(BAD_ROWS)
    for control_id, (_, expected) in BAD_ROWS.items():
        reasons = quarantine.loc[control_id, "reasons"]
        assert expected in {(r["field"], r["rule"]) for r in reasons}, control_id
        assert all(r["message"] for r in reasons), control_id


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_file_with_quarantined_rows_exits_1_as_validate_documents(
    private_home: Path, tmp_path: Path, command: str
) -> None:
    file = _control_file(private_home, tmp_path / "controls.csv")
    with crisk_home(private_home):
        result = _invoke(*COMMANDS[command], str(file))
    assert result.exit_code == 1, result.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unusable_control_results_file_exits_2_naming_the_file_and_changes_nothing(
    private_home: Path, tmp_path: Path, command: str
) -> None:
    file = _control_file(private_home, tmp_path / "controls.csv")
    frame = pd.read_csv(file).rename(columns={"seizure": "officer_badge"})
    frame.to_csv(file, index=False)
    data = Workspace.at(private_home).data_dir / "control_results.parquet"
    before = data.read_bytes()
    with crisk_home(private_home):
        result = _invoke(*COMMANDS[command], str(file))
    assert result.exit_code == 2, result.output + repr(result.exception)
    message = _words(result.output)
    assert "unusable input" in message and str(file) in message
    assert "seizure" in message and "officer_badge" in message
    assert data.read_bytes() == before
    assert _quarantine(private_home).empty


def test_feedback_ingest_of_the_empty_store_of_a_fresh_service_adds_nothing(
    private_home: Path,
) -> None:
    FeedbackStore(Workspace.at(private_home).feedback_db)  # what the service does at start-up
    before = _data(private_home)
    with crisk_home(private_home):
        result = _invoke("feedback", "ingest")
    assert result.exit_code == 0, result.output
    assert "0 control results" in result.output
    pd.testing.assert_frame_equal(_data(private_home), before)
