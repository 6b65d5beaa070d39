"""A control result's selection_reason is checked against the audit log of its subject."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.audit import AuditLog, new_scoring_ids
from serving.selection import check_selections, reconcile

RATE = 0.01


@pytest.fixture()
def audit(tmp_path: Path) -> AuditLog:
    """Three scored items of one declaration: drawn at random, selected, released."""
    log = AuditLog(tmp_path / "audit.sqlite")
    ids = new_scoring_ids(3)
    selections = [("random", 1.0), ("model", 1.0), (None, RATE)]
    items = [
        {
            "scoring_id": ids[k],
            "subject_type": "declaration",
            "subject_id": "26NL1",
            "item_number": k + 1,
            "event_time": "2026-03-02T10:00:00+00:00",
            "selection": {"reason": reason, "probability": p},
        }
        for k, (reason, p) in enumerate(selections)
    ]
    log.append({"created_at": "2026-03-02T10:00:01+00:00", "subject_type": "declaration"}, items)
    return log


def _result(item: int, reason: str, subject: str = "26NL1") -> dict[str, object]:
    return {
        "control_id": f"C{item}{reason}",
        "subject_type": "declaration",
        "subject_id": subject,
        "item_number": item,
        "selection_reason": reason,
        "note": None,
    }


@pytest.mark.parametrize(
    ("item", "claimed", "status", "stored_reason", "stored_probability"),
    [
        (1, "random", "ok", "random", 1.0),
        (2, "model", "ok", "model", 1.0),
        (3, "rule", "ok", "rule", None),  # the national rule engine chose a released item
        (3, "other", "ok", "other", None),
        (2, "random", "mismatch", "model", 1.0),  # not drawn: not part of the random sample
        (1, "model", "mismatch", "random", 1.0),  # drawn: it is part of the random sample
        (3, "random", "mismatch", "other", None),  # released by the service: someone else
        (3, "model", "mismatch", "other", None),
    ],
)
def test_the_audit_decides_what_the_service_did(
    audit: AuditLog,
    item: int,
    claimed: str,
    status: str,
    stored_reason: str,
    stored_probability: float | None,
) -> None:
    result = _result(item, claimed)
    (check,) = check_selections(audit, [result])
    assert check.status == status
    stored = reconcile(result, check.as_dict())
    assert stored["selection_reason"] == stored_reason
    assert stored.get("selection_probability") == stored_probability
    if status == "mismatch":
        assert f"reported as {claimed!r}" in stored["note"], "the claim as sent is kept"
        assert check.warning(0)["field"] == "selection_reason"


def test_a_subject_the_service_never_scored_cannot_be_checked(audit: AuditLog) -> None:
    (check,) = check_selections(audit, [_result(1, "random", subject="26NL999")])
    assert check.status == "unverified"
    assert reconcile(_result(1, "random"), check.as_dict())["selection_reason"] == "random"


def test_the_note_stays_within_its_bound(audit: AuditLog) -> None:
    result = {**_result(2, "random"), "note": "x" * 2000}
    (check,) = check_selections(audit, [result])
    stored = reconcile(result, check.as_dict())
    assert len(stored["note"]) <= 2000 and stored["note"].endswith(")]")


@pytest.mark.parametrize("number", ["2", "2.0", 2.0, " 2 "])
def test_item_numbers_read_from_a_file_find_their_audit_entry(audit: AuditLog, number) -> None:
    result = {**_result(2, "random"), "item_number": number, "subject_id": " 26NL1 "}
    (check,) = check_selections(audit, [result])
    assert check.status == "mismatch" and check.audited == "model"
