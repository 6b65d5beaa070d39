"""The audit log's subject index, kept in its own file and brought up to date in bulk.

``/feedback`` looks up what was scored for a subject (``subject_time``, the selection checks).
An index on ``(subject_type, subject_id)`` inside the log cost more than everything else the
writer does: subject ids arrive in no order, so each of an entry's hundred index rows landed on
a different page of the B-tree, and every commit wrote (and synced) a hundred more pages than
the entry itself (measured: 46.8 µs of the writer's CPU per scored item with it, 17.6 µs with
this file, at 300,000 items: ``benchmarks/audit_index.py``).

So the log's writer only appends rows in order, each carrying a 64-bit ``subject_key`` (a hash
of the subject), and this index maps keys to those rows' ``rowid``:

- :func:`index_pending` adds every row written since the last time, sorted, in one transaction
  of this file (the service's checkpoint thread calls it every two seconds). Thousands of rows
  sorted into the B-tree share its pages, and the log's writer never waits for it (another
  file, another lock).
- A lookup reads the index for the rows up to its high-water mark ``indexed.up_to`` and scans
  the log's rows after it (a few seconds of writes), in one statement. Rows of the log are
  committed in ``rowid`` order (one writer at a time), so no row is in neither part, and the
  exact ``subject_type`` and ``subject_id`` are compared, so a hash collision finds nothing it
  should not.

The file is derived from the log: deleted, it is rebuilt from the log's rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "attach_subject_index",
    "create_subject_index",
    "index_pending",
    "subject_index_path",
    "subject_key",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subjects (
    subject_key INTEGER NOT NULL,
    item INTEGER NOT NULL,
    PRIMARY KEY (subject_key, item)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS indexed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    up_to INTEGER NOT NULL,
    log_first_hash TEXT
);
INSERT OR IGNORE INTO indexed VALUES (1, 0, NULL);
"""
_KEY_FUNCTION = "crisk_subject_key"


def subject_key(subject_type: str, subject_id: str) -> int:
    """A subject's 64-bit key (signed, as SQLite stores integers)."""
    digest = hashlib.blake2b(f"{subject_type}\x1f{subject_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def subject_index_path(log_path: Path) -> Path:
    """``audit.sqlite`` -> ``audit.subjects.sqlite`` beside it."""
    return log_path.with_name(f"{log_path.stem}.subjects.sqlite")


@contextlib.contextmanager
def _index_transaction(log_path: Path) -> Iterator[sqlite3.Connection]:
    """A transaction on the index file with the log attached as ``log`` (only read). Its first
    statement takes the file's write lock, so two workers at it take turns."""
    db = sqlite3.connect(subject_index_path(log_path), timeout=30, isolation_level=None)
    try:
        db.create_function(_KEY_FUNCTION, 2, subject_key, deterministic=True)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        db.execute("ATTACH DATABASE ? AS log", (str(log_path),))
        db.execute("BEGIN")
        try:
            db.execute("UPDATE indexed SET up_to = up_to")  # this file's write lock, first
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.close()


def create_subject_index(log_path: Path) -> None:
    """The index file, empty (everything in the log still to index) if it did not exist, or
    emptied if it is not this log's (another log in its place, or one restored from an older
    copy: its mark is past the log's last row, or the log's first entry is not the same)."""
    with _index_transaction(log_path) as db:
        _empty_if_stale(db)


def _empty_if_stale(db: sqlite3.Connection) -> None:
    up_to, indexed_first = db.execute("SELECT up_to, log_first_hash FROM indexed").fetchone()
    (last,) = db.execute("SELECT coalesce(max(rowid), 0) FROM log.audit_items").fetchone()
    first = db.execute("SELECT hash FROM log.audit WHERE seq = 1").fetchone()
    first_hash = first[0] if first else None
    if up_to > last or (indexed_first is not None and indexed_first != first_hash):
        db.execute("DELETE FROM subjects")
        db.execute("UPDATE indexed SET up_to = 0, log_first_hash = ?", (first_hash,))


def attach_subject_index(connection: sqlite3.Connection, log_path: Path) -> None:
    """Make the index readable as ``subjects`` on a connection to the log (lookups only: the
    log's writer keeps its own connection, or its ``BEGIN IMMEDIATE`` would lock this file)."""
    connection.execute("ATTACH DATABASE ? AS subjects", (str(subject_index_path(log_path)),))


def index_pending(log_path: Path, limit: int = 200_000) -> int:
    """Index up to ``limit`` rows written to the log since the mark; returns how many.

    One transaction on the index file (:func:`_index_transaction`). Rows of an older log,
    written before the key existed, are keyed here.
    """
    with _index_transaction(log_path) as db:
        (start,) = db.execute("SELECT up_to FROM indexed").fetchone()
        (last,) = db.execute("SELECT coalesce(max(rowid), 0) FROM log.audit_items").fetchone()
        end = min(int(last), int(start) + limit)
        if end > start:
            db.execute(
                "INSERT OR IGNORE INTO subjects (subject_key, item)"
                f" SELECT coalesce(subject_key, {_KEY_FUNCTION}(subject_type, subject_id)),"
                " rowid FROM log.audit_items WHERE rowid > ? AND rowid <= ? ORDER BY 1, 2",
                (start, end),
            )
            db.execute(
                "UPDATE indexed SET up_to = ?, log_first_hash = coalesce(log_first_hash,"
                " (SELECT hash FROM log.audit WHERE seq = 1))",
                (end,),
            )
    return max(0, end - int(start))
