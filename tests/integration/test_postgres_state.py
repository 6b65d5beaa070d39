"""Feedback store and audit log on a real PostgreSQL: several replicas writing at once.

One cluster for the session (``postgres_server``), a database per test here. The replicas are
store objects with their own connections, writing from threads at the same time, as the workers
of two `crisk serve` processes do.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from serving.audit import AuditSigner, load_public_key
from serving.postgres_state import PostgresAuditLog, PostgresFeedbackStore
from tests.services import new_database
from tests.unit.serving.test_audit import _header, _items

pytestmark = pytest.mark.integration


@pytest.fixture
def database(postgres_server: Any, request: pytest.FixtureRequest) -> str:
    return new_database(postgres_server, request.node.name.lower()[:60])


def _result(control_id: str, subject: str = "D1") -> dict[str, Any]:
    return {
        "control_id": control_id,
        "subject_type": "declaration",
        "subject_id": subject,
        "item_number": 1,
        "controlled_at": "2026-01-03T10:00:00+00:00",
        "outcome": "irregular",
    }


def test_feedback_sent_to_two_replicas_at_once_is_stored_once(database: str) -> None:
    replicas = [PostgresFeedbackStore(database) for _ in range(2)]
    batches = [[_result(f"C{i:04d}") for i in range(start, start + 40)] for start in (0, 20)]
    # Each replica receives both overlapping batches (a client retrying on the other one),
    # four writers at once.
    jobs = [(store, batch) for store in replicas for batch in batches]
    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda job: job[0].add(job[1]), jobs))
    assert sum(accepted for accepted, _ in counts) == 60
    assert sum(duplicates for _, duplicates in counts) == 4 * 40 - 60
    assert replicas[0].count() == replicas[1].count() == 60
    frame = replicas[1].frame()
    assert sorted(frame["control_id"]) == [f"C{i:04d}" for i in range(60)]
    # No reported_at sent: known from when the service received it (as the SQLite store does).
    assert frame["reported_at"].notna().all()
    assert len(replicas[0].for_subject("declaration", "D1")) == 60


def _writers(database: str, key: Path, chain: str, every: int = 3) -> PostgresAuditLog:
    return PostgresAuditLog(
        database, chain, fsync=False, signer=AuditSigner(key), checkpoint_every=every
    )


def test_two_replicas_keep_one_chain_each_and_both_verify(database: str, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "audit.pem"
    # Two replicas with two workers each: the workers of a replica share its chain.
    logs = [_writers(database, key, chain) for chain in ("replica-a", "replica-a", "b", "b")]

    def write(job: tuple[int, PostgresAuditLog]) -> None:
        number, log = job
        for k in range(10):
            start = 1000 * number + 10 * k
            log.append(_header(start, 3), _items(start, 3))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, enumerate(logs)))
    reader = PostgresAuditLog(database, "auditor")
    public = load_public_key(key.with_name("audit.pem.pub"))
    result = reader.verify(public)
    assert result.ok, result.problem
    assert result.chains == 2 and result.entries == 40 and reader.count() == 120
    assert result.checkpoints >= 2 * (20 // 3)
    head = reader.head()
    assert {chain: h["seq"] for chain, h in head["chains"].items()} == {"replica-a": 20, "b": 20}
    item = reader.get(f"{1010:032x}")
    assert item is not None and item["_audit"]["chain"] == "replica-a"
    assert reader.subject_time("declaration", "D3001") == "2026-01-01T00:00:00+00:00"
    assert len(reader.subject_items("declaration", ["D0", "D3001"])) == 2
    assert reader.verify(public, head).ok


def _tamper(database: str, statement: str) -> None:
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(statement)  # type: ignore[arg-type]  # a test's constant text


def test_an_edited_or_deleted_entry_of_one_chain_is_detected(database: str, tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    for chain in ("a", "b"):
        log = _writers(database, key, chain, every=100)
        for start in range(0, 12, 2):
            log.append(_header(start, 2), _items(start + (0 if chain == "a" else 500), 2))
        log.close()
    reader = PostgresAuditLog(database, "auditor")
    public = load_public_key(key.with_name("audit.pem.pub"))
    exported = reader.head()
    assert reader.verify(public, exported).ok

    _tamper(database, "UPDATE crisk.audit SET record = replace(record, 'D5', 'D9') "
                      "WHERE chain = 'b' AND seq = 3")  # fmt: skip
    edited = reader.verify(public)
    assert not edited.ok and edited.first_bad_seq == 3 and "chain b" in str(edited.problem)

    _tamper(database, "UPDATE crisk.audit SET record = replace(record, 'D9', 'D5') "
                      "WHERE chain = 'b' AND seq = 3")  # fmt: skip
    _tamper(database, "DELETE FROM crisk.audit_items WHERE chain = 'a' AND seq = 6")
    _tamper(database, "DELETE FROM crisk.audit WHERE chain = 'a' AND seq = 6")
    cut = reader.verify(public, exported)
    assert not cut.ok and "chain a" in str(cut.problem) and "truncated" in str(cut.problem)


def test_the_last_entries_before_a_quiet_spell_are_signed_in_the_background(
    database: str, tmp_path: Path
) -> None:
    key = tmp_path / "keys" / "audit.pem"
    log = PostgresAuditLog(
        database,
        "replica-a",
        fsync=False,
        signer=AuditSigner(key),
        checkpoint_every=100,
        checkpoint_seconds=0.3,
    )
    for start in (
        0,
        10,
        20,
    ):  # seq 1 is signed at once; 2 and 3 by the checkpointer, no append after
        log.append(_header(start, 2), _items(start, 2))
    deadline = time.monotonic() + 10
    while log.head()["chains"]["replica-a"]["checkpoint"]["seq"] != 3:
        assert time.monotonic() < deadline, "the head was not signed in the background"
        time.sleep(0.1)
    result = PostgresAuditLog(database, "auditor").verify(
        load_public_key(key.with_name("audit.pem.pub"))
    )
    assert result.ok and result.unsigned_tail == 0, result
    log.close()
