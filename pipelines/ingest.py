"""Bringing record files into the workspace: validate, then merge into the data store.

The data store (``CRISK_HOME/data``) holds the current version of every valid record, one
Parquet file per kind. A newer version of a record replaces the stored one; what it replaced and
every quarantined row are kept under ``CRISK_HOME/quarantine`` with their reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.dataset import read_manifest
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
    n_unchanged: int = 0  # valid rows identical to the stored version: nothing to do
    rule_counts: dict[str, int] = field(default_factory=dict)  # "field:rule" -> quarantined rows

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
    rows.to_parquet(path, index=False)


def ingest_frame(
    workspace: Workspace,
    kind: str,
    raw: pd.DataFrame,
    source: str,
    *,
    row_numbers: Sequence[int] | np.ndarray | None = None,
    identifiers: str | None = None,
) -> IngestResult:
    """Validate ``raw`` and merge its valid rows into the data store.

    Party ids are checked in ``identifiers`` (default: the workspace's format, from its dataset
    manifest: EORI unless an imported national file said ``opaque``). ``row_numbers`` are the
    rows' numbers in their source file, for the quarantine (default: their position from 1).
    """
    workspace.ensure()
    identifiers = identifiers or read_manifest(workspace).identifier_format
    times = subject_times(workspace) if kind == "control-results" else None
    result: ValidationResult = validate_frame(
        raw,
        kind,
        source=source,
        subject_times=times,
        identifiers=identifiers,
        row_numbers=row_numbers,
    )
    _append_quarantine(workspace, kind, result.quarantine)
    contract = contract_for(kind, identifiers)
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
        valid = pd.concat([stored[~superseded], valid], ignore_index=True)
    valid.to_parquet(path, index=False)
    logger.info(
        "%s: %d valid, %d quarantined (%s)", kind, result.n_valid, result.n_quarantined, source
    )
    return IngestResult(
        kind,
        result.n_input,
        result.n_valid,
        result.n_quarantined,
        replaced,
        path,
        unchanged,
        result.rule_counts(),
    )


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


def ingest_file(workspace: Workspace, kind: str, path: Path) -> IngestResult:
    """Read, validate and merge a CSV or Parquet file."""
    return ingest_frame(workspace, kind, read_records(path), str(path))
