"""Bringing record files into the workspace: validate, then merge into the data store.

The data store (``CRISK_HOME/data``) holds the current version of every valid record, one
Parquet file per kind. A newer version of a record replaces the stored one; what it replaced and
every quarantined row are kept under ``CRISK_HOME/quarantine`` with their reasons.

Two ingests at once, or one killed mid-write, never lose or corrupt stored records: the merge
(read what is stored, add, write) runs under an exclusive lock on the data store, and every file
is written to a temporary name, synced and renamed over the old one, so a reader sees the old
file or the new one, never half of one. History (quarantine) is written before the data it
explains: a crash between the two repeats history, it never loses it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.definitions import contract_for
from data_contracts.io import read_records
from data_contracts.progress import Progress, quiet
from data_contracts.validate import ValidationResult, validate_frame
from data_contracts.workspace import Workspace

__all__ = [
    "IngestResult",
    "data_file",
    "data_store_lock",
    "ingest_file",
    "ingest_frame",
    "subject_times",
    "write_parquet_atomically",
]

logger = logging.getLogger(__name__)

_FILES = {"declarations": "declarations", "ens": "ens", "control-results": "control_results"}


def data_file(workspace: Workspace, kind: str) -> Path:
    return workspace.data_dir / f"{_FILES[kind]}.parquet"


@contextmanager
def data_store_lock(workspace: Workspace) -> Iterator[None]:
    """Hold the data store's exclusive lock (other ingests wait; readers never need it)."""
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    with (workspace.data_dir / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            # Writers hold the lock while they write: a temporary file found now was left by a
            # writer that died mid-write. It is garbage, never data.
            for directory in (workspace.data_dir, workspace.quarantine_dir):
                for leftover in directory.glob(".*.tmp"):
                    leftover.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_parquet_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Replace ``path`` by ``frame`` in one step: the old file or the new one, never a mix."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(temporary, index=False)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class IngestResult:
    kind: str
    n_input: int
    n_valid: int
    n_quarantined: int
    n_replaced: int
    data_path: Path
    n_unchanged: int = 0  # valid rows identical to the stored version: nothing to do

    @property
    def exit_code(self) -> int:
        """As ``crisk validate``: 0 every row stored, 1 some quarantined."""
        return 1 if self.n_quarantined else 0


def subject_times(workspace: Workspace) -> dict[tuple[str, str], pd.Timestamp]:
    """Earliest lodgement/filing time of every stored subject (for control-result checks)."""
    times: dict[tuple[str, str], pd.Timestamp] = {}
    for kind, subject, column, key in (
        ("declarations", "declaration", "lodged_at", "declaration_id"),
        ("ens", "ens", "filed_at", "ens_id"),
    ):
        path = data_file(workspace, kind)
        if path.exists():
            frame = pd.read_parquet(path, columns=[key, column]).groupby(key)[column].min()
            times.update({(subject, str(k)): v for k, v in frame.items()})
    return times


def _append_quarantine(workspace: Workspace, kind: str, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    path = workspace.quarantine_dir / f"{_FILES[kind]}.parquet"
    rows = rows.assign(quarantined_at=pd.Timestamp.now(tz="UTC"))
    if path.exists():
        rows = pd.concat([pd.read_parquet(path), rows], ignore_index=True)
    write_parquet_atomically(rows, path)


def ingest_frame(
    workspace: Workspace, kind: str, raw: pd.DataFrame, source: str, progress: Progress = quiet
) -> IngestResult:
    """Validate ``raw`` and merge its valid rows into the data store."""
    workspace.ensure()
    times = subject_times(workspace) if kind == "control-results" else None
    result: ValidationResult = validate_frame(
        raw, kind, source=source, subject_times=times, progress=progress
    )
    with data_store_lock(workspace):
        replaced, unchanged, path = _merge(workspace, kind, result, source)
    logger.info(
        "%s: %d valid, %d quarantined (%s)", kind, result.n_valid, result.n_quarantined, source
    )
    return IngestResult(
        kind, result.n_input, result.n_valid, result.n_quarantined, replaced, path, unchanged
    )


def _merge(
    workspace: Workspace, kind: str, result: ValidationResult, source: str
) -> tuple[int, int, Path]:
    """Merge valid rows into the stored ones (under the lock); (replaced, unchanged, path)."""
    _append_quarantine(workspace, kind, result.quarantine)
    contract = contract_for(kind)
    path = data_file(workspace, kind)
    valid = result.valid
    replaced = unchanged = 0
    if path.exists():
        stored = pd.read_parquet(path)
        key = list(contract.key)
        incoming = valid[key].astype(str).agg("|".join, axis=1)
        stored_keys = stored[key].astype(str).agg("|".join, axis=1)
        # A row sent again unchanged (the service's feedback store is re-read on every retrain)
        # is neither new nor a newer version: it is dropped, and no history is written for it.
        same = _unchanged(valid, incoming, stored, stored_keys, contract.field_names)
        unchanged = int(same.sum())
        valid, incoming = valid[~same], incoming[~same]
        superseded = stored_keys.isin(set(incoming))
        replaced = int(superseded.sum())
        if replaced:
            history = stored[superseded].copy()
            history["reasons"] = [
                [
                    {
                        "field": ",".join(key),
                        "rule": "superseded",
                        "value": k,
                        "message": f"replaced by a newer version from {source}",
                    }
                ]
                for k in stored_keys[superseded]
            ]
            _append_quarantine(
                workspace,
                kind,
                history.astype({c: str for c in contract.field_names if c in history}),
            )
        if valid.empty:
            return replaced, unchanged, path  # nothing new: the stored file is left as it is
        valid = pd.concat([stored[~superseded], valid], ignore_index=True)
    write_parquet_atomically(valid, path)
    return replaced, unchanged, path


def _comparable(value: object) -> str:
    if isinstance(value, np.ndarray):  # lists come back from Parquet as arrays
        value = value.tolist()
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    return str(value)


def _unchanged(
    incoming: pd.DataFrame,
    incoming_keys: pd.Series,
    stored: pd.DataFrame,
    stored_keys: pd.Series,
    fields: list[str],
) -> np.ndarray:
    """Which incoming rows equal the stored row of the same key, field by field."""
    shared = set(incoming_keys) & set(stored_keys)
    same = np.zeros(len(incoming), dtype=bool)
    if not shared:
        return same
    columns = [c for c in fields if c in incoming.columns and c in stored.columns]

    def rows(frame: pd.DataFrame, keys: pd.Series) -> tuple[np.ndarray, list[str], list[tuple]]:
        mask = keys.isin(shared).to_numpy()
        values = frame[columns][mask].itertuples(index=False, name=None)
        return np.flatnonzero(mask), list(keys[mask]), [tuple(map(_comparable, v)) for v in values]

    _, keys, values = rows(stored, stored_keys)
    stored_rows = dict(zip(keys, values, strict=True))
    for position, key, value in zip(*rows(incoming, incoming_keys), strict=True):
        same[position] = stored_rows[key] == value
    return same


def ingest_file(
    workspace: Workspace, kind: str, path: Path, progress: Progress = quiet
) -> IngestResult:
    """Read, validate and merge a CSV or Parquet file."""
    progress(f"reading {path.name}")
    return ingest_frame(workspace, kind, read_records(path), str(path), progress)
