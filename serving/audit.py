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

A chain alone proves nothing against someone who can write the file: they can edit an entry and
recompute every later hash, or cut entries off the end. So the service signs **checkpoints**
(Ed25519, :class:`AuditSigner`, with a key kept outside the log's directory): the first entry,
every ``checkpoint_every``-th, every ``checkpoint_seconds`` while entries arrive, and the head at
shutdown. A checkpoint states "entry *seq* has hash *h*"; :meth:`AuditLog.verify` checks every
signature with the public key and that the entries still have those hashes, which a recomputed,
shortened or renumbered chain cannot satisfy without the private key. :meth:`AuditLog.head`
gives the head to export (``crisk audit head``) so that an auditor holding it can also detect a
truncation of entries written after the last checkpoint.

Durability: an answered score is in the log. The entry is committed before the response is sent
and, with ``fsync`` (``CRISK_SERVE_AUDIT_FSYNC``, on by default), SQLite syncs the write-ahead log
at every commit (``synchronous=FULL``), so the entry also survives a power loss; off, it survives
a killed process but not a machine crash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from data_contracts.workspace import create_private_file
from serving.audit_subjects import (
    attach_subject_index,
    create_subject_index,
    index_pending,
    subject_key,
)

__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditSigner",
    "AuditVerification",
    "canonical_json",
    "load_public_key",
    "new_scoring_ids",
    "oldest_first_up_to",
    "verify_chain",
    "verify_signed",
]

GENESIS = "0" * 64
_LAYOUT_VERSION = 2
_WAL_CHECKPOINT_SECONDS = 2.0
# Under steady load a passive checkpoint never catches up with the writer, so the WAL is never
# restarted and grows without bound (over a gigabyte in minutes of benchmark load), and every
# page read searches a longer WAL index. Past this many frames (64 MB of 4 KB pages) the
# checkpoint holds new writes back for the little a passive one left and truncates the WAL.
_WAL_TRUNCATE_FRAMES = 16_384
_CHECKPOINT_FIELDS = ("seq", "hash", "created_at", "key_id", "signature")
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
    event_time TEXT,
    subject_key INTEGER
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
"""


def new_scoring_ids(n: int) -> list[str]:
    """``n`` ids of 32 hex digits: 12 of time (milliseconds), then 20 random ones.

    Time first keeps the audit index's inserts at its end (cheap, in order); the random part
    makes the ids unguessable and unique, and is what an item's random draw is read from.
    """
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    text = os.urandom(10 * n).hex()
    return [prefix + text[20 * i : 20 * (i + 1)] for i in range(n)]


# An entry's items in one statement: SQLite reads them from one JSON array. A row at a time
# (executemany), the writer thread went back to Python, and took the interpreter lock from the
# request thread, between every two rows.
_INSERT_ITEMS = (
    "INSERT INTO audit_items"
    " (scoring_id, seq, position, subject_type, subject_id, event_time, subject_key)"
    " SELECT value ->> 0, ?, key, value ->> 1, value ->> 2, value ->> 3, value ->> 4"
    " FROM json_each(?)"
)
# The audited items of some subjects of one type (``?1``; ``?2``: a JSON array of [id, key]):
# through the subject index up to its mark, and by a scan of the rows written after it
# (serving.audit_subjects). Both branches end on the exact type and id (keys may collide).
_SUBJECT_ITEMS = """
WITH wanted(subject_id, subject_key) AS (SELECT value ->> 0, value ->> 1 FROM json_each(?2)),
found(item) AS (
    SELECT s.item FROM wanted w JOIN subjects.subjects s ON s.subject_key = w.subject_key
    UNION ALL
    SELECT rowid FROM audit_items
        WHERE rowid > (SELECT up_to FROM subjects.indexed) AND subject_type = ?1
)
SELECT i.subject_id, i.seq, i.position, i.event_time FROM found f
    JOIN audit_items i ON i.rowid = f.item
    WHERE i.subject_type = ?1 AND i.subject_id IN (SELECT subject_id FROM wanted)
    ORDER BY i.seq DESC, i.position
"""


def _item_rows(items: Sequence[Mapping[str, Any]]) -> str:
    """The audit index rows of an entry's items, as the JSON array ``_INSERT_ITEMS`` reads."""
    rows = [
        (
            i["scoring_id"],
            i["subject_type"],
            i["subject_id"],
            i.get("event_time"),
            subject_key(i["subject_type"], i["subject_id"]),
        )
        for i in items
    ]
    return orjson.dumps(rows, default=str).decode()


def canonical_json(record: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, NaN as null: the exact text the hash is computed over."""
    return orjson.dumps(
        record, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
    ).decode()


def _chain(prev_hash: str, record_json: str) -> str:
    return hashlib.sha256((prev_hash + record_json).encode()).hexdigest()


def _checkpoint_message(
    seq: int, digest: str, created_at: str, key_id: str, chain: str | None = None
) -> bytes:
    # A shared log's checkpoints also name their chain (one chain per replica).
    scope = "" if chain is None else f"{chain}|"
    return f"crisk-audit-checkpoint|{scope}{seq}|{digest}|{created_at}|{key_id}".encode()


def _key_id(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(path: Path) -> Any:
    """An Ed25519 public key from a PEM file (the ``.pub`` beside the signing key, or a copy)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


class AuditSigner:
    """The service's checkpoint key: Ed25519, a PEM file created 0600 on first use.

    The public key is written beside it (``<file>.pub``) for ``crisk audit verify``; an auditor
    should keep a copy of it (and of exported heads) outside the machine.
    """

    def __init__(self, key_file: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not key_file.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            create_private_file(key_file, pem)
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{key_file}: not an Ed25519 private key")
        self._key = key
        self.public_key = key.public_key()
        self.key_id = _key_id(self.public_key)
        public_file = key_file.with_name(key_file.name + ".pub")
        public_pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if not public_file.exists() or public_file.read_bytes() != public_pem:
            public_file.write_bytes(public_pem)
        self.public_file = public_file

    def sign(self, seq: int, digest: str, created_at: str, chain: str | None = None) -> str:
        message = _checkpoint_message(seq, digest, created_at, self.key_id, chain)
        return self._key.sign(message).hex()


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints: int = 0
    unsigned_tail: int = 0  # entries after the last signed checkpoint
    last_seq: int = 0
    last_hash: str = GENESIS
    chains: int = 1  # hash chains checked (one per replica on a shared store)


def oldest_first_up_to(rows: Iterable[tuple[str]], limit: int) -> list[dict[str, Any]]:
    """Entries from ``rows`` of JSON records given newest first, until they hold ``limit``
    scored items; returned oldest first (the order entries_since promises)."""
    entries: list[dict[str, Any]] = []
    items = 0
    for (record_json,) in rows:
        record = orjson.loads(record_json)
        entries.append(record)
        items += len(record["items"])
        if items >= limit:
            break
    return entries[::-1]


class AuditLog:
    """Append, look up and verify audit entries in ``path``."""

    def __init__(
        self,
        path: Path,
        fsync: bool = False,
        signer: AuditSigner | None = None,
        checkpoint_every: int = 100,
        checkpoint_seconds: float = 30.0,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._fsync = fsync
        self.signer = signer
        self._checkpoint_every = max(1, checkpoint_every)
        self._checkpoint_seconds = checkpoint_seconds
        self._set_aside_older_layout()
        connection = self._connect()
        connection.executescript(_SCHEMA)
        connection.execute(f"PRAGMA user_version = {_LAYOUT_VERSION}")
        self._move_to_subject_index(connection)

    def _move_to_subject_index(self, connection: sqlite3.Connection) -> None:
        """The subject index file (serving.audit_subjects); a log that still has the index it
        used to keep inside gets the key column, its rows indexed, and that index dropped."""
        columns = {row[1] for row in connection.execute("PRAGMA table_info(audit_items)")}
        if "subject_key" not in columns:
            connection.execute("ALTER TABLE audit_items ADD COLUMN subject_key INTEGER")
        create_subject_index(self.path)
        old = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'audit_items_subject'"
        ).fetchone()
        if old is not None:
            while index_pending(self.path):
                pass
            connection.execute("DROP INDEX IF EXISTS audit_items_subject")
            logger.info("audit log %s: subject index moved to its own file", self.path)

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

    def _lookup(self) -> sqlite3.Connection:
        """This thread's connection for subject lookups: the log with the subject index
        attached (never used to write, so the writer's transactions do not lock the index)."""
        connection = getattr(self._local, "lookup", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            attach_subject_index(connection, self.path)
            self._local.lookup = connection
        return connection

    def _start_checkpointer(self) -> None:
        if getattr(self, "_checkpointer", None) is not None:
            return

        def run() -> None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            signed_at = time.monotonic()
            while True:
                time.sleep(_WAL_CHECKPOINT_SECONDS)
                try:
                    _busy, frames, _done = connection.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
                    if frames > _WAL_TRUNCATE_FRAMES:
                        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    index_pending(self.path)
                    if time.monotonic() - signed_at >= self._checkpoint_seconds:
                        signed_at = time.monotonic()
                        self.checkpoint()
                except sqlite3.Error:  # busy or closed: the next round will do it
                    continue

        self._checkpointer = threading.Thread(target=run, name="audit-checkpoint", daemon=True)
        self._checkpointer.start()

    def append(self, header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> int:
        """Append one request's entry atomically; returns its sequence number.

        ``items`` need ``scoring_id``, ``subject_type``, ``subject_id`` and ``event_time``;
        ``header`` holds what they share (time, bundle, thresholds, column names).
        """
        return self.append_many([(header, items)])[0]

    def append_many(
        self, entries: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]
    ) -> list[int]:
        """Append several entries (``(header, items)`` as for :meth:`append`, e.g. those of
        concurrent requests) in order, in one transaction: one commit and one sync for all.
        Returns their sequence numbers; nothing is written if any of them fails."""
        # Serialised before the write lock is taken: the lock is held for the inserts only.
        records = [
            (header, canonical_json({**header, "items": list(items)}), _item_rows(items))
            for header, items in entries
        ]
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            last = connection.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = last[0] if last else GENESIS
            numbers = []
            for header, record_json, item_rows in records:
                digest = _chain(prev, record_json)
                cursor = connection.execute(
                    "INSERT INTO audit (created_at, record, prev_hash, hash) VALUES (?,?,?,?)",
                    (header["created_at"], record_json, prev, digest),
                )
                seq = int(cursor.lastrowid or 0)
                if self.signer is not None and (seq == 1 or seq % self._checkpoint_every == 0):
                    self._sign(connection, seq, digest)
                connection.execute(_INSERT_ITEMS, (seq, item_rows))
                numbers.append(seq)
                prev = digest
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return numbers

    def _sign(self, connection: sqlite3.Connection, seq: int, digest: str) -> None:
        assert self.signer is not None
        created_at = datetime.now(UTC).isoformat()
        signature = self.signer.sign(seq, digest, created_at)
        connection.execute(
            "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, created_at, key_id, signature)"
            " VALUES (?,?,?,?,?)",
            (seq, digest, created_at, self.signer.key_id, signature),
        )

    def checkpoint(self) -> int | None:
        """Sign the current head if it is not signed yet (at shutdown, and now and then)."""
        if self.signer is None:
            return None
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            last = connection.execute(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if last is not None:
                self._sign(connection, int(last[0]), str(last[1]))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return None if last is None else int(last[0])

    def head(self) -> dict[str, Any]:
        """The last entry and the last signed checkpoint: what an auditor exports and keeps."""
        connection = self._connect()
        last = connection.execute(
            "SELECT seq, hash, created_at FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        signed = connection.execute(
            "SELECT seq, hash, created_at, key_id, signature FROM audit_checkpoints"
            " ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return {
            "log": str(self.path),
            "seq": int(last[0]) if last else 0,
            "hash": last[1] if last else GENESIS,
            "created_at": last[2] if last else None,
            "checkpoint": dict(zip(_CHECKPOINT_FIELDS, signed, strict=True)) if signed else None,
        }

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
        return self.subject_times(subject_type, [subject_id]).get(subject_id)

    def subject_times(self, subject_type: str, subject_ids: Sequence[str]) -> dict[str, str]:
        """:meth:`subject_time` of several subjects in one look-up (those never scored are
        left out)."""
        times: dict[str, str] = {}
        for subject_id, _seq, _position, event_time in self._subject_rows(
            subject_type, subject_ids
        ):
            if event_time is not None and (
                subject_id not in times or event_time < times[subject_id]
            ):
                times[subject_id] = event_time
        return times

    def _subject_rows(
        self, subject_type: str, subject_ids: Sequence[str]
    ) -> list[tuple[str, int, int, str | None]]:
        wanted = [(s, subject_key(subject_type, s)) for s in dict.fromkeys(subject_ids)]
        if not wanted:
            return []
        return (
            self._lookup()
            .execute(_SUBJECT_ITEMS, (subject_type, orjson.dumps(wanted).decode()))
            .fetchall()
        )

    def subject_items(self, subject_type: str, subject_ids: Sequence[str]) -> dict[str, list[Any]]:
        """Every audited item of these subjects, newest entry first: ``subject_id ->
        [item, ...]`` (each the item as scored: scoring id, item number, channel, selection,
        and ``_seq``, its entry's place in the chain)."""
        connection = self._connect()
        entries: dict[int, list[Any]] = {}
        found: dict[str, list[Any]] = {}
        for subject_id, seq, position, _time in self._subject_rows(subject_type, subject_ids):
            if seq not in entries:
                (record_json,) = connection.execute(
                    "SELECT record FROM audit WHERE seq = ?", (seq,)
                ).fetchone()
                entries[seq] = orjson.loads(record_json)["items"]
            found.setdefault(subject_id, []).append({**entries[seq][position], "_seq": seq})
        return found

    def entries_since(self, created_at: str, limit: int = 100_000) -> list[dict[str, Any]]:
        """Whole entries (header, items, inputs and features by column) created at or after
        ``created_at`` (ISO time), newest last; at most ``limit`` scored items in all."""
        connection = self._connect()
        rows = connection.execute(
            "SELECT record FROM audit WHERE created_at >= ? ORDER BY seq DESC", (created_at,)
        )
        return oldest_first_up_to(rows, limit)

    def verify(
        self, public_key: Any = None, expected_head: Mapping[str, Any] | None = None
    ) -> AuditVerification:
        """Recompute the chain; check the index, the signed checkpoints (with ``public_key``)
        and an exported head. Reports the first problem."""
        connection = self._connect()
        chain = verify_chain(
            connection.execute("SELECT scoring_id, seq, position FROM audit_items"),
            connection.execute("SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq"),
        )
        if not chain.ok:
            return chain
        hashes = dict(connection.execute("SELECT seq, hash FROM audit").fetchall())
        checkpoints = connection.execute(
            "SELECT seq, hash, created_at, key_id, signature FROM audit_checkpoints ORDER BY seq"
        ).fetchall()
        return verify_signed(chain, hashes, checkpoints, public_key, expected_head)

    def close(self) -> None:
        """Sign the head (shutdown)."""
        self.checkpoint()

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


def verify_chain(
    index_rows: Iterable[tuple[str, int, int]], entry_rows: Iterable[tuple[int, str, str, str]]
) -> AuditVerification:
    """Recompute one hash chain: ``index_rows`` are (scoring_id, seq, position), ``entry_rows``
    (seq, record, prev_hash, hash) in order of seq. Reports the first bad entry."""
    prev = GENESIS
    count = 0
    expected_seq = None
    last_seq = 0
    indexed: dict[int, list[tuple[str, int]]] = {}
    for scoring_id, seq, position in index_rows:
        indexed.setdefault(seq, []).append((scoring_id, position))
    for seq, record_json, prev_hash, digest in entry_rows:
        count += 1
        if expected_seq is not None and seq != expected_seq:
            return AuditVerification(False, count, seq, f"entry {expected_seq} is missing")
        if prev_hash != prev:
            return AuditVerification(False, count, seq, "chain broken: previous hash differs")
        if _chain(prev, record_json) != digest:
            return AuditVerification(False, count, seq, "entry content does not match its hash")
        ids = [item["scoring_id"] for item in orjson.loads(record_json)["items"]]
        if sorted(indexed.get(seq, []), key=lambda p: p[1]) != [(s, k) for k, s in enumerate(ids)]:
            return AuditVerification(False, count, seq, "the scoring-id index does not match")
        prev = digest
        expected_seq = seq + 1
        last_seq = seq
    return AuditVerification(True, count, last_seq=last_seq, last_hash=prev)


def verify_signed(
    chain: AuditVerification,
    hashes: Mapping[int, str],
    checkpoints: Sequence[tuple[Any, ...]],
    public_key: Any,
    expected_head: Mapping[str, Any] | None,
    chain_id: str | None = None,
) -> AuditVerification:
    """A recomputed chain checked against its signed checkpoints and an exported head."""
    if not chain.ok:
        return chain
    found = _check_checkpoints(checkpoints, hashes, chain, public_key, chain_id)
    if found is not None:
        return found
    if expected_head is not None:
        seq, digest = int(expected_head["seq"]), str(expected_head["hash"])
        if seq and hashes.get(seq) != digest:
            problem = (
                f"entry {seq} of the exported head is missing: the log was truncated"
                if seq not in hashes
                else f"entry {seq} differs from the exported head: the chain was rewritten"
            )
            return replace(chain, ok=False, first_bad_seq=seq, problem=problem)
    last_signed = checkpoints[-1][0] if checkpoints else 0
    return replace(chain, checkpoints=len(checkpoints), unsigned_tail=chain.last_seq - last_signed)


def _check_checkpoints(
    checkpoints: Sequence[tuple[Any, ...]],
    hashes: Mapping[int, str],
    chain: AuditVerification,
    public_key: Any,
    chain_id: str | None = None,
) -> AuditVerification | None:
    """The first checkpoint the log or its signature contradicts, as a failed verification."""
    from cryptography.exceptions import InvalidSignature

    if public_key is not None and chain.entries and not checkpoints:
        return replace(
            chain,
            ok=False,
            problem="no signed checkpoint: nothing shows the chain was not recomputed",
        )
    for seq, digest, created_at, key_id, signature in checkpoints:
        if seq not in hashes:
            return replace(
                chain,
                ok=False,
                first_bad_seq=seq,
                problem=f"entry {seq} of a signed checkpoint is missing: the log was truncated",
            )
        if hashes[seq] != digest:
            return replace(
                chain,
                ok=False,
                first_bad_seq=seq,
                problem=f"entry {seq} differs from its signed checkpoint: the chain was recomputed",
            )
        if public_key is None:
            continue
        if key_id != _key_id(public_key):
            return replace(
                chain,
                ok=False,
                first_bad_seq=seq,
                problem=f"checkpoint {seq} was signed by another key ({key_id})",
            )
        try:
            public_key.verify(
                bytes.fromhex(signature),
                _checkpoint_message(seq, digest, created_at, key_id, chain_id),
            )
        except (InvalidSignature, ValueError):
            return replace(
                chain,
                ok=False,
                first_bad_seq=seq,
                problem=f"checkpoint {seq} has an invalid signature",
            )
    return None
