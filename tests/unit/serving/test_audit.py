"""The audit log: append-only, hash-chained, any edit detected."""

from __future__ import annotations

import sqlite3

import numpy as np

from serving.audit import AuditLog


def _header(start: int, n: int) -> dict:
    return {
        "created_at": "2026-01-02T00:00:00+00:00",
        "subject_type": "declaration",
        "bundle": "crisk-bundle:test",
        "inputs": {"declaration_id": [f"D{i}" for i in range(start, start + n)],
                   "item_number": [1] * n},
        "features": {"price_z_score": np.array([-1.5 * i for i in range(start, start + n)])},
    }  # fmt: skip


def _items(start: int, n: int) -> list[dict]:
    return [
        {"scoring_id": f"{i:032x}", "subject_type": "declaration", "subject_id": f"D{i}",
         "item_number": 1, "event_time": "2026-01-01T00:00:00+00:00",
         "scores": {"financial": i / 10}}
        for i in range(start, start + n)
    ]  # fmt: skip


def _append(log: AuditLog, start: int, n: int) -> None:
    log.append(_header(start, n), _items(start, n))


def test_chain_verifies_and_lookups_work(tmp_path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    _append(log, 0, 5)
    _append(log, 5, 1)
    result = log.verify()
    assert result.ok and result.entries == 2 and log.count() == 6
    item = log.get(f"{3:032x}")
    assert item["subject_id"] == "D3" and item["bundle"] == "crisk-bundle:test"
    assert "inputs" not in item and "features" in item
    assert item["input"] == {"declaration_id": "D3", "item_number": 1}
    assert item["features"] == {"price_z_score": -4.5}
    assert log.get("unknown") is None
    assert log.subject_time("declaration", "D2") == "2026-01-01T00:00:00+00:00"


def test_an_edited_entry_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for start in range(0, 8, 2):
        _append(log, start, 2)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE audit SET record = replace(record, 'D5', 'D9') WHERE seq = 3")
    result = AuditLog(path).verify()
    assert not result.ok and result.first_bad_seq == 3


def test_a_deleted_entry_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for start in range(0, 8, 2):
        _append(log, start, 2)
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 2")
    result = AuditLog(path).verify()
    assert not result.ok and result.first_bad_seq == 3


def test_a_redirected_index_row_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    _append(log, 0, 3)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE audit_items SET position = 2 WHERE position = 0")
    assert not AuditLog(path).verify().ok
