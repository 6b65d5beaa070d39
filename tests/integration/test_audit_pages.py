"""The pages auditors and analysts read, built on a workspace that has been evaluated and has
served: decision pages (``crisk audit show`` and ``POST /explain``), model cards of the served
bundle (``crisk audit model-report``) and the monitoring indicators (``crisk report``).

Every check compares a page with its source: the audit entry, the evaluation's metrics.json,
the control results in the data store and the feedback store, MLflow's runs and tags.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from pipelines.cli import app
from tests.integration.audited import AuditedWorkspace
from tests.integration.workspaces import crisk_home, mlflow_client

pytestmark = pytest.mark.integration

DECISION_SECTIONS = (
    "decision",
    "scores",
    "reasons",
    "waterfall",
    "models",
    "request",
    "controls",
    "audit",
)
CARD_SECTIONS = (
    "model",
    "uses",
    "data",
    "bias",
    "metrics",
    "curves",
    "shap",
    "features",
    "limitations",
    "history",
)


def _invoke(home: Path, *args: str, code: int = 0) -> Result:
    with crisk_home(home):
        result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output + repr(result.exception)
    return result


def _record(home: Path, scoring_id: str) -> dict[str, Any]:
    return json.loads(_invoke(home, "audit", "show", scoring_id, "--json").stdout)


def _assert_self_contained(html: str) -> None:
    assert not re.search(r"(src|href)\s*=\s*[\"']?https?:", html), "a page must not fetch anything"
    assert "<script" not in html


# --- decision pages ----------------------------------------------------------------------------


def test_explain_endpoint_and_cli_give_the_same_decision_record(
    audited_workspace: AuditedWorkspace,
) -> None:
    for scoring_id, explained in audited_workspace.explained.items():
        shown = _record(audited_workspace.home, scoring_id)
        for key in (
            "scores",
            "overall",
            "channel",
            "thresholds",
            "model_version",
            "feature_service",
            "selection",
            "reasons",
            "explanations",
            "features_used",
            "input",
            "_audit",
        ):
            assert shown[key] == explained[key], f"{scoring_id}: {key} differs"
        assert [r["control_id"] for r in shown["control_results"]] == [
            r["control_id"] for r in explained["control_results"]
        ]


def test_decision_record_matches_the_audited_score(audited_workspace: AuditedWorkspace) -> None:
    home = audited_workspace.home
    item = audited_workspace.item(next(iter(audited_workspace.explained)))
    record = _record(home, item["scoring_id"])
    for key in (
        "scores",
        "overall",
        "channel",
        "random_selection",
        "model_version",
        "feature_service",
        "primary_area",
        "subject_id",
        "item_number",
    ):
        assert record[key] == item[key], key
    assert set(record["thresholds"]) >= {"select", "red", "revenue"}
    assert next(iter(record["explanations"])) == item["primary_area"], "the main area comes first"
    assert set(record["explanations"]) == set(item["scores"])
    for area, explanation in record["explanations"].items():
        assert explanation["matches_recorded"], f"{area}: recomputed score differs from the log"
        total = explanation["base_value"] + sum(
            c["contribution"] for c in explanation["contributions"]
        )
        assert total == pytest.approx(explanation["margin"], abs=1e-4)
    reasons = record["reasons"]
    assert 1 <= len(reasons) <= 5
    for reason in reasons:
        assert reason["probability_with"] == pytest.approx(item["scores"][reason["area"]], abs=1e-5)
        assert re.search(r"risk (from [\d.<>%]+ to [\d.<>%]+|slightly)", reason["sentence"])
    features = {f["feature"]: f for f in record["features_used"]}
    assert set(features) >= set(record["features"]), "every logged feature is listed"
    assert all(
        0 <= f["percentile"] <= 100 for f in features.values() if f.get("percentile") is not None
    )
    assert record["input"]["declaration_id"] == item["subject_id"]


def test_decision_lists_every_control_result_received(audited_workspace: AuditedWorkspace) -> None:
    home = audited_workspace.home
    stored = pd.read_parquet(home / "data" / "control_results.parquet")
    for sent in audited_workspace.feedback:
        item = next(r for r in audited_workspace.results if r["subject_id"] == sent["subject_id"])
        record = _record(home, item["scoring_id"])
        listed = {r["control_id"]: r for r in record["control_results"]}
        assert listed[sent["control_id"]]["source"].startswith("feedback store")
        assert listed[sent["control_id"]]["revenue_recovered_eur"] == sent["revenue_recovered_eur"]
        in_store = stored[
            (stored["subject_type"] == "declaration")
            & (stored["subject_id"] == sent["subject_id"])
            & (stored["item_number"].isna() | (stored["item_number"] == item["item_number"]))
        ]
        assert {r for r, v in listed.items() if v["source"] == "data store"} == set(
            in_store["control_id"]
        )


def test_decision_page_html_and_text(audited_workspace: AuditedWorkspace, tmp_path: Path) -> None:
    home = audited_workspace.home
    green = next(
        r
        for r in audited_workspace.results
        if r["channel"] == "green" and r["subject_type"] == "declaration" and not r["reasons"]
    )
    for item in (audited_workspace.item(next(iter(audited_workspace.explained))), green):
        page = tmp_path / f"{item['scoring_id']}.html"
        shown = _invoke(home, "audit", "show", item["scoring_id"], "--html", str(page))
        record = _record(home, item["scoring_id"])
        html = page.read_text()
        _assert_self_contained(html)
        for anchor in DECISION_SECTIONS:
            assert f'id="{anchor}"' in html, anchor
        assert html.count("data:image/png;base64,") == len(record["explanations"])
        for reason in record["reasons"]:
            assert reason["sentence"] in shown.stdout
            assert reason["sentence"].replace("'", "&#x27;") in html
        assert item["scoring_id"] in shown.stdout and "Top reasons" in shown.stdout
        for area, score in item["scores"].items():
            assert f"{100 * score:.1f}%" in html or f"{100 * score:.0f}%" in html, area
    assert _record(home, green["scoring_id"])["reasons_recomputed"] is True


def test_ens_decision_page(audited_workspace: AuditedWorkspace, tmp_path: Path) -> None:
    item = next(r for r in audited_workspace.results if r["subject_type"] == "ens")
    record = _record(audited_workspace.home, item["scoring_id"])
    assert record["input"]["ens_id"] == item["subject_id"]
    assert record["reasons"] and record["explanations"]


# --- model cards -------------------------------------------------------------------------------


def _served_versions(home: Path) -> dict[str, str]:
    served = json.loads((home / "service" / "serving_bundle.json").read_text())
    return {name: str(version) for name, version in served["models"].items()}


def test_model_cards_of_the_served_bundle_match_the_evaluation(
    audited_workspace: AuditedWorkspace, tmp_path: Path
) -> None:
    home = audited_workspace.home
    out = tmp_path / "cards"
    shown = _invoke(home, "audit", "model-report", "--out", str(out))
    served = _served_versions(home)
    assert "the bundle the service serves" in shown.stdout
    evaluation = audited_workspace.evaluation
    client = mlflow_client(home)
    for name, version in served.items():
        html = (out / f"{name}.html").read_text()
        _assert_self_contained(html)
        for anchor in CARD_SECTIONS:
            assert f'id="{anchor}"' in html, f"{name}: {anchor}"
        model_version = client.get_model_version(name, version)
        assert f"{name} version {version}" in html
        assert model_version.tags["data_snapshot"] in html
        assert model_version.tags["feature_service"] in html
        assert model_version.tags["contract_version"] in html
        assert model_version.tags["model_card"].endswith(f"model_card/{name}.html")
        # By the run's own location: MLflow caches artifact stores per run id in a process, and
        # the copy's run ids are the original's.
        run_dir = Path(
            client.get_run(model_version.run_id).info.artifact_uri.removeprefix("file://")
        )
        assert (run_dir / "model_card" / f"{name}.html").read_text() == html
        if model_version.tags["task"] == "revenue":
            continue
        subject, area = model_version.tags["subject"], model_version.tags["area"]
        key = area if subject == "declaration" else f"{subject}:{area}"
        metrics = evaluation["areas"][key]
        assert evaluation["models"][name] == version
        for rate, value in metrics["precision_at"].items():
            if value is not None:
                assert f"{value:.3f}" in html, f"{name}: Precision@{rate}%"
        for baseline, values in metrics["baselines"].items():
            assert f"baseline {baseline}" in html
            assert f"{values['precision_at']['5']:.3f}" in html
        for slice_name, values in metrics["slices"].items():
            for value, entry in values.items():
                assert f"{entry['precision_at']['5']:.3f}" in html, f"{slice_name}={value}"
        assert html.count("data:image/png;base64,") >= 4, "PR, calibration, importance, dependence"
    index = (out / "index.html").read_text()
    assert all(f'href="{name}.html"' in index for name in served)


def test_model_card_names_areas_without_a_model_and_the_promotion_history(
    audited_workspace: AuditedWorkspace, tmp_path: Path
) -> None:
    home = audited_workspace.home
    out = tmp_path / "cards"
    _invoke(home, "audit", "model-report", "--out", str(out), "--no-log")
    served = _served_versions(home)
    client = mlflow_client(home)
    registered = {m.name for m in client.search_registered_models("name LIKE 'crisk_%'")}
    name = next(n for n in served if n.startswith("crisk_declaration_") and "revenue" not in n)
    html = (out / f"{name}.html").read_text()
    from training.train import AREAS_BY_SUBJECT

    for area in AREAS_BY_SUBJECT["declaration"]:
        if f"crisk_declaration_{area}" not in registered:
            assert f"No declaration model for {area}" in html
    decisions = [
        r
        for r in client.search_runs(
            [client.get_experiment_by_name("crisk").experiment_id], f"tags.model = '{name}'"
        )
        if "decision" in r.data.tags
    ]
    if decisions:
        assert all(d.data.tags["reason"].split(":")[0] in html for d in decisions)
    else:
        assert "No promotion-gate decision" in html


# --- indicators ---------------------------------------------------------------------------------


def _expected_controls(audited: AuditedWorkspace) -> pd.DataFrame:
    stored = pd.read_parquet(audited.home / "data" / "control_results.parquet")
    pending = pd.DataFrame(audited.feedback)
    return pd.concat([stored, pending[~pending["control_id"].isin(stored["control_id"])]])


def test_indicators_match_the_control_results(
    audited_workspace: AuditedWorkspace, tmp_path: Path
) -> None:
    home = audited_workspace.home
    out = tmp_path / "report"
    shown = _invoke(home, "report", "--out", str(out))
    controls = _expected_controls(audited_workspace)
    table = pd.read_csv(out / "controls_by_type_and_reason.csv").set_index("control type")
    expected = pd.crosstab(controls["control_type"], controls["selection_reason"])
    for control_type, row in expected.iterrows():
        for reason, count in row.items():
            assert table.loc[control_type, reason] == count, (control_type, reason)
    assert table.loc["all types", "total"] == len(controls)
    rates = pd.read_csv(out / "hit_rate_by_type_and_selection.csv")
    for _, row in rates.iterrows():
        part = controls[
            (controls["control_type"] == row["control type"])
            & (controls["selection_reason"] == row["selection"])
        ]
        assert row["controls"] == len(part)
        assert row["irregularities"] == int((part["outcome"] == "irregularity").sum())
        low, high = row["95% interval low"], row["95% interval high"]
        if row["selection"] == "random":
            assert low <= row["irregularities"] / row["controls"] <= high
        else:
            assert math.isnan(low), "targeted controls get no interval: they are no estimate"
    areas = pd.read_csv(out / "hits_by_risk_area.csv").set_index("risk area")
    hits = controls[controls["outcome"] == "irregularity"]["risk_area"].value_counts()
    assert areas["irregularities"].to_dict() == hits.to_dict()
    html = (out / "report.html").read_text()
    _assert_self_contained(html)
    assert html.count("data:image/png;base64,") >= 5
    for key in (
        "controls_by_type_and_reason",
        "hit_rate_by_type_and_selection",
        "irregularities_aeo_vs_non_aeo",
        "hits_by_risk_area",
        "hits_by_transport_mode",
        "risk_analysis",
    ):
        assert f'id="{key}"' in html, key
    assert f"{len(controls):,} controls" in shown.stdout


def test_indicators_of_a_period(audited_workspace: AuditedWorkspace, tmp_path: Path) -> None:
    out = tmp_path / "report"
    _invoke(
        audited_workspace.home,
        "report",
        "--from",
        "2026-06-01",
        "--to",
        "2026-06-30",
        "--out",
        str(out),
    )
    controls = _expected_controls(audited_workspace)
    when = pd.to_datetime(controls["controlled_at"], utc=True)
    june = controls[(when >= "2026-06-01") & (when < "2026-07-01")]
    table = pd.read_csv(out / "controls_by_type_and_reason.csv").set_index("control type")
    assert table.loc["all types", "total"] == len(june)


def test_report_on_declarations_and_control_results_only(
    trained_workspace: Path, tmp_path: Path
) -> None:
    home = tmp_path / "only"
    (home / "data").mkdir(parents=True)
    for name in ("declarations.parquet", "control_results.parquet"):
        shutil.copy(trained_workspace / "data" / name, home / "data" / name)
    shown = _invoke(home, "report", "--out", str(tmp_path / "out"))
    assert "No operator register" in shown.stdout and "No audit log" in shown.stdout
    aeo = pd.read_csv(tmp_path / "out" / "irregularities_aeo_vs_non_aeo.csv")
    assert set(aeo["AEO status"]) == {"unknown"}
    missing = _invoke(home, "audit", "show", "0123456789abcdef", code=2)
    assert "no audit log" in missing.output and "Traceback" not in missing.output
