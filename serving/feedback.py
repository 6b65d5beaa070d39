"""Durable, idempotent storage of control results sent to ``POST /feedback``.

Acknowledged means on disk: the insert is committed with ``synchronous=FULL`` before the
response is sent, so a ``kill -9`` of the server right after cannot lose it. ``control_id`` is the
primary key: a resend is counted as a duplicate, never stored twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from serving.selection import reconcile

__all__ = ["FeedbackStore", "stored_frame"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS control_results (
    control_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""


def _utc(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            self._local.connection = connection
        return connection

    def add(self, results: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """Store results; returns (accepted, duplicates). Committed before returning."""
        connection = self._connect()
        received = datetime.now(UTC).isoformat()
        accepted = duplicates = 0
        connection.execute("BEGIN IMMEDIATE")
        try:
            for result in results:
                cursor = connection.execute(
                    "INSERT OR IGNORE INTO control_results (control_id, received_at, payload) "
                    "VALUES (?, ?, ?)",
                    (
                        result["control_id"],
                        received,
                        json.dumps(result, default=str, sort_keys=True),
                    ),
                )
                if cursor.rowcount == 1:
                    accepted += 1
                else:
                    duplicates += 1
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return accepted, duplicates

    def count(self) -> int:
        return int(self._connect().execute("SELECT count(*) FROM control_results").fetchone()[0])

    def for_subject(self, subject_type: str, subject_id: str) -> list[dict[str, Any]]:
        """Every result received for one declaration or ENS filing, with its receive time.

        For decision pages: a look-up by an auditor, so a scan of the payloads is cheap enough.
        """
        rows = (
            self._connect()
            .execute(
                "SELECT payload, received_at FROM control_results"
                " WHERE json_extract(payload, '$.subject_type') = ?"
                " AND json_extract(payload, '$.subject_id') = ? ORDER BY received_at, control_id",
                (subject_type, subject_id),
            )
            .fetchall()
        )
        return [{**json.loads(payload), "received_at": received} for payload, received in rows]

    def frame(self) -> pd.DataFrame:
        """Every stored control result, as contract columns (for `crisk retrain`).

        A result sent without ``reported_at`` became known when the service received it
        (spec §2): that time is filled in, so features never see it earlier. A result whose
        selection the audit log contradicted goes out with the audit's selection (see
        :mod:`serving.selection`; the stored payload keeps the claim as sent). A receive time
        before ``controlled_at`` (the sender's clock ahead of ours, or a replayed world whose
        calendar runs ahead of the wall clock) is raised to ``controlled_at``: an outcome is
        never known before its control.
        """
        rows = (
            self._connect()
            .execute(
                "SELECT payload, received_at FROM control_results ORDER BY received_at, control_id"
            )
            .fetchall()
        )
        return stored_frame(rows)


def stored_frame(rows: Iterable[tuple[str, str]]) -> pd.DataFrame:
    """Stored (payload, received_at) rows as contract columns (see :meth:`FeedbackStore.frame`;
    the PostgreSQL store shares it)."""
    records = []
    for payload, received_at in rows:
        stored = json.loads(payload)
        record = reconcile(stored, stored.pop("_selection_check", None))
        if not record.get("reported_at"):
            controlled = record.get("controlled_at")
            record["reported_at"] = (
                controlled if controlled and _utc(controlled) > _utc(received_at) else received_at
            )
        records.append(record)
    return pd.DataFrame(records)
