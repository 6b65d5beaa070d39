"""Bringing record files into the workspace: validate, then merge into the data store.

The data store (``CRISK_HOME/data``) holds the current version of every valid record, one
Parquet file per kind, or (``CRISK_RECORDS_LAYOUT=partitioned``) a hive-partitioned dataset per
kind cut by the month of each record's event time (``data_contracts.record_store``): an import
then reads the stored versions of its keys, adds a part to each month its new rows fall in, and
rewrites only a month that loses a row to a newer version.
A newer version of a record replaces the stored one; what it replaced and
every quarantined row are kept under ``CRISK_HOME/quarantine`` with their reasons.

Control results carry when their outcome became known (``reported_at``): a file without it gets
``controlled_at`` plus the configured reporting delay of the control type (a physical check is
known within a day, a post-release audit's finding weeks later). A corrected result (same
``control_id``) replaces the stored one, and the version it replaced is also kept, typed, in
``data/control_results_history.parquet``: features count it until the correction was reported,
so no past feature value changes.

Two ingests at once, or one killed mid-write, never lose or corrupt stored records: the merge
(read what is stored, add, write) runs under an exclusive lock on the data store, and every file
is written to a temporary name, synced and renamed over the old one, so a reader sees the old
file or the new one, never half of one. History (quarantine) is written before the data it
explains: a crash between the two repeats history, it never loses it.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.dataset import read_manifest
from data_contracts.definitions import RecordContract, contract_for
from data_contracts.io import read_records
from data_contracts.progress import Progress, quiet
from data_contracts.record_store import (
    crowded_months,
    has_records,
    joined_keys,
    read_stored_records,
    record_location,
    record_months,
    recover_record_store,
    stored_layout,
    stored_months,
    stored_versions,
    update_partitions,
    write_parquet_atomically,
    write_records,
)
from data_contracts.validate import ValidationResult, validate_frame
from data_contracts.workspace import PARTITION_COLUMN, OfflineLayout, Workspace

__all__ = [
    "DEFAULT_REPORTING_DELAY_DAYS",
    "IngestResult",
    "data_file",
    "data_store_lock",
    "fill_reported_at",
    "ingest_file",
    "ingest_frame",
    "subject_times",
    "write_parquet_atomically",
]

logger = logging.getLogger(__name__)

_FILES = {"declarations": "declarations", "ens": "ens", "control-results": "control_results"}

# Days from a control to its outcome being known, by control type, for results that do not say.
DEFAULT_REPORTING_DELAY_DAYS: dict[str, float] = {
    "physical": 1.0,
    "scan": 1.0,
    "documentary": 2.0,
    "post_release_audit": 30.0,
}
_FALLBACK_DELAY_DAYS = 1.0


def data_file(workspace: Workspace, kind: str) -> Path:
    """Where the records of ``kind`` are stored (a file or a partitioned directory)."""
    return record_location(workspace, kind)


def fill_reported_at(results: pd.DataFrame, delays: Mapping[str, float]) -> pd.DataFrame:
    """``reported_at`` where absent: ``controlled_at`` plus the control type's delay (days)."""
    if "reported_at" not in results:
        results = results.assign(
            reported_at=pd.Series(pd.NaT, index=results.index, dtype="datetime64[ns, UTC]")
        )
    missing = results["reported_at"].isna()
    if not missing.any():
        return results
    days = (
        results["control_type"]
        .astype(object)
        .map(lambda t: delays.get(str(t), _FALLBACK_DELAY_DAYS))
    )
    filled = pd.to_datetime(results["controlled_at"], utc=True) + pd.to_timedelta(
        days.astype(float), unit="D"
    )
    results = results.copy()
    results["reported_at"] = pd.to_datetime(results["reported_at"], utc=True).where(
        ~missing, filled
    )
    return results


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
            recover_record_store(workspace)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
        if has_records(workspace, kind):
            stored = read_stored_records(workspace, kind, columns=[key, column])
            frame = stored.groupby(key)[column].min()
            times.update({(subject, str(k)): v for k, v in frame.items()})
    return times


def _maps_as_text(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Map fields (``extra``) as JSON text: their values' types vary from row to row (a code
    read as text here, as a number there), which a Parquet column cannot hold."""
    contract = contract_for(kind)
    maps = [f.name for f in contract.fields if f.type == "map" and f.name in frame]
    if not maps:
        return frame
    frame = frame.copy()
    for name in maps:
        frame[name] = [
            json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict) else v
            for v in frame[name]
        ]
    return frame


def _append_quarantine(workspace: Workspace, kind: str, rows: pd.DataFrame) -> None:
    if rows.empty:
        return
    path = workspace.quarantine_dir / f"{_FILES[kind]}.parquet"
    rows = rows.assign(quarantined_at=pd.Timestamp.now(tz="UTC"))
    if path.exists():
        rows = pd.concat([pd.read_parquet(path), rows], ignore_index=True)
    write_parquet_atomically(rows, path)


def _append_history(workspace: Workspace, rows: pd.DataFrame) -> None:
    """Superseded control-result versions, typed, in the order they were replaced."""
    if rows.empty:
        return
    path = workspace.control_results_history_file
    rows = rows.assign(superseded_at=pd.Timestamp.now(tz="UTC"))
    if path.exists():
        rows = pd.concat([pd.read_parquet(path), rows], ignore_index=True)
    write_parquet_atomically(rows, path)


def _earlier_versions(
    raw: pd.DataFrame,
    result: ValidationResult,
    *,
    times: Mapping[tuple[str, str], pd.Timestamp] | None,
    delays: Mapping[str, float],
    identifiers: str,
    row_numbers: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Valid control results that a newer row of the same batch superseded, oldest first.

    The batch keeps its newest version of each control; the earlier ones were reported before
    it and counted until it was, so they belong to the history like a stored version does.
    """
    quarantine = result.quarantine
    if quarantine.empty:
        return pd.DataFrame()
    only_superseded = [
        bool(reasons) and all(r["rule"] == "superseded" for r in reasons)
        for reasons in quarantine["reasons"]
    ]
    numbers = np.arange(1, len(raw) + 1) if row_numbers is None else np.asarray(row_numbers)
    position = {int(number): i for i, number in enumerate(numbers)}
    rows = [position[int(number)] for number in quarantine.loc[only_superseded, "row"]]
    if not rows:
        return pd.DataFrame()
    earlier = raw.iloc[rows].reset_index(drop=True)
    again = validate_frame(earlier, "control-results", subject_times=times, identifiers=identifiers)
    older = _earlier_versions(earlier, again, times=times, delays=delays, identifiers=identifiers)
    versions = fill_reported_at(again.valid, delays)
    return pd.concat([older, versions], ignore_index=True) if len(older) else versions


def ingest_frame(
    workspace: Workspace,
    kind: str,
    raw: pd.DataFrame,
    source: str,
    progress: Progress = quiet,
    *,
    row_numbers: Sequence[int] | np.ndarray | None = None,
    identifiers: str | None = None,
    reporting_delays: Mapping[str, float] | None = None,
    layout: OfflineLayout | None = None,
) -> IngestResult:
    """Validate ``raw`` and merge its valid rows into the data store.

    Party ids are checked in ``identifiers`` (default: the workspace's format, from its dataset
    manifest: EORI unless an imported national file said ``opaque``). ``row_numbers`` are the
    rows' numbers in their source file, for the quarantine (default: their position from 1).
    ``reporting_delays``: days from control to known outcome by control type, for control
    results without ``reported_at`` (default :data:`DEFAULT_REPORTING_DELAY_DAYS`).
    ``layout``: how the records of ``kind`` are written (``CRISK_RECORDS_LAYOUT``; default: as
    they are stored, a file when there are none). Records stored in the other layout are
    rewritten whole in this one, once.
    """
    workspace.ensure()
    identifiers = identifiers or read_manifest(workspace).identifier_format
    delays = DEFAULT_REPORTING_DELAY_DAYS if reporting_delays is None else reporting_delays
    times = subject_times(workspace) if kind == "control-results" else None
    result: ValidationResult = validate_frame(
        raw,
        kind,
        source=source,
        subject_times=times,
        identifiers=identifiers,
        row_numbers=row_numbers,
        progress=progress,
    )
    valid = _maps_as_text(result.valid, kind)
    earlier: list[pd.DataFrame] = []  # control-result versions superseded by this batch
    if kind == "control-results":
        valid = fill_reported_at(valid, delays)
        earlier.append(
            _earlier_versions(
                raw.reset_index(drop=True),
                result,
                times=times,
                delays=delays,
                identifiers=identifiers,
                row_numbers=row_numbers,
            )
        )
    with data_store_lock(workspace):
        replaced, unchanged, path = _merge(
            workspace,
            kind,
            result,
            valid,
            earlier,
            source=source,
            identifiers=identifiers,
            layout=layout,
        )
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


def _merge(
    workspace: Workspace,
    kind: str,
    result: ValidationResult,
    valid: pd.DataFrame,
    earlier: list[pd.DataFrame],
    *,
    source: str,
    identifiers: str,
    layout: OfflineLayout | None,
) -> tuple[int, int, Path]:
    """Merge valid rows into the stored ones (under the lock); (replaced, unchanged, path).

    Appending to partitioned records compares the new rows with the stored versions of their
    keys only; a month that loses a replaced version is rewritten whole, and every other month
    a new row falls in gains a part holding just those rows. Otherwise every stored row is read
    and written, as one file always was.
    """
    _append_quarantine(workspace, kind, result.quarantine)
    contract = contract_for(kind, identifiers)
    stored_as = stored_layout(workspace, kind)
    layout = layout or stored_as or "file"
    appending = layout == "partitioned" and stored_as == "partitioned"
    path = workspace.record_dataset(kind, layout)
    key = list(contract.key)
    replaced = unchanged = 0
    losing: set[str] = set()  # months of a partitioned store that lose a replaced version
    if stored_as is not None:
        incoming = joined_keys(valid, key)
        # Partitioned: only the stored versions of the rows sent again are read, not the store.
        rows = (
            stored_versions(workspace, kind, valid[key])
            if appending
            else read_stored_records(workspace, kind)
        )
        version_months = rows.pop(PARTITION_COLUMN) if appending else pd.Series(dtype=str)
        stored = _maps_as_text(rows, kind)
        stored_keys = joined_keys(stored, key)
        # A row sent again unchanged (the service's feedback store is re-read on every retrain)
        # is neither new nor a newer version: it is dropped, and no history is written for it.
        same = _unchanged(valid, incoming, stored, stored_keys, contract.field_names)
        unchanged = int(same.sum())
        valid, incoming = valid[~same], incoming[~same]
        superseded = stored_keys.isin(set(incoming))
        replaced = int(superseded.sum())
        if replaced and kind == "control-results":
            earlier.insert(0, stored[superseded])
        if replaced:
            _quarantine_superseded(
                workspace, kind, stored[superseded], stored_keys[superseded], contract, source
            )
        if valid.empty:  # nothing new: the stored records are left as they are
            return replaced, unchanged, data_file(workspace, kind)
        if appending:
            losing = set(version_months[superseded.to_numpy()])
        else:
            valid = pd.concat([stored[~superseded], valid], ignore_index=True)
    if kind == "control-results":
        _append_history(workspace, pd.concat(earlier, ignore_index=True))
    if appending:
        # Months that lose a replaced version are rewritten whole; the others gain a part.
        _update_months(path, valid, incoming, key, contract.time_field, losing)
    else:
        write_records(workspace, kind, valid, layout)
    return replaced, unchanged, path


def _update_months(
    path: Path,
    valid: pd.DataFrame,
    incoming: pd.Series,
    key: list[str],
    time_field: str,
    losing: set[str],
) -> None:
    """Partitioned records: ``valid`` (new rows and newer versions, keyed ``incoming``) into
    the store at ``path``; the months in ``losing`` hold a version one of them replaces."""
    months = record_months(valid, time_field)
    # A month that has gathered many parts (one per import day) is compacted with this import.
    rewrite = losing | crowded_months(path, set(months))
    into_rewrite = months.isin(rewrite).to_numpy()
    kept = stored_months(path, rewrite)
    kept = kept[~joined_keys(kept, key).isin(set(incoming)).to_numpy()]
    rewritten = pd.concat([kept, valid[into_rewrite]], ignore_index=True)
    update_partitions(path, time_field, rewritten, rewrite, valid[~into_rewrite])


def _quarantine_superseded(
    workspace: Workspace,
    kind: str,
    superseded: pd.DataFrame,
    keys: pd.Series,
    contract: RecordContract,
    source: str,
) -> None:
    """Stored versions a newer one replaced, kept in the quarantine with the reason."""
    history = superseded.copy()
    history["reasons"] = [
        [
            {
                "field": ",".join(contract.key),
                "rule": "superseded",
                "value": k,
                "message": f"replaced by a newer version from {source}",
            }
        ]
        for k in keys
    ]
    _append_quarantine(
        workspace, kind, history.astype({c: str for c in contract.field_names if c in history})
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


def ingest_file(
    workspace: Workspace,
    kind: str,
    path: Path,
    progress: Progress = quiet,
    *,
    reporting_delays: Mapping[str, float] | None = None,
    layout: OfflineLayout | None = None,
) -> IngestResult:
    """Read, validate and merge a CSV or Parquet file (``layout``: see :func:`ingest_frame`)."""
    progress(f"reading {path.name}")
    return ingest_frame(
        workspace,
        kind,
        read_records(path),
        str(path),
        progress,
        reporting_delays=reporting_delays,
        layout=layout,
    )
