"""The append-only audit log of every score, chained by hashes (SQLite).

Each scoring request is one entry: what an auditor needs to reconstruct every decision in it —
the input records, the features used, the scores, channels, reasons, model versions, thresholds
and time. Entry *n* stores ``hash_n = sha256(hash_{n-1} + canonical_json(entry_n))``; editing,
deleting or reordering any entry breaks every hash after it, and :meth:`AuditLog.verify`
reports the first bad one. An index maps each ``scoring_id`` to its entry; it is derived from
the hashed entries, and ``verify`` checks it against them too.

One entry per request rather than per item keeps the log's cost per scored item small (one JSON
document, one hash, one insert) at a thousand items a request. SQLite gives atomic appends
across worker processes (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["GENESIS", "AuditLog", "AuditVerification", "canonical_json", "new_scoring_ids"]

GENESIS = "0" * 64
_LAYOUT_VERSION = 2
_CHECKPOINT_SECONDS = 2.0
logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_items (
    scoring_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    event_time TEXT
);
CREATE INDEX IF NOT EXISTS audit_items_subject ON audit_items (subject_type, subject_id);
"""


def new_scoring_ids(n: int) -> list[str]:
    """``n`` ids of 32 hex digits: 12 of time (milliseconds), then 20 random ones.

    Time first keeps the audit index's inserts at its end (cheap, in order); the random part
    makes the ids unguessable and unique, and is what an item's random draw is read from.
    """
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    text = os.urandom(10 * n).hex()
    return [prefix + text[20 * i : 20 * (i + 1)] for i in range(n)]


def canonical_json(record: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, NaN as null: the exact text the hash is computed over."""
    return orjson.dumps(
        record, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
    ).decode()


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
        self._set_aside_older_layout()
        connection = self._connect()
        connection.executescript(_SCHEMA)
        connection.execute(f"PRAGMA user_version = {_LAYOUT_VERSION}")

    def _set_aside_older_layout(self) -> None:
        """A log written in an older layout is kept, renamed, never rewritten or dropped."""
        if not self.path.exists():
            return
        with sqlite3.connect(self.path) as probe:
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                r[0] for r in probe.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        if version == _LAYOUT_VERSION or "audit" not in tables:
            return
        archived = self.path.with_name(f"{self.path.name}.layout{version}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(f"{archived}{suffix}")
        logger.warning("audit log in an older layout kept as %s; a new log starts", archived)

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            # WAL survives a killed process either way; FULL also survives power loss (slower).
            connection.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'OFF'}")
            # Checkpoints run in a background thread, not inside a request's commit.
            connection.execute("PRAGMA wal_autocheckpoint=0")
            self._local.connection = connection
            self._start_checkpointer()
        return connection

    def _start_checkpointer(self) -> None:
        if getattr(self, "_checkpointer", None) is not None:
            return

        def run() -> None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            while True:
                time.sleep(_CHECKPOINT_SECONDS)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:  # busy or closed: the next round will do it
                    continue

        self._checkpointer = threading.Thread(target=run, name="audit-checkpoint", daemon=True)
        self._checkpointer.start()

    def append(self, header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> int:
        """Append one request's entry atomically; returns its sequence number.

        ``items`` need ``scoring_id``, ``subject_type``, ``subject_id`` and ``event_time``;
        ``header`` holds what they share (time, bundle, thresholds, column names).
        """
        record_json = canonical_json({**header, "items": list(items)})
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            last = connection.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = last[0] if last else GENESIS
            cursor = connection.execute(
                "INSERT INTO audit (created_at, record, prev_hash, hash) VALUES (?,?,?,?)",
                (header["created_at"], record_json, prev, _chain(prev, record_json)),
            )
            seq = int(cursor.lastrowid or 0)
            connection.executemany(
                "INSERT INTO audit_items (scoring_id, seq, position, subject_type, subject_id,"
                " event_time) VALUES (?,?,?,?,?,?)",
                [
                    (
                        i["scoring_id"],
                        seq,
                        k,
                        i["subject_type"],
                        i["subject_id"],
                        i.get("event_time"),
                    )
                    for k, i in enumerate(items)
                ],
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return seq

    def get(self, scoring_id: str) -> dict[str, Any] | None:
        """One scored item as an auditor reads it: named inputs and features, with the entry's
        shared fields and its place in the chain."""
        connection = self._connect()
        found = connection.execute(
            "SELECT seq, position FROM audit_items WHERE scoring_id = ?", (scoring_id,)
        ).fetchone()
        if found is None:
            return None
        seq, position = found
        record_json, digest = connection.execute(
            "SELECT record, hash FROM audit WHERE seq = ?", (seq,)
        ).fetchone()
        record = orjson.loads(record_json)
        item = dict(record["items"][position])
        item["input"] = {name: values[position] for name, values in record["inputs"].items()}
        item["features"] = {name: values[position] for name, values in record["features"].items()}
        shared = {k: v for k, v in record.items() if k not in ("items", "inputs", "features")}
        return {**shared, **item, "_audit": {"seq": seq, "position": position, "hash": digest}}

    def subject_time(self, subject_type: str, subject_id: str) -> str | None:
        """Earliest lodgement/filing time seen for a subject (for feedback checks)."""
        row = (
            self._connect()
            .execute(
                "SELECT min(event_time) FROM audit_items WHERE subject_type = ? AND subject_id = ?",
                (subject_type, subject_id),
            )
            .fetchone()
        )
        return row[0] if row else None

    def verify(self) -> AuditVerification:
        """Recompute the chain; check the index against the entries. Reports the first problem."""
        connection = self._connect()
        prev = GENESIS
        count = 0
        expected_seq = None
        indexed: dict[int, list[tuple[str, int]]] = {}
        for scoring_id, seq, position in connection.execute(
            "SELECT scoring_id, seq, position FROM audit_items"
        ):
            indexed.setdefault(seq, []).append((scoring_id, position))
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
            ids = [item["scoring_id"] for item in orjson.loads(record_json)["items"]]
            if sorted(indexed.get(seq, []), key=lambda p: p[1]) != [
                (s, k) for k, s in enumerate(ids)
            ]:
                return AuditVerification(False, count, seq, "the scoring-id index does not match")
            prev = digest
            expected_seq = seq + 1
        return AuditVerification(True, count)

    def items(self) -> Iterator[dict[str, Any]]:
        """Every scored item (its response fields and the entry's time), oldest first.

        For reports over the log: inputs and features are left in the entries (``get`` reads
        one item whole).
        """
        connection = self._connect()
        for created_at, items_json in connection.execute(
            "SELECT created_at, json_extract(record, '$.items') FROM audit ORDER BY seq"
        ):
            for item in orjson.loads(items_json):
                yield {**item, "created_at": created_at}

    def count(self) -> int:
        """Scored items in the log."""
        return int(self._connect().execute("SELECT count(*) FROM audit_items").fetchone()[0])
