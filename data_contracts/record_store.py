"""The data store's records in either layout: one Parquet file per kind, or a partitioned dataset.

``CRISK_RECORDS_LAYOUT=file|partitioned`` decides how ingest *writes* declarations, ENS filings
and control results (``partitioned`` under ``CRISK_PROFILE=scale``). ``partitioned`` keeps each
kind as a hive-partitioned directory ``data/<name>/event_month=YYYY-MM/part-*.parquet``, cut by
the UTC month of the record's own event time (the contract's ``time_field``: ``lodged_at``,
``filed_at``, ``controlled_at``). An import adds a part to each month its new rows fall in, and
rewrites (into one part) only a month that loses a row to a newer version.

Readers follow what is on disk, never the setting: :func:`read_stored_records` (pandas) and
:func:`record_source_sql` (DuckDB SQL) read a file as a file and a directory as a
dataset, and never return the partition column. The operator register stays one file: it is
reference data copied in whole, one row per operator, with no event time to cut by.

Every write is staged and swapped in: a failed write leaves the previous records as they were.
A rewrite of several months is journaled before its renames, and a swap a crash cut off is
finished by the next writer (under the data store's lock) or reader, so months change together.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from data_contracts.definitions import contract_for
from data_contracts.offline_data import EMPTY_PARTITION, partition_values
from data_contracts.workspace import (
    OFFLINE_LAYOUTS,
    PARTITION_COLUMN,
    PARTITIONED_RECORD_KINDS,
    OfflineLayout,
    Workspace,
)

__all__ = [
    "MAX_MONTH_PARTS",
    "PART_FILE",
    "crowded_months",
    "digest_records",
    "has_records",
    "joined_keys",
    "partition_time_field",
    "read_record_path",
    "read_stored_records",
    "record_location",
    "record_months",
    "record_source_sql",
    "recover_record_store",
    "replace_partitions",
    "stored_layout",
    "stored_months",
    "stored_versions",
    "update_partitions",
    "write_parquet_atomically",
    "write_records",
]

PART_FILE = "part-0.parquet"
# Parts a month may gather (one per import day) before an import compacts it into one.
MAX_MONTH_PARTS = 64
# A month swap in progress (replace_partitions); finished by recover_record_store.
_JOURNAL_PREFIX = ".swap."
Filters = Sequence[tuple[str, str, Any]]


def partition_time_field(kind: str) -> str:
    """The event time whose UTC month partitions ``kind``: the contract's own time field."""
    return contract_for(kind).time_field


def _has_parts(directory: Path) -> bool:
    return any(directory.glob(f"{PARTITION_COLUMN}=*/*.parquet"))


def stored_layout(workspace: Workspace, kind: str) -> OfflineLayout | None:
    """The layout ``kind`` is stored in (the file wins while a conversion holds both), or None."""
    if workspace.record_dataset(kind, "file").is_file():
        return "file"
    if kind in PARTITIONED_RECORD_KINDS and _has_parts(
        workspace.record_dataset(kind, "partitioned")
    ):
        return "partitioned"
    return None


def record_location(workspace: Workspace, kind: str) -> Path:
    """Where ``kind`` is stored (file or directory); the file path when nothing is stored."""
    return workspace.record_dataset(kind, stored_layout(workspace, kind) or "file")


def has_records(workspace: Workspace, kind: str) -> bool:
    return stored_layout(workspace, kind) is not None


def _part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{PARTITION_COLUMN}=*/*.parquet"))


def _dataset(directory: Path) -> Any:
    """The partitioned records as one pyarrow dataset, partition column included (a string).

    The schema is unified over the parts' footers: a column that was empty in one import
    (written as Arrow's null type) and filled in another must not fail the read.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    _settle_swap(directory)
    files = _part_files(directory)
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    # A part written by another tool may hold microseconds: read as pandas' nanoseconds.
    schema = pa.schema(
        [
            f.with_type(pa.timestamp("ns", f.type.tz)) if pa.types.is_timestamp(f.type) else f
            for f in schema
        ],
        metadata=schema.metadata,  # pandas' own: text stays pandas' string dtype, as in a file
    )
    partition = pa.field(PARTITION_COLUMN, pa.string())
    return ds.dataset(
        [str(f) for f in files],
        schema=schema.append(partition),
        format="parquet",
        partitioning=ds.partitioning(pa.schema([partition]), flavor="hive"),
        partition_base_dir=str(directory),
    )


def _read_partitioned(
    directory: Path,
    columns: Sequence[str] | None,
    filters: Filters | None,
    *,
    with_partition: bool = False,
) -> pd.DataFrame:
    import pyarrow.parquet as pq

    dataset = _dataset(directory)
    names = [n for n in dataset.schema.names if n != PARTITION_COLUMN]
    wanted = list(names if columns is None else columns)
    if with_partition:
        wanted.append(PARTITION_COLUMN)
    expression = pq.filters_to_expression(list(filters)) if filters else None
    return dataset.to_table(columns=wanted, filter=expression).to_pandas()


def read_record_path(
    path: Path, columns: Sequence[str] | None = None, filters: Filters | None = None
) -> pd.DataFrame:
    """The records at ``path`` (a file, or a partitioned directory) without the partition column.

    ``filters`` are pyarrow's (``[("subject_id", "==", "X")]``) on record fields; Parquet
    statistics let them skip row groups in either layout.
    """
    if path.is_dir():
        return _read_partitioned(path, columns, filters)
    return pd.read_parquet(
        path, columns=None if columns is None else list(columns), filters=filters or None
    )


def read_stored_records(
    workspace: Workspace,
    kind: str,
    columns: Sequence[str] | None = None,
    filters: Filters | None = None,
) -> pd.DataFrame:
    """The stored records of ``kind`` in either layout (see :func:`read_record_path`).

    Raises:
        FileNotFoundError: the workspace holds no records of ``kind`` (the message names where).
    """
    if not has_records(workspace, kind):
        raise FileNotFoundError(
            f"{workspace.record_file(kind)}: no validated {kind} in this workspace; "
            f"run `crisk ingest {kind} FILE` (or `crisk import`) first"
        )
    return read_record_path(record_location(workspace, kind), columns, filters)


def record_source_sql(workspace: Workspace, kind: str) -> str:
    """A DuckDB table expression over the stored records of ``kind`` (select columns by name:
    a partitioned dataset also exposes ``event_month``). The parts are read by name
    (``union_by_name``: a column empty in one import and typed in another unifies)."""
    path = record_location(workspace, kind)
    quoted = str(path).replace("'", "''")
    if path.is_dir():
        _settle_swap(path)
        return (
            f"read_parquet('{quoted}/{PARTITION_COLUMN}=*/*.parquet', "
            "hive_partitioning = true, union_by_name = true)"
        )
    return f"read_parquet('{quoted}')"


def joined_keys(frame: pd.DataFrame, key: Sequence[str]) -> pd.Series:
    """Each row's key values as text joined by ``"|"`` (how ingest compares keys), column by
    column: a row-wise ``agg("|".join)`` costs seconds on a large store."""
    joined = frame[key[0]].astype(str)
    for name in key[1:]:
        joined = joined + "|" + frame[name].astype(str)
    return joined


def _months(directory: Path) -> set[str]:
    return {part.parent.name.split("=", 1)[1] for part in _part_files(directory)}


def stored_versions(workspace: Workspace, kind: str, incoming: pd.DataFrame) -> pd.DataFrame:
    """The stored rows of the partitioned records whose key is one of ``incoming``'s (its key
    columns), every field and the partition column. Only the keys are read first (rows whose
    first key value is one of the new ones, filtered while scanning); whole rows are read for
    the months that hold a match. A month's other rows are not read."""
    directory = workspace.record_dataset(kind, "partitioned")
    key = list(incoming.columns)
    first = incoming[key[0]].dropna().astype(str).unique().tolist()
    wanted = set(joined_keys(incoming, key))
    if not first:
        return pd.DataFrame(columns=[*key, PARTITION_COLUMN])
    found = _read_partitioned(directory, key, [(key[0], "in", first)], with_partition=True)
    matched = found[joined_keys(found, key).isin(wanted).to_numpy()]
    if matched.empty:
        return found.iloc[0:0]  # no versions: the key columns are all a caller reads of them
    months = sorted(set(matched[PARTITION_COLUMN]))
    values = matched[key[0]].astype(str).unique().tolist()
    rows = _read_partitioned(
        directory, None, [(key[0], "in", values), (PARTITION_COLUMN, "in", months)],
        with_partition=True,
    )  # fmt: skip
    return rows[joined_keys(rows, key).isin(wanted).to_numpy()].reset_index(drop=True)


def crowded_months(directory: Path, months: set[str]) -> set[str]:
    """Those of ``months`` holding ``MAX_MONTH_PARTS`` parts or more: an import into them rewrites
    them into one part (a month read as thousands of small files would be slow)."""
    return {m for m in months if len(_month_parts(_partition_dir(directory, m))) >= MAX_MONTH_PARTS}


def stored_months(directory: Path, months: set[str]) -> pd.DataFrame:
    """Every stored row of ``months`` (all their parts), without the partition column."""
    present = sorted(_months(directory) & months)
    if not present:
        return _dataset(directory).schema.empty_table().to_pandas().drop(columns=[PARTITION_COLUMN])
    return _read_partitioned(directory, None, [(PARTITION_COLUMN, "in", present)])


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the rename itself survives a crash
    finally:
        os.close(descriptor)


def _write_synced(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _write_part(frame: pd.DataFrame, path: Path) -> None:
    """One month's part, written as pandas writes the file: nanosecond timestamps kept exact
    (control results' times carry them; truncating would make a resend look like a new
    version). Spark 4.x refuses nanosecond Parquet timestamps (``PARQUET_TYPE_ILLEGAL``), so
    there is no Spark SQL source over the records: Spark builds read the same pandas-prepared
    records as DuckDB (``features/tables/records.py``)."""
    _write_synced(frame, path)


def write_parquet_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Replace ``path`` by ``frame`` in one step: the old file or the new one, never a mix."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_synced(frame, temporary)
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def record_months(frame: pd.DataFrame, time_field: str) -> pd.Series:
    """The partition of each record: the UTC month of its event time (Hive's null partition
    for a record without one, which the contracts do not let through)."""
    return partition_values(frame[time_field]).fillna(EMPTY_PARTITION)


def _partition_dir(directory: Path, month: str) -> Path:
    return directory / f"{PARTITION_COLUMN}={month}"


def replace_partitions(
    directory: Path, frame: pd.DataFrame, time_field: str, touched: set[str]
) -> None:
    """Rewrite the months ``touched`` of the records at ``directory`` with the rows of ``frame``
    (see :func:`update_partitions`)."""
    update_partitions(directory, time_field, frame, touched, frame.iloc[0:0])


def update_partitions(
    directory: Path,
    time_field: str,
    rewritten: pd.DataFrame,
    rewrite: set[str],
    appended: pd.DataFrame,
) -> None:
    """Rewrite the months ``rewrite`` whole with the rows of ``rewritten`` (one part each, in
    place of all the month's parts; a month left without rows is removed), and add the rows of
    ``appended`` (of other months) as a new part of their month, its name from its content.

    Every new part is written and synced under a temporary name first (a failed write removes
    them and leaves every month as it was). Then a journal naming every rename and removal is
    synced, and the months are swapped; a writer that dies during the swap leaves the journal,
    and :func:`recover_record_store` finishes it, so the months change together or not at all.
    Months not named are not read or written.
    """
    staged: dict[Path, Path] = {}  # each part written -> its temporary file
    removed: list[Path] = []  # parts of rewritten months that go
    try:
        months = record_months(rewritten, time_field)
        for month in sorted(rewrite):
            month_dir = _partition_dir(directory, month)
            target = month_dir / PART_FILE
            removed += [part for part in _month_parts(month_dir) if part != target]
            rows = rewritten[(months == month).to_numpy()]
            if rows.empty:
                removed += [target] if target.exists() else []
                continue
            month_dir.mkdir(parents=True, exist_ok=True)
            staged[target] = target.with_name(f".{PART_FILE}.{uuid.uuid4().hex}.tmp")
            _write_part(rows, staged[target])
        added = record_months(appended, time_field)
        for month in sorted(set(added)):
            month_dir = _partition_dir(directory, month)
            month_dir.mkdir(parents=True, exist_ok=True)
            temporary = month_dir / f".part-new.{uuid.uuid4().hex}.tmp"
            staged[temporary] = temporary  # renamed below, once its name is known
            _write_part(appended[(added == month).to_numpy()], temporary)
            staged[month_dir / f"part-{_content_name(temporary)}.parquet"] = staged.pop(temporary)
    except BaseException:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
        raise
    journal = _write_journal(directory, staged, removed)
    _finish_swap(directory, journal)


def _month_parts(month_dir: Path) -> list[Path]:
    return sorted(month_dir.glob("*.parquet")) if month_dir.is_dir() else []


def _content_name(path: Path) -> str:
    """A part's name from its bytes: the same rows written again get the same name."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def _settle_swap(directory: Path) -> None:
    """Before reading a partitioned kind: a month swap still journaled is either in progress
    (its writer holds the data store's lock: wait for it) or was cut off by a crash (finish
    it now, under the lock), so no reader sees some months new and others old."""
    if not any(directory.glob(f"{_JOURNAL_PREFIX}*.json")):
        return
    with (directory.parent / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            for journal in directory.glob(f"{_JOURNAL_PREFIX}*.json"):
                _finish_swap(directory, journal)
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_journal(directory: Path, staged: dict[Path, Path], removed: list[Path]) -> Path:
    """The swap about to be made, synced before any of it: parts as paths under ``directory``."""
    journal = directory / f"{_JOURNAL_PREFIX}{uuid.uuid4().hex}.json"
    steps = {
        "replace": [
            [str(temporary.relative_to(directory)), str(target.relative_to(directory))]
            for target, temporary in staged.items()
        ],
        "remove": [str(target.relative_to(directory)) for target in removed],
    }
    temporary_journal = journal.with_suffix(".tmp")
    temporary_journal.write_text(json.dumps(steps))
    with temporary_journal.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary_journal, journal)  # the journal is whole or absent
    _fsync_directory(directory)
    return journal


def _finish_swap(directory: Path, journal: Path) -> None:
    """Carry out a journal's renames and removals (again: each step can be repeated), then
    drop it."""
    steps = json.loads(journal.read_text())
    for temporary_name, target_name in steps["replace"]:
        temporary, target = directory / temporary_name, directory / target_name
        if temporary.exists():  # already renamed when a recovery repeats the swap
            os.replace(temporary, target)
            _fsync_directory(target.parent)
    for target_name in steps["remove"]:
        target = directory / target_name
        target.unlink(missing_ok=True)
        if not _month_parts(target.parent):  # a month left without rows goes
            shutil.rmtree(target.parent, ignore_errors=True)
    _fsync_directory(directory)
    journal.unlink()
    _fsync_directory(directory)


def write_records(
    workspace: Workspace, kind: str, frame: pd.DataFrame, layout: OfflineLayout = "file"
) -> Path:
    """Replace the stored records of ``kind`` whole by ``frame`` in ``layout``.

    The new copy is complete on disk before it takes the old one's place, and the other
    layout's copy is removed after it (readers prefer the file, so a reader in between sees
    the old records or the new ones). Returns where the records now are.
    """
    target = workspace.record_dataset(kind, layout)
    target.parent.mkdir(parents=True, exist_ok=True)
    if layout == "file":
        write_parquet_atomically(frame, target)
    else:
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}.staging")
        try:
            staging.mkdir()
            if frame.empty:  # a schema-only part: a directory without parts is no dataset
                _partition_dir(staging, EMPTY_PARTITION).mkdir()
                _write_part(frame, _partition_dir(staging, EMPTY_PARTITION) / PART_FILE)
            else:
                time_field = partition_time_field(kind)
                months = set(record_months(frame, time_field))
                replace_partitions(staging, frame, time_field, months)
            previous = target.with_name(f".{target.name}.{uuid.uuid4().hex}.previous")
            if target.exists():
                target.rename(previous)  # a directory cannot be replaced in one rename
            staging.rename(target)
            _fsync_directory(target.parent)
            shutil.rmtree(previous, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for other in OFFLINE_LAYOUTS:
        if other != layout and kind in PARTITIONED_RECORD_KINDS:
            _remove(workspace.record_dataset(kind, other))
    return target


def recover_record_store(workspace: Workspace) -> None:
    """Tidy what a writer that died mid-write left (call it under the data store's lock).

    A swap journal is finished first (its months were all written before it was); then
    temporary parts and staging directories are garbage, and a ``.previous`` directory is the
    records themselves when the writer died between its two renames, and is moved back.
    """
    data = workspace.data_dir
    for journal in data.glob(f"*/{_JOURNAL_PREFIX}*.json"):
        _finish_swap(journal.parent, journal)
    for unfinished in data.glob(f"*/{_JOURNAL_PREFIX}*.tmp"):  # died before the swap began
        unfinished.unlink(missing_ok=True)
    for leftover in data.glob(f"*/{PARTITION_COLUMN}=*/.*.tmp"):
        leftover.unlink(missing_ok=True)
    for staging in data.glob(".*.staging"):
        shutil.rmtree(staging, ignore_errors=True)
    for previous in data.glob(".*.previous"):
        target = data / previous.name[1:].split(".", 1)[0]
        if target.exists():
            shutil.rmtree(previous, ignore_errors=True)
        else:
            previous.rename(target)


def digest_records(workspace: Workspace, kind: str, digest: Any) -> None:
    """Feed the stored records of ``kind`` into ``digest`` (file bytes; a dataset part by part,
    each named by its month), for a content id of the data store."""
    path = record_location(workspace, kind)
    files = [path] if path.is_file() else _part_files(path) if path.is_dir() else []
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
