"""A workspace as a customs administration has it: declarations and control results only.

No ENS filings, no operator register, no random controls, no ground truth; the declarations
carry two national attributes in ``extra`` and the dataset's revenue is unknown. Every command
runs through the installed ``crisk`` (a subprocess, as a user runs it) and the real server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from data_contracts.dataset import DatasetManifest, ExtraAttribute, write_manifest
from data_contracts.definitions import contract_for
from data_contracts.inventory import MISSING_KIND_NOTES
from data_contracts.workspace import Workspace
from pipelines.steps import REVENUE_UNKNOWN_NOTE
from tests.conftest import free_port, stop_server
from tests.integration.workspaces import crisk_home

pytestmark = pytest.mark.integration

CRISK = str(Path(sys.executable).with_name("crisk"))
KEYS = {"scorer": "do-scorer-key", "officer": "do-officer-key"}
ATTRIBUTES = [
    ExtraAttribute(name="payment_type", type="categorical", label="Payment type"),
    ExtraAttribute(name="tax_rate", type="numeric", label="Tax rate"),
]


def _environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CRISK_HOME": str(home),
            "CRISK_TRAIN_MIN_POSITIVE_LABELS": "15",
            # A small world: fewer rounds and a smaller reference sample keep the test short.
            "CRISK_TRAIN_LGBM_MAX_ROUNDS": "80",
            "CRISK_TRAIN_REFERENCE_SAMPLE_SIZE": "3000",
            "CRISK_API_KEYS": ",".join(f"{role}:{key}" for role, key in KEYS.items()),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        }
    )
    env.pop("BENTOML_HOME", None)  # the workspace's own, as for a user
    return env


def crisk(
    home: Path, *args: str, ok: tuple[int, ...] = (0,), **settings: str
) -> subprocess.CompletedProcess[str]:
    env = _environment(home) | settings
    done = subprocess.run([CRISK, *args], env=env, cwd=home.parent, capture_output=True, text=True)
    assert done.returncode in ok, f"crisk {' '.join(args)}: {done.returncode}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def files(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The administration's two files, cut from the test world: its declarations, with a
    payment type that goes with financial fraud and a tax rate, and the controls it chose."""
    world = trained_workspace / "world"
    out = tmp_path_factory.mktemp("administration")
    # All the world's declarations: the world's rule-selected controls find few financial
    # irregularities in the validation window (the planted scheme starts shortly before it and
    # the rules do not look there), and half of them would leave fewer than the 3 it needs.
    declarations = pd.read_parquet(world / "declarations.parquet")
    truth = pd.read_parquet(world / "ground_truth.parquet")
    truth = truth[truth["subject_type"] == "declaration"]
    irregular = (
        declarations[["declaration_id", "item_number"]]
        .merge(
            truth.assign(item_number=truth["item_number"].astype("int64")),
            left_on=["declaration_id", "item_number"],
            right_on=["subject_id", "item_number"],
            how="left",
        )["irregular_financial"]
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    rng = np.random.default_rng(3)
    usual = rng.choice(np.array(["10", "12", "13"]), len(declarations))
    payment = np.where(irregular & (rng.random(len(declarations)) < 0.7), "11", usual)
    rates = rng.choice([0.0, 5.5, 12.0, 21.0], len(declarations))
    declarations["extra"] = [
        {"payment_type": p, "tax_rate": float(r)} for p, r in zip(payment, rates, strict=True)
    ]
    declarations.to_parquet(out / "declarations.parquet", index=False)
    controls = pd.read_parquet(world / "control_results.parquet")
    chosen = (
        (controls["subject_type"] == "declaration")
        & (controls["selection_reason"] != "random")
        & controls["subject_id"].isin(set(declarations["declaration_id"]))
    )
    controls[chosen].drop(columns=["reported_at"], errors="ignore").to_parquet(
        out / "control_results.parquet", index=False
    )
    return out


def _notes(stderr: str) -> list[str]:
    return [line.removeprefix("note: ") for line in stderr.splitlines() if line.startswith("note:")]


EXPECTED_NOTES = [
    MISSING_KIND_NOTES["ens"],
    MISSING_KIND_NOTES["operators"],
    MISSING_KIND_NOTES["random_controls"],
    REVENUE_UNKNOWN_NOTE,
]


def _declaration_request(files: Path, n: int) -> list[dict]:
    frame = pd.read_parquet(files / "declarations.parquet").tail(n)
    fields = contract_for("declarations").field_names
    return json.loads(frame[fields].to_json(orient="records", date_format="iso"))


def _ens_request(trained_workspace: Path) -> list[dict]:
    frame = pd.read_parquet(trained_workspace / "data" / "ens.parquet").head(1)
    fields = contract_for("ens").field_names
    return json.loads(frame[fields].to_json(orient="records", date_format="iso"))


def test_every_step_runs_on_declarations_and_control_results_only(
    files: Path, trained_workspace: Path, tmp_path: Path
) -> None:
    home = tmp_path / "administration"
    write_manifest(
        Workspace.at(home),
        DatasetManifest(
            dataset="declarations-only", source="import", extra=ATTRIBUTES, revenue_known=False
        ),
    )
    # The world's feeds hold deliberately broken rows: ingest quarantines them (exit 1).
    crisk(home, "ingest", "declarations", str(files / "declarations.parquet"), ok=(0, 1))
    crisk(home, "ingest", "control-results", str(files / "control_results.parquet"), ok=(0, 1))

    applied = crisk(home, "features", "apply")
    assert _notes(applied.stderr) == EXPECTED_NOTES, "one line per missing kind"
    materialized = crisk(home, "features", "materialize")
    assert _notes(materialized.stderr) == EXPECTED_NOTES
    tables = {p.stem for p in (home / "feast" / "tables").glob("*.parquet")}
    assert "importer_hit_rate_365d" in tables and "national_commodity_hit_rate_365d" in tables
    assert not tables & {"carrier_hit_rate_365d", "importer_registration_current"}
    _engines_and_online_agree_without_the_register(home)

    trained = crisk(home, "train")
    assert "crisk_declaration_financial" in trained.stdout
    assert "crisk_declaration_revenue" not in trained.stdout, "revenue unknown: no revenue model"
    spec_features = _served_spec_features(home)
    assert {"extra_payment_type", "extra_tax_rate"} <= set(spec_features)

    crisk(home, "evaluate", "--alias", "champion", "--out", str(tmp_path / "evaluation"))
    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert metrics["primary_datasets"]["declaration"] == "controlled"
    assert not any(key.startswith("ens:") for key in metrics["areas"])

    _serve_declarations_only(home, files, trained_workspace)

    retrained = crisk(home, "retrain")
    assert _notes(retrained.stderr) == EXPECTED_NOTES
    assert "models trained:" in retrained.stdout

    # Too few hits everywhere: nothing trained, and each area says how many it has.
    starved = crisk(home, "train", CRISK_TRAIN_MIN_POSITIVE_LABELS="100000")
    assert "nothing trained; the rule profiles stay in charge" in starved.stdout
    assert re.search(
        r"declaration/financial \(classification\): \d+ training hits, \d+ in validation "
        r"\(minimum 100000 and 3\)",
        starved.stdout,
    ), starved.stdout


def _engines_and_online_agree_without_the_register(home: Path) -> None:
    """Parity and skew with a view the workspace cannot feed: Feast's own join, the DuckDB
    join and the online store agree, and the register's features are missing everywhere."""
    from features.config import FeatureStoreSettings
    from features.online import OnlineFeatureReader
    from features.retrieval import entity_frame, historical_features
    from features.services import SERVICE_FOR_SUBJECT
    from features.tables import cutoff_of

    settings = FeatureStoreSettings(home=home)
    service = SERVICE_FOR_SUBJECT["declaration"]
    records = pd.read_parquet(home / "data" / "declarations.parquet")
    sample = records.sample(200, random_state=5)
    entities = entity_frame(sample, "declaration")
    by_feast = historical_features(settings, service, entities, engine="feast")
    by_duckdb = historical_features(settings, service, entities, engine="duckdb")
    columns = [c for c in by_feast.columns if c not in entities.columns]
    for name in columns:
        np.testing.assert_allclose(
            by_feast[name].to_numpy(dtype=float), by_duckdb[name].to_numpy(dtype=float),
            equal_nan=True, err_msg=name,
        )  # fmt: skip
    assert (
        by_duckdb["importer_aeo"].isna().all() and by_duckdb["registration_age_days"].isna().all()
    )
    assert by_duckdb["importer_hit_rate_365d"].notna().any()
    now = sample.assign(lodged_at=cutoff_of(records["lodged_at"]) + pd.Timedelta(hours=1))
    at_cutoff = entity_frame(now, "declaration")
    offline = historical_features(settings, service, at_cutoff, engine="duckdb")
    online = OnlineFeatureReader(settings, service).get(
        {c: at_cutoff[c].to_numpy() for c in at_cutoff.columns}
    )
    for name in columns:
        np.testing.assert_allclose(
            offline[name].to_numpy(dtype=float), np.asarray(online[name], dtype=float),
            equal_nan=True, err_msg=name,
        )  # fmt: skip


def _served_spec_features(home: Path) -> list[str]:
    import mlflow

    with crisk_home(home):
        folder = mlflow.artifacts.download_artifacts(
            "models:/crisk_declaration_financial@champion", dst_path=str(home.parent / "spec")
        )
    return json.loads((Path(folder) / "artifacts" / "spec.json").read_text())["features"]


def _serve_declarations_only(home: Path, files: Path, trained_workspace: Path) -> None:
    port = free_port()
    log = (home.parent / "serve.log").open("wb")
    process = subprocess.Popen(
        [CRISK, "serve", "--port", str(port)],
        env=_environment(home),
        cwd=home.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(url, process)
        assert ready["subjects"] == ["declaration"]
        assert ready["revenue_models"] == {"declaration": False}
        assert ready["blue_channel"]["declaration"].startswith("disabled")
        scorer = {"Authorization": f"Bearer {KEYS['scorer']}"}
        items = _declaration_request(files, 30)
        response = httpx.post(
            f"{url}/score",
            json={"declarations": items, "explain": True},
            headers=scorer,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert all(r["channel"] != "blue" for r in results)
        sentences = [reason["sentence"] for r in results for reason in r["reasons"]]
        payments = {item["extra"]["payment_type"] for item in items}
        assert any(s.startswith(f"Payment type: {p}") for s in sentences for p in payments), (
            "a national attribute is a reason, in plain words"
        )
        assert ready["identifier_formats"] == {"declaration": "eori"}
        national = [{**items[0], "importer_id": "7300412"}]
        rejected = httpx.post(f"{url}/score", json={"declarations": national}, headers=scorer)
        assert rejected.status_code == 422, rejected.text
        assert rejected.json()["reasons"][0]["field"] == "declarations.0.importer_id"
        assert rejected.json()["reasons"][0]["rule"] == "pattern"
        refused = httpx.post(
            f"{url}/score", json={"ens": _ens_request(trained_workspace)}, headers=scorer
        )
        assert refused.status_code == 503
        assert refused.json()["field"] == "ens" and "no ens model" in refused.json()["message"]
    finally:
        stop_server(process)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> dict:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, "crisk serve exited"
        try:
            answer = httpx.get(f"{url}/readyz", timeout=1)
            if answer.status_code == 200:
                return answer.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("crisk serve did not become ready")
