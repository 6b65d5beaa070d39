"""Bringing record files into the workspace: validate, then merge into the data store.

The data store (``CRISK_HOME/data``) holds the current version of every valid record, one
Parquet file per kind. A newer version of a record replaces the stored one; what it replaced and
every quarantined row are kept under ``CRISK_HOME/quarantine`` with their reasons.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data_contracts.definitions import contract_for
from data_contracts.io import read_records
from data_contracts.validate import ValidationResult, validate_frame
from data_contracts.workspace import Workspace

__all__ = ["IngestResult", "data_file", "ingest_file", "ingest_frame", "subject_times"]

logger = logging.getLogger(__name__)

_FILES = {"declarations": "declarations", "ens": "ens", "control-results": "control_results"}


def data_file(workspace: Workspace, kind: str) -> Path:
    return workspace.data_dir / f"{_FILES[kind]}.parquet"


@dataclass(frozen=True)
class IngestResult:
    kind: str
    n_input: int
    n_valid: int
    n_quarantined: int
    n_replaced: int
    data_path: Path


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
    rows.to_parquet(path, index=False)


def ingest_frame(workspace: Workspace, kind: str, raw: pd.DataFrame, source: str) -> IngestResult:
    """Validate ``raw`` and merge its valid rows into the data store."""
    workspace.ensure()
    times = subject_times(workspace) if kind == "control-results" else None
    result: ValidationResult = validate_frame(raw, kind, source=source, subject_times=times)
    _append_quarantine(workspace, kind, result.quarantine)
    contract = contract_for(kind)
    path = data_file(workspace, kind)
    valid = result.valid
    replaced = 0
    if path.exists():
        stored = pd.read_parquet(path)
        key = list(contract.key)
        incoming = valid[key].astype(str).agg("|".join, axis=1)
        stored_keys = stored[key].astype(str).agg("|".join, axis=1)
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
        valid = pd.concat([stored[~superseded], valid], ignore_index=True)
    valid.to_parquet(path, index=False)
    logger.info(
        "%s: %d valid, %d quarantined (%s)", kind, result.n_valid, result.n_quarantined, source
    )
    return IngestResult(kind, result.n_input, result.n_valid, result.n_quarantined, replaced, path)


def ingest_file(workspace: Workspace, kind: str, path: Path) -> IngestResult:
    """Read, validate and merge a CSV or Parquet file."""
    return ingest_frame(workspace, kind, read_records(path), str(path))
