"""The audit log's subject index: its own file, brought up to date in bulk, never missing a row."""

from __future__ import annotations

import sqlite3

import pytest

import serving.audit as audit_module
import serving.audit_subjects as subjects_module
from serving.audit import AuditLog
from serving.audit_subjects import index_pending, subject_index_path


def _entry(ids: list[str], times: list[str], offset: int) -> tuple[dict, list[dict]]:
    header = {"created_at": "2026-01-02T00:00:00+00:00", "subject_type": "declaration"}
    items = [
        {"scoring_id": f"{offset + k:032x}", "subject_type": "declaration", "subject_id": i,
         "item_number": k + 1, "event_time": t, "channel": "green"}
        for k, (i, t) in enumerate(zip(ids, times, strict=True))
    ]  # fmt: skip
    return header, items


def _indexed_up_to(log: AuditLog) -> int:
    with sqlite3.connect(subject_index_path(log.path)) as db:
        return int(db.execute("SELECT up_to FROM indexed").fetchone()[0])


def test_lookups_read_the_index_and_the_rows_written_after_it(tmp_path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(*_entry(["A", "B"], ["2026-01-05", "2026-01-03"], 0))
    # Nothing indexed yet: found by the scan of the rows after the mark.
    assert _indexed_up_to(log) == 0
    assert log.subject_times("declaration", ["A", "B", "Z"]) == {
        "A": "2026-01-05",
        "B": "2026-01-03",
    }
    assert index_pending(log.path) == 2 and _indexed_up_to(log) == 2
    assert index_pending(log.path) == 0
    log.append(*_entry(["A", "C"], ["2026-01-01", "2026-01-09"], 10))
    # A is in both parts: its earliest time is the new row's; each item is listed once.
    assert log.subject_time("declaration", "A") == "2026-01-01"
    found = log.subject_items("declaration", ["A", "C"])
    assert [item["_seq"] for item in found["A"]] == [2, 1]
    assert [item["scoring_id"] for item in found["C"]] == [f"{11:032x}"]
    assert log.subject_items("ens", ["A"]) == {}
    assert log.verify().ok


def test_colliding_keys_find_only_their_own_subject(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(audit_module, "subject_key", lambda subject_type, subject_id: 7)
    monkeypatch.setattr(subjects_module, "subject_key", lambda subject_type, subject_id: 7)
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(*_entry(["A", "B"], ["2026-01-05", "2026-01-03"], 0))
    index_pending(log.path)
    assert log.subject_times("declaration", ["B"]) == {"B": "2026-01-03"}
    assert list(log.subject_items("declaration", ["A"])) == ["A"]


def test_a_deleted_or_foreign_index_file_is_rebuilt_from_the_log(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    log.append(*_entry(["A"], ["2026-01-05"], 0))
    index_pending(path)
    subject_index_path(path).unlink()
    reopened = AuditLog(path)
    assert reopened.subject_time("declaration", "A") == "2026-01-05"
    assert index_pending(path) == 1
    # Another log in the same place: the index of the first one must not hide its rows.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(foreign / source.name)
    fresh = AuditLog(path)
    fresh.append(*_entry(["B"], ["2026-02-01"], 50))
    assert fresh.subject_times("declaration", ["A", "B"]) == {"B": "2026-02-01"}


@pytest.mark.parametrize("rows", [3, 2500])
def test_a_log_with_the_old_inner_index_moves_to_the_index_file(tmp_path, rows) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    ids = [f"D{i}" for i in range(rows)]
    log.append(*_entry(ids, ["2026-01-05"] * rows, 0))
    # The layout before the index file: no key column, the index inside the log.
    subject_index_path(path).unlink()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE audit_items DROP COLUMN subject_key")
        db.execute("CREATE INDEX audit_items_subject ON audit_items (subject_type, subject_id)")
    migrated = AuditLog(path)
    with sqlite3.connect(path) as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "audit_items_subject" not in indexes
    assert _indexed_up_to(migrated) == rows  # indexed before the log serves a look-up
    assert migrated.subject_time("declaration", ids[-1]) == "2026-01-05"
    assert migrated.verify().ok
