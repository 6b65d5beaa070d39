"""Group commit: concurrent requests' audit entries share transactions, in a chain that verifies."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from serving.audit import AuditLog
from serving.audit_writer import AuditWriter


def _entry(subject: str, n: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header = {
        "created_at": "2026-01-02T00:00:00+00:00",
        "subject_type": "declaration",
        "inputs": {"declaration_id": [f"{subject}-{i}" for i in range(n)]},
        "features": {},
    }
    items = [
        {"scoring_id": f"{subject}-{i}".ljust(32, "0"), "subject_type": "declaration",
         "subject_id": f"{subject}-{i}", "event_time": "2026-01-01T00:00:00+00:00"}
        for i in range(n)
    ]  # fmt: skip
    return header, items


def test_append_many_is_one_transaction_in_order(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    assert log.append_many([_entry("A", 2), _entry("B", 1), _entry("C", 3)]) == [1, 2, 3]
    assert log.append(*_entry("D", 1)) == 4
    assert log.verify().ok and log.count() == 7
    assert log.get("B-0".ljust(32, "0"))["subject_id"] == "B-0"
    # One of them breaks the index (a scoring id already logged): none of them is written.
    with pytest.raises(sqlite3.IntegrityError):
        log.append_many([_entry("E", 1), _entry("A", 1)])
    assert log.count() == 7 and log.get("E-0".ljust(32, "0")) is None


def test_concurrent_requests_are_written_before_they_return(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite", fsync=True)
    writer = AuditWriter(log)

    async def requests() -> list[list[int]]:
        return await asyncio.gather(
            *(writer.write([_entry(f"R{k}", 1 + k % 3), _entry(f"S{k}", 1)]) for k in range(20))
        )

    numbers = asyncio.run(requests())
    writer.close()
    assert all(len(n) == 2 and n[1] == n[0] + 1 for n in numbers), "a request's entries in order"
    assert sorted(s for n in numbers for s in n) == list(range(1, 41))
    verification = log.verify()
    assert verification.ok and verification.entries == 40


def test_an_unwritable_entry_fails_its_own_request_only(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(*_entry("OLD", 1))
    writer = AuditWriter(log)

    async def requests() -> list[Any]:
        return await asyncio.gather(
            writer.write([_entry("NEW1", 1)]),
            writer.write([_entry("OLD", 1)]),  # its scoring id is already in the log
            writer.write([_entry("NEW2", 2)]),
            return_exceptions=True,
        )

    first, failed, last = asyncio.run(requests())
    writer.close()
    assert isinstance(failed, sqlite3.IntegrityError)
    assert len(first) == 1 and len(last) == 1
    assert log.verify().ok and log.count() == 4


def test_the_wal_is_truncated_under_steady_writes(tmp_path: Path, monkeypatch) -> None:
    """A passive checkpoint alone never restarts a WAL that is written to all the time."""
    import time

    from serving import audit

    monkeypatch.setattr(audit, "_WAL_CHECKPOINT_SECONDS", 0.05)
    monkeypatch.setattr(audit, "_WAL_TRUNCATE_FRAMES", 50)
    log = AuditLog(tmp_path / "audit.sqlite")
    wal = tmp_path / "audit.sqlite-wal"
    largest = 0
    deadline = time.monotonic() + 1.0
    k = 0
    while time.monotonic() < deadline:
        log.append(*_entry(f"S{k:06d}", 9))  # under 10 items: their padded ids stay apart
        largest = max(largest, wal.stat().st_size)
        k += 1
    time.sleep(0.5)  # a checkpoint round or more with the writer quiet
    # Passive checkpoints alone leave the file at its largest; this one is cut back.
    assert largest > 50 * 4096 and wal.stat().st_size < 50 * 4096
    assert log.verify().ok and log.count() == 9 * k
