"""The real BentoML server over loopback: score, feedback, resend, auth, malformed bodies."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from data_contracts.definitions import contract_for

pytestmark = pytest.mark.integration


def _records(home, kind: str, n: int, seed: int = 1) -> list[dict]:
    name = {"declarations": "declarations", "ens": "ens"}[kind]
    frame = pd.read_parquet(home / "data" / f"{name}.parquet").sample(n, random_state=seed)
    fields = contract_for(kind).field_names
    return json.loads(frame[fields].to_json(orient="records", date_format="iso"))


def _auth(server, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.keys[role]}"}


def test_readyz_names_the_models(server) -> None:
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["ready"] is True and ready["fallback"] is False
    assert any(name.startswith("crisk_declaration_") for name in ready["models"])


def test_score_feedback_and_resend(server, trained_workspace) -> None:
    declarations = _records(trained_workspace, "declarations", 20)
    ens = _records(trained_workspace, "ens", 5)
    response = httpx.post(
        f"{server.url}/score",
        json={"declarations": declarations, "ens": ens, "explain": True},
        headers=_auth(server, "scorer"),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["subject_id"] for r in results] == [d["declaration_id"] for d in declarations] + [
        e["ens_id"] for e in ens
    ], "results come back in request order"
    for result in results:
        assert 0.0 <= result["overall"] <= 1.0
        assert result["channel"] in {"green", "yellow", "red", "blue"}
        assert result["scores"] and all(0.0 <= p <= 1.0 for p in result["scores"].values())
        assert 1 <= len(result["reasons"]) <= 5, "explain=true gives reasons for every item"
        assert all(r["sentence"] for r in result["reasons"])
        assert result["model_version"] and result["feature_service"].startswith("customs_risk_")
        assert len(result["scoring_id"]) == 32

    first = results[0]
    control = {
        "control_id": "IT-CTL-1",
        "subject_type": "declaration",
        "subject_id": first["subject_id"],
        "item_number": first["item_number"],
        "controlled_at": "2027-02-01T10:00:00Z",
        "control_type": "physical",
        # What the service did (its audit entry), or a national rule for an item it released.
        "selection_reason": first["selection"]["reason"] or "rule",
        "outcome": "irregularity",
        "risk_area": "financial",
        "revenue_recovered_eur": 250.0,
        "seizure": False,
    }
    sent = httpx.post(
        f"{server.url}/feedback",
        json={"control_results": [control]},
        headers=_auth(server, "officer"),
    )
    assert sent.status_code == 200 and sent.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [],
        "warnings": [],
    }
    again = httpx.post(
        f"{server.url}/feedback",
        json={"control_results": [control]},
        headers=_auth(server, "officer"),
    )
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": [], "warnings": []}

    explained = httpx.post(
        f"{server.url}/explain",
        json={"scoring_id": first["scoring_id"]},
        headers=_auth(server, "auditor"),
    )
    assert explained.status_code == 200
    assert explained.json()["input"]["declaration_id"] == first["subject_id"]


def test_keys_and_roles(server, trained_workspace) -> None:
    body = {"declarations": _records(trained_workspace, "declarations", 1)}
    assert httpx.post(f"{server.url}/score", json=body).status_code == 401
    assert (
        httpx.post(
            f"{server.url}/score", json=body, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    assert (
        httpx.post(f"{server.url}/score", json=body, headers=_auth(server, "officer")).status_code
        == 403
    )
    assert (
        httpx.post(
            f"{server.url}/feedback", json={"control_results": []}, headers=_auth(server, "scorer")
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"origin_country": "XX"}, "declarations.0.origin_country", "code_list"),
        ({"customs_value_eur": -5}, "declarations.0.customs_value_eur", "greater_than"),
        ({"hs_code": "12AB"}, "declarations.0.hs_code", "pattern"),
        ({"gross_mass_kg": 0.000001}, "declarations.0.gross_mass_kg", "gross_at_least_net"),
        ({"lodged_at": "yesterday"}, "declarations.0.lodged_at", "type"),
        ({"surprise": 1}, "declarations.0.surprise", "unknown_field"),
    ],
)
def test_malformed_items_get_422_naming_the_field(
    server, trained_workspace, change, field, rule
) -> None:
    item = {**_records(trained_workspace, "declarations", 1)[0], **change}
    response = httpx.post(
        f"{server.url}/score", json={"declarations": [item]}, headers=_auth(server, "scorer")
    )
    assert response.status_code == 422, response.text
    reasons = response.json()["reasons"]
    assert any(r["field"] == field and r["rule"] == rule for r in reasons), reasons


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 422),
        (b"[]", "application/json", 422),
        (b"{}", "application/json", 422),
        (b'{"declarations": "many"}', "application/json", 422),
        (b"--x\r\nbroken multipart", "multipart/form-data; boundary=x", 415),
        (b"hello", "text/plain", 415),
    ],
)
def test_malformed_bodies_are_4xx_never_5xx(server, content, content_type, status) -> None:
    response = httpx.post(
        f"{server.url}/score",
        content=content,
        headers={**_auth(server, "scorer"), "content-type": content_type},
    )
    assert response.status_code == status, response.text


def test_feedback_rejects_invalid_items_with_reasons(server) -> None:
    good = {
        "control_id": "IT-CTL-2",
        "subject_type": "ens",
        "subject_id": "X1",
        "controlled_at": "2027-01-01T00:00:00Z",
        "control_type": "scan",
        "selection_reason": "random",
        "outcome": "no_irregularity",
        "revenue_recovered_eur": 0,
        "seizure": False,
    }
    bad = {**good, "control_id": "IT-CTL-3", "outcome": "irregularity"}
    response = httpx.post(
        f"{server.url}/feedback",
        json={"control_results": [good, bad]},
        headers=_auth(server, "officer"),
    )
    body = response.json()
    assert body["accepted"] == 1 and body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["reasons"][0]["field"] == "risk_area"


def test_unknown_importer_is_scored_with_a_cold_start_warning(server, trained_workspace) -> None:
    item = {**_records(trained_workspace, "declarations", 1)[0], "importer_id": "NL000000000001"}
    response = httpx.post(
        f"{server.url}/score", json={"declarations": [item]}, headers=_auth(server, "scorer")
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert "cold_start_importer" in result["warnings"]
    assert 0.0 <= result["overall"] <= 1.0


def test_feedback_claiming_a_random_selection_the_audit_does_not_record_is_flagged(
    server, trained_workspace
) -> None:
    from serving.feedback import FeedbackStore

    declarations = _records(trained_workspace, "declarations", 30, seed=9)
    scored = httpx.post(
        f"{server.url}/score", json={"declarations": declarations}, headers=_auth(server, "scorer")
    ).json()["results"]
    for result in scored:
        assert set(result["selection"]) == {"reason", "probability"}
        assert 0 < result["selection"]["probability"] <= 1
    item = next(r for r in scored if r["selection"]["reason"] != "random")
    claim = {
        "control_id": "IT-CTL-CLAIM",
        "subject_type": "declaration",
        "subject_id": item["subject_id"],
        "item_number": item["item_number"],
        "controlled_at": "2027-02-01T10:00:00Z",
        "control_type": "documentary",
        "selection_reason": "random",
        "outcome": "no_irregularity",
        "revenue_recovered_eur": 0,
        "seizure": False,
    }
    body = httpx.post(
        f"{server.url}/feedback",
        json={"control_results": [claim]},
        headers=_auth(server, "officer"),
    ).json()
    assert body["accepted"] == 1, "the outcome is kept"
    (warning,) = body["warnings"]
    assert warning["field"] == "selection_reason" and warning["value"] == "random"
    assert warning["scoring_id"] == item["scoring_id"]
    stored = FeedbackStore(trained_workspace / "service" / "feedback.sqlite").frame()
    row = stored[stored["control_id"] == "IT-CTL-CLAIM"].iloc[0]
    assert row["selection_reason"] != "random", "it never enters the random-control set"
    assert "reported as 'random'" in row["note"]
