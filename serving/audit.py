"""The append-only audit log of every score, chained by hashes (SQLite).

Each entry stores what an auditor needs to reconstruct a decision: the input record, the
features used, the scores, channel, reasons, model versions and time. Entry *n* stores
``hash_n = sha256(hash_{n-1} + canonical_json(entry_n))``; editing, deleting or reordering any
entry breaks every hash after it, which :meth:`AuditLog.verify` reports with the first bad entry.
SQLite gives atomic appends across worker processes (``BEGIN IMMEDIATE``) and an index for
look-ups by ``scoring_id``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GENESIS", "AuditLog", "AuditVerification", "canonical_json"]

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    scoring_id TEXT NOT NULL UNIQUE,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    item_number INTEGER,
    event_time TEXT,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject_type, subject_id);
"""


def canonical_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def _chain(prev_hash: str, record_json: str) -> str:
    return hashlib.sha256((prev_hash + record_json).encode()).hexdigest()


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


class AuditLog:
    """Append, look up and verify audit entries in ``path``."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._fsync = fsync
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'NORMAL'}")
            self._local.connection = connection
        return connection

    def append(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Append atomically; entries need scoring_id, subject_type, subject_id, created_at."""
        connection = self._connect()
        rows = list(entries)
        if not rows:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            last = connection.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = last[0] if last else GENESIS
            values = []
            for entry in rows:
                record_json = canonical_json(entry)
                digest = _chain(prev, record_json)
                values.append(
                    (
                        entry["scoring_id"],
                        entry["subject_type"],
                        entry["subject_id"],
                        entry.get("item_number"),
                        entry.get("event_time"),
                        entry["created_at"],
                        record_json,
                        prev,
                        digest,
                    )
                )
                prev = digest
            connection.executemany(
                "INSERT INTO audit (scoring_id, subject_type, subject_id, item_number, event_time,"
                " created_at, record, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)",
                values,
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def get(self, scoring_id: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute("SELECT seq, record, hash FROM audit WHERE scoring_id = ?", (scoring_id,))
            .fetchone()
        )
        if row is None:
            return None
        record = json.loads(row[1])
        record["_audit"] = {"seq": row[0], "hash": row[2]}
        return record

    def subject_time(self, subject_type: str, subject_id: str) -> str | None:
        """Earliest lodgement/filing time seen for a subject (for feedback checks)."""
        row = (
            self._connect()
            .execute(
                "SELECT min(event_time) FROM audit WHERE subject_type = ? AND subject_id = ?",
                (subject_type, subject_id),
            )
            .fetchone()
        )
        return row[0] if row else None

    def verify(self) -> AuditVerification:
        """Recompute the whole chain; report the first entry whose hash does not hold."""
        connection = self._connect()
        prev = GENESIS
        count = 0
        expected_seq = None
        for seq, record_json, prev_hash, digest in connection.execute(
            "SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq"
        ):
            count += 1
            if expected_seq is not None and seq != expected_seq:
                return AuditVerification(False, count, seq, f"entry {expected_seq} is missing")
            if prev_hash != prev:
                return AuditVerification(False, count, seq, "chain broken: previous hash differs")
            if _chain(prev, record_json) != digest:
                return AuditVerification(False, count, seq, "entry content does not match its hash")
            prev = digest
            expected_seq = seq + 1
        return AuditVerification(True, count)

    def count(self) -> int:
        return int(self._connect().execute("SELECT count(*) FROM audit").fetchone()[0])
