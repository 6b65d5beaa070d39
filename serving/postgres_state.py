"""The feedback store and the audit log on PostgreSQL, shared by every serving replica.

The same protocol as the SQLite files in the workspace (:mod:`serving.audit`,
:mod:`serving.feedback`), for a deployment where several ``crisk serve`` processes on several
machines write at once (docs/scaling.md):

- **Feedback**: ``control_id`` is the primary key and inserts are ``ON CONFLICT DO NOTHING``, so
  a result sent to two replicas (a client retrying on another one) is stored once and counted as
  a duplicate by the second. Committed (``synchronous_commit`` on) before the answer leaves.
- **Audit: one hash chain per replica** (``CRISK_SERVE_REPLICA_ID``). Each entry carries its
  chain's name; chains are independent, so replicas never wait for each other. The workers of one
  replica (or two replicas given the same id) append to a chain under a transaction-scoped
  advisory lock on it: a chain is never forked, whatever the ids. Checkpoints are signed per
  chain (the signed message names the chain) and ``verify`` recomputes every chain.

Entries are stored as the exact canonical JSON text they were hashed over (``text``, not
``jsonb``, which would reorder keys).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd

from data_contracts.deployment import LOCK_NAMESPACE, LOCK_STATE_SCHEMA, connect, redacted
from serving.audit import (
    GENESIS,
    AuditSigner,
    AuditVerification,
    canonical_json,
    oldest_first_up_to,
    verify_chain,
    verify_signed,
)
from serving.audit import (
    _chain as _chain_hash,
)
from serving.feedback import stored_frame

__all__ = ["PostgresAuditLog", "PostgresFeedbackStore", "create_state_schema"]

logger = logging.getLogger(__name__)

SCHEMA = "crisk"
_LOCK_NAMESPACE_CHAIN = 0x0C7A17
_SETTING = "CRISK_SERVE_STATE_URL or CRISK_POSTGRES_URL"

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.control_results (
    control_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS control_results_subject ON {SCHEMA}.control_results
    (((payload::jsonb) ->> 'subject_type'), ((payload::jsonb) ->> 'subject_id'));
CREATE TABLE IF NOT EXISTS {SCHEMA}.audit (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX IF NOT EXISTS audit_created_at ON {SCHEMA}.audit (created_at);
CREATE TABLE IF NOT EXISTS {SCHEMA}.audit_items (
    scoring_id TEXT PRIMARY KEY,
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    position INTEGER NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    event_time TEXT
);
CREATE INDEX IF NOT EXISTS audit_items_subject ON {SCHEMA}.audit_items (subject_type, subject_id);
CREATE TABLE IF NOT EXISTS {SCHEMA}.audit_checkpoints (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
"""


def create_state_schema(url: str) -> None:
    """Create the tables once; concurrent first starts wait on an advisory lock, since two
    ``CREATE TABLE IF NOT EXISTS`` at once can still collide in PostgreSQL's catalog."""
    with connect(url, _SETTING) as connection, connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_STATE_SCHEMA)
        )
        connection.execute(_DDL)  # type: ignore[arg-type]  # constant text, no parameters


class _Connections:
    """One autocommit connection per thread (BentoML runs sync endpoints in a thread pool)."""

    def __init__(self, url: str, synchronous: bool = True) -> None:
        self.url = url
        self._synchronous = synchronous
        self._local = threading.local()

    def get(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = connect(self.url, _SETTING, autocommit=True)
            if not self._synchronous:
                # A killed replica loses nothing committed; a crashed database server might
                # lose the last moments (CRISK_SERVE_AUDIT_FSYNC=false).
                connection.execute("SET synchronous_commit TO off")
            self._local.connection = connection
        return connection


class PostgresFeedbackStore:
    """Control results received by any replica, stored once by ``control_id``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = redacted(url)  # named in messages as the SQLite store names its file
        create_state_schema(url)
        self._connections = _Connections(url)

    def add(self, results: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """Store results; returns (accepted, duplicates). Committed before returning."""
        received = datetime.now(UTC).isoformat()
        rows = [
            (r["control_id"], received, json.dumps(r, default=str, sort_keys=True)) for r in results
        ]
        if not rows:
            return 0, 0
        connection = self._connections.get()
        with connection.transaction(), connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {SCHEMA}.control_results (control_id, received_at, payload)"
                " VALUES (%s, %s, %s) ON CONFLICT (control_id) DO NOTHING RETURNING control_id",
                rows,
                returning=True,
            )
            accepted = 0
            while True:
                accepted += len(cursor.fetchall())
                if not cursor.nextset():
                    break
        return accepted, len(rows) - accepted

    def count(self) -> int:
        row = self._connections.get().execute(f"SELECT count(*) FROM {SCHEMA}.control_results")
        return int(row.fetchone()[0])

    def for_subject(self, subject_type: str, subject_id: str) -> list[dict[str, Any]]:
        """Every result received for one declaration or ENS filing, with its receive time."""
        rows = (
            self._connections.get()
            .execute(
                f"SELECT payload, received_at FROM {SCHEMA}.control_results"
                " WHERE (payload::jsonb) ->> 'subject_type' = %s"
                " AND (payload::jsonb) ->> 'subject_id' = %s ORDER BY received_at, control_id",
                (subject_type, subject_id),
            )
            .fetchall()
        )
        return [{**json.loads(payload), "received_at": received} for payload, received in rows]

    def frame(self) -> pd.DataFrame:
        """Every stored control result, as contract columns (see FeedbackStore.frame)."""
        rows = (
            self._connections.get()
            .execute(
                f"SELECT payload, received_at FROM {SCHEMA}.control_results"
                " ORDER BY received_at, control_id"
            )
            .fetchall()
        )
        return stored_frame(rows)


class PostgresAuditLog:
    """The audit log of every replica: one hash chain each, verified together."""

    def __init__(
        self,
        url: str,
        chain: str,
        fsync: bool = True,
        signer: AuditSigner | None = None,
        checkpoint_every: int = 100,
        checkpoint_seconds: float = 30.0,
    ) -> None:
        self.url = url
        self.path = redacted(url)
        self.chain = chain
        self.signer = signer
        self._checkpoint_every = max(1, checkpoint_every)
        self._checkpoint_seconds = checkpoint_seconds
        self._unsigned_since: float | None = None  # when the first unsigned entry was appended
        self._stopped = threading.Event()
        self._checkpointer: threading.Thread | None = None
        create_state_schema(url)
        self._connections = _Connections(url, synchronous=fsync)

    def _start_checkpointer(self) -> None:
        """Sign the head every ``checkpoint_seconds`` while entries arrive, off the request
        path (as the SQLite log does): the last entries before a quiet spell are signed then,
        not at the next request or at shutdown."""
        if self.signer is None or self._checkpointer is not None:
            return

        def run() -> None:
            while not self._stopped.wait(min(1.0, self._checkpoint_seconds)):
                since = self._unsigned_since
                if since is None or time.monotonic() - since < self._checkpoint_seconds:
                    continue
                try:
                    self.checkpoint()
                except Exception as error:  # the server away: the next round tries again
                    logger.warning("audit checkpoint of chain %s: %s", self.chain, error)

        self._checkpointer = threading.Thread(target=run, name="audit-checkpoint", daemon=True)
        self._checkpointer.start()

    def _lock_chain(self, connection: Any) -> None:
        connection.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE_CHAIN, self.chain)
        )

    def _chain_head(self, connection: Any) -> tuple[Any, ...] | None:
        """(seq, hash) of this replica's newest entry, or None for an empty chain."""
        head: tuple[Any, ...] | None = connection.execute(
            f"SELECT seq, hash FROM {SCHEMA}.audit WHERE chain = %s ORDER BY seq DESC LIMIT 1",
            (self.chain,),
        ).fetchone()
        return head

    def append(self, header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> int:
        """Append one request's entry to this replica's chain; returns its sequence number."""
        record_json = canonical_json({**header, "items": list(items)})
        connection = self._connections.get()
        with connection.transaction():
            self._lock_chain(connection)
            last = self._chain_head(connection)
            seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
            digest = _chain_hash(prev, record_json)
            connection.execute(
                f"INSERT INTO {SCHEMA}.audit (chain, seq, created_at, record, prev_hash, hash)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (self.chain, seq, header["created_at"], record_json, prev, digest),
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {SCHEMA}.audit_items (scoring_id, chain, seq, position,"
                    " subject_type, subject_id, event_time) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            i["scoring_id"],
                            self.chain,
                            seq,
                            k,
                            i["subject_type"],
                            i["subject_id"],
                            i.get("event_time"),
                        )
                        for k, i in enumerate(items)
                    ],
                )
            signed = self.signer is not None and (seq == 1 or seq % self._checkpoint_every == 0)
            if signed:
                self._sign(connection, seq, digest)
        if not signed and self._unsigned_since is None:
            self._unsigned_since = time.monotonic()
        self._start_checkpointer()
        return seq

    def _sign(self, connection: Any, seq: int, digest: str) -> None:
        assert self.signer is not None
        created_at = datetime.now(UTC).isoformat()
        signature = self.signer.sign(seq, digest, created_at, self.chain)
        connection.execute(
            f"INSERT INTO {SCHEMA}.audit_checkpoints (chain, seq, hash, created_at, key_id,"
            " signature) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (self.chain, seq, digest, created_at, self.signer.key_id, signature),
        )
        self._unsigned_since = None

    def checkpoint(self) -> int | None:
        """Sign this replica's head if it is not signed yet (at shutdown)."""
        if self.signer is None:
            return None
        connection = self._connections.get()
        with connection.transaction():
            self._lock_chain(connection)
            last = self._chain_head(connection)
            if last is not None:
                self._sign(connection, int(last[0]), str(last[1]))
        return None if last is None else int(last[0])

    def close(self) -> None:
        """Stop the background signing and sign the head (shutdown)."""
        self._stopped.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
        self.checkpoint()

    def chains(self) -> list[str]:
        rows = self._connections.get().execute(
            f"SELECT DISTINCT chain FROM {SCHEMA}.audit ORDER BY chain"
        )
        return [str(r[0]) for r in rows.fetchall()]

    def head(self) -> dict[str, Any]:
        """Every chain's last entry and last signed checkpoint (what an auditor exports)."""
        connection = self._connections.get()
        heads: dict[str, Any] = {}
        for chain in self.chains():
            last = connection.execute(
                f"SELECT seq, hash, created_at FROM {SCHEMA}.audit WHERE chain = %s"
                " ORDER BY seq DESC LIMIT 1",
                (chain,),
            ).fetchone()
            signed = connection.execute(
                f"SELECT seq, hash, created_at, key_id, signature FROM {SCHEMA}.audit_checkpoints"
                " WHERE chain = %s ORDER BY seq DESC LIMIT 1",
                (chain,),
            ).fetchone()
            heads[chain] = {
                "seq": int(last[0]),
                "hash": last[1],
                "created_at": last[2],
                "checkpoint": _checkpoint_dict(signed),
            }
        return {
            "log": self.path,
            "seq": sum(h["seq"] for h in heads.values()),
            "chains": heads,
        }

    def get(self, scoring_id: str) -> dict[str, Any] | None:
        """One scored item as an auditor reads it (see AuditLog.get); ``_audit`` names the chain."""
        connection = self._connections.get()
        found = connection.execute(
            f"SELECT i.chain, i.seq, i.position, a.record, a.hash FROM {SCHEMA}.audit_items i"
            f" JOIN {SCHEMA}.audit a ON a.chain = i.chain AND a.seq = i.seq"
            " WHERE i.scoring_id = %s",
            (scoring_id,),
        ).fetchone()
        if found is None:
            return None
        chain, seq, position, record_json, digest = found
        record = orjson.loads(record_json)
        item = dict(record["items"][position])
        item["input"] = {name: values[position] for name, values in record["inputs"].items()}
        item["features"] = {name: values[position] for name, values in record["features"].items()}
        shared = {k: v for k, v in record.items() if k not in ("items", "inputs", "features")}
        place = {"chain": chain, "seq": int(seq), "position": position, "hash": digest}
        return {**shared, **item, "_audit": place}

    def subject_time(self, subject_type: str, subject_id: str) -> str | None:
        """Earliest lodgement/filing time seen for a subject, by any replica."""
        return self.subject_times(subject_type, [subject_id]).get(subject_id)

    def subject_times(self, subject_type: str, subject_ids: Sequence[str]) -> dict[str, str]:
        """:meth:`subject_time` of several subjects in one query (never scored: left out)."""
        rows = (
            self._connections.get()
            .execute(
                f"SELECT subject_id, min(event_time) FROM {SCHEMA}.audit_items"
                " WHERE subject_type = %s AND subject_id = ANY(%s) GROUP BY subject_id",
                (subject_type, list(dict.fromkeys(subject_ids))),
            )
            .fetchall()
        )
        return {subject_id: time for subject_id, time in rows if time is not None}

    def subject_items(self, subject_type: str, subject_ids: Sequence[str]) -> dict[str, list[Any]]:
        """Every audited item of these subjects, newest entry first, across replicas (``_seq``
        names the entry: ``chain/seq``)."""
        connection = self._connections.get()
        rows = connection.execute(
            f"SELECT i.subject_id, i.chain, i.seq, i.position, a.record FROM {SCHEMA}.audit_items i"
            f" JOIN {SCHEMA}.audit a ON a.chain = i.chain AND a.seq = i.seq"
            " WHERE i.subject_type = %s AND i.subject_id = ANY(%s)"
            " ORDER BY a.created_at DESC, i.chain, i.seq DESC, i.position",
            (subject_type, sorted(set(subject_ids))),
        ).fetchall()
        entries: dict[tuple[str, int], list[Any]] = {}
        found: dict[str, list[Any]] = {}
        for subject_id, chain, seq, position, record_json in rows:
            key = (chain, int(seq))
            if key not in entries:
                entries[key] = orjson.loads(record_json)["items"]
            found.setdefault(subject_id, []).append(
                {**entries[key][position], "_seq": f"{chain}/{seq}"}
            )
        return found

    def entries_since(self, created_at: str, limit: int = 100_000) -> list[dict[str, Any]]:
        """Whole entries of every replica created at or after ``created_at``, newest last."""
        cursor = self._connections.get().execute(
            f"SELECT record FROM {SCHEMA}.audit WHERE created_at >= %s"
            " ORDER BY created_at DESC, chain, seq DESC",
            (created_at,),
        )
        return oldest_first_up_to(cursor, limit)

    def items(self) -> Iterator[dict[str, Any]]:
        """Every scored item of every replica (its response fields and the entry's time)."""
        cursor = self._connections.get().execute(
            f"SELECT created_at, (record::jsonb) -> 'items' FROM {SCHEMA}.audit"
            " ORDER BY created_at, chain, seq"
        )
        for created_at, items in cursor:
            for item in items:
                yield {**item, "created_at": created_at}

    def count(self) -> int:
        """Scored items in the log (every replica)."""
        row = self._connections.get().execute(f"SELECT count(*) FROM {SCHEMA}.audit_items")
        return int(row.fetchone()[0])

    def verify(
        self, public_key: Any = None, expected_head: Mapping[str, Any] | None = None
    ) -> AuditVerification:
        """Recompute every replica's chain and check its signed checkpoints (and, with
        ``expected_head``, that every chain still holds the exported head). A chain of the
        exported head that is gone entirely is a truncation too."""
        expected = dict((expected_head or {}).get("chains", {}))
        chains = self.chains()
        missing = sorted(set(expected) - set(chains))
        if missing:
            return AuditVerification(
                False, 0, problem=f"chain {missing[0]} of the exported head is missing entirely"
            )
        entries = checkpoints = unsigned = 0
        for chain in chains:
            result = self._verify_one(chain, public_key, expected.get(chain))
            if not result.ok:
                return replace(result, problem=f"chain {chain}: {result.problem}")
            entries += result.entries
            checkpoints += result.checkpoints
            unsigned += result.unsigned_tail
        return AuditVerification(
            True, entries, checkpoints=checkpoints, unsigned_tail=unsigned, chains=len(chains)
        )

    def _verify_one(
        self, chain: str, public_key: Any, expected_head: Mapping[str, Any] | None
    ) -> AuditVerification:
        connection = self._connections.get()
        index = connection.execute(
            f"SELECT scoring_id, seq, position FROM {SCHEMA}.audit_items WHERE chain = %s",
            (chain,),
        )
        entry_rows = connection.execute(
            f"SELECT seq, record, prev_hash, hash FROM {SCHEMA}.audit WHERE chain = %s"
            " ORDER BY seq",
            (chain,),
        )
        result = verify_chain(
            ((s, int(q), p) for s, q, p in index.fetchall()),
            ((int(q), r, p, h) for q, r, p, h in entry_rows),
        )
        hashes = {
            int(q): h
            for q, h in connection.execute(
                f"SELECT seq, hash FROM {SCHEMA}.audit WHERE chain = %s", (chain,)
            ).fetchall()
        }
        signed = [
            (int(row[0]), *row[1:])
            for row in connection.execute(
                f"SELECT seq, hash, created_at, key_id, signature FROM {SCHEMA}.audit_checkpoints"
                " WHERE chain = %s ORDER BY seq",
                (chain,),
            ).fetchall()
        ]
        return verify_signed(result, hashes, signed, public_key, expected_head, chain)


def _checkpoint_dict(row: Sequence[Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    seq, digest, created_at, key_id, signature = row
    return {
        "seq": int(seq),
        "hash": digest,
        "created_at": created_at,
        "key_id": key_id,
        "signature": signature,
    }
