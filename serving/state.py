"""The service's state stores, chosen by the settings: feedback store and audit log.

Default (``CRISK_PROFILE=local``): SQLite files in the workspace (:class:`serving.feedback.
FeedbackStore`, :class:`serving.audit.AuditLog`), as on one machine. With
``CRISK_SERVE_STATE_URL`` (or ``CRISK_PROFILE=scale`` and ``CRISK_POSTGRES_URL``): PostgreSQL,
shared by every replica (:mod:`serving.postgres_state`). Both implement the protocols below;
nothing else in the service knows which one it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from serving.config import ServingSettings

__all__ = [
    "AuditStore",
    "FeedbackBackend",
    "open_audit_log",
    "open_feedback_store",
    "service_audit_log",
    "service_feedback_store",
]


class FeedbackBackend(Protocol):
    """Durable, idempotent control results (by ``control_id``)."""

    path: Any  # what messages name: a file, or a redacted URL

    def add(self, results: Iterable[Mapping[str, Any]]) -> tuple[int, int]: ...
    def count(self) -> int: ...
    def for_subject(self, subject_type: str, subject_id: str) -> list[dict[str, Any]]: ...
    def frame(self) -> pd.DataFrame: ...


class AuditStore(Protocol):
    """The hash-chained audit log (one chain, or one per replica)."""

    path: Any

    def append(self, header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> int: ...
    def checkpoint(self) -> int | None: ...
    def close(self) -> None: ...
    def head(self) -> dict[str, Any]: ...
    def get(self, scoring_id: str) -> dict[str, Any] | None: ...
    def subject_time(self, subject_type: str, subject_id: str) -> str | None: ...
    def subject_times(self, subject_type: str, subject_ids: Sequence[str]) -> dict[str, str]: ...
    def subject_items(
        self, subject_type: str, subject_ids: Sequence[str]
    ) -> dict[str, list[Any]]: ...
    def entries_since(self, created_at: str, limit: int = ...) -> list[dict[str, Any]]: ...
    def items(self) -> Iterator[dict[str, Any]]: ...
    def count(self) -> int: ...
    def verify(
        self, public_key: Any = ..., expected_head: Mapping[str, Any] | None = ...
    ) -> Any: ...


def open_feedback_store(settings: ServingSettings) -> FeedbackBackend | None:
    """The feedback store for reading; None when it is a workspace file that does not exist
    (nothing was received yet)."""
    if settings.shared_state_url is None and not settings.workspace.feedback_db.exists():
        return None
    return service_feedback_store(settings)


def service_feedback_store(settings: ServingSettings) -> FeedbackBackend:
    """The feedback store the service writes (created if absent)."""
    url = settings.shared_state_url
    if url:
        from serving.postgres_state import PostgresFeedbackStore

        return PostgresFeedbackStore(url)
    from serving.feedback import FeedbackStore

    return FeedbackStore(settings.workspace.feedback_db)


def open_audit_log(settings: ServingSettings) -> AuditStore | None:
    """The audit log for reading and verifying; None for a workspace file that does not exist."""
    url = settings.shared_state_url
    if url:
        from serving.postgres_state import PostgresAuditLog

        return PostgresAuditLog(url, settings.replica_id)
    from serving.audit import AuditLog

    path = _audit_file(settings)
    return AuditLog(path) if path.exists() else None


def service_audit_log(settings: ServingSettings) -> AuditStore:
    """The audit log the service appends to: signed checkpoints, fsync as configured; this
    replica's chain on a shared store."""
    from serving.audit import AuditLog, AuditSigner

    options: dict[str, Any] = {
        "fsync": settings.audit_fsync,
        "signer": AuditSigner(settings.audit_key_path),
        "checkpoint_every": settings.audit_checkpoint_every,
        "checkpoint_seconds": settings.audit_checkpoint_seconds,
    }
    url = settings.shared_state_url
    if url:
        from serving.postgres_state import PostgresAuditLog

        return PostgresAuditLog(url, settings.replica_id, **options)
    return AuditLog(_audit_file(settings), **options)


def _audit_file(settings: ServingSettings) -> Path:
    return settings.workspace.audit_dir / "audit.sqlite"
