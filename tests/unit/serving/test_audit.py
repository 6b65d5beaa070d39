"""The audit log: append-only, hash-chained, any edit detected."""

from __future__ import annotations

import sqlite3

from serving.audit import AuditLog


def _entry(i: int) -> dict:
    return {
        "scoring_id": f"{i:032x}",
        "subject_type": "declaration",
        "subject_id": f"D{i}",
        "item_number": 1,
        "event_time": "2026-01-01T00:00:00+00:00",
        "created_at": "2026-01-02T00:00:00+00:00",
        "scores": {"financial": i / 10},
    }


def test_chain_verifies_and_lookups_work(tmp_path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append([_entry(i) for i in range(5)])
    log.append([_entry(5)])
    assert log.verify().ok and log.verify().entries == 6
    assert log.get(f"{3:032x}")["subject_id"] == "D3"
    assert log.get("unknown") is None
    assert log.subject_time("declaration", "D2") == "2026-01-01T00:00:00+00:00"


def test_an_edited_entry_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.append([_entry(i) for i in range(4)])
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE audit SET record = replace(record, '0.2', '0.9') WHERE seq = 3")
    result = AuditLog(path).verify()
    assert not result.ok and result.first_bad_seq == 3


def test_a_deleted_entry_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    AuditLog(path).append([_entry(i) for i in range(4)])
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 2")
    result = AuditLog(path).verify()
    assert not result.ok and result.first_bad_seq == 3
