"""The data store's records in both layouts: whole writes, month rewrites, layout-blind reading."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data_contracts.record_store import (
    PART_FILE,
    has_records,
    read_stored_records,
    record_location,
    record_source_sql,
    recover_record_store,
    replace_partitions,
    stored_layout,
    stored_months,
    stored_versions,
    update_partitions,
    write_records,
)
from data_contracts.workspace import PARTITION_COLUMN, Workspace


def _items(*lodged: str, note: object = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "declaration_id": [f"D{i}" for i in range(len(lodged))],
            "item_number": [1] * len(lodged),
            "lodged_at": pd.to_datetime(list(lodged), utc=True),
            "customs_value_eur": [100.0 + i for i in range(len(lodged))],
            "note": [note] * len(lodged),  # all null in one write, text in another
        }
    )


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("declaration_id").reset_index(drop=True)


def test_both_layouts_read_the_same_records(tmp_path: Path) -> None:
    items = _items("2026-01-31T23:30:00Z", "2026-02-01T00:10:00Z", "2026-02-15T12:00:00Z")
    file, partitioned = Workspace.at(tmp_path / "f"), Workspace.at(tmp_path / "p")
    assert not has_records(file, "declarations") and stored_layout(file, "declarations") is None
    write_records(file, "declarations", items)
    write_records(partitioned, "declarations", items, "partitioned")

    directory = partitioned.record_dataset("declarations", "partitioned")
    months = sorted(p.name for p in directory.iterdir())
    assert months == [f"{PARTITION_COLUMN}=2026-01", f"{PARTITION_COLUMN}=2026-02"], "UTC months"
    assert stored_layout(partitioned, "declarations") == "partitioned"
    assert record_location(partitioned, "declarations") == directory
    for workspace in (file, partitioned):
        stored = read_stored_records(workspace, "declarations")
        assert PARTITION_COLUMN not in stored
        pd.testing.assert_frame_equal(_sorted(stored), _sorted(items))
        picked = read_stored_records(
            workspace, "declarations", ["declaration_id"], [("customs_value_eur", ">", 100.5)]
        )
        assert sorted(picked["declaration_id"]) == ["D1", "D2"]
        sql = record_source_sql(workspace, "declarations")
        rows = duckdb.sql(f"SELECT declaration_id FROM {sql} ORDER BY 1").fetchall()
        assert rows == [("D0",), ("D1",), ("D2",)]

    # Writing the other layout replaces the records and removes the first copy.
    write_records(partitioned, "declarations", items.head(1), "file")
    assert stored_layout(partitioned, "declarations") == "file" and not directory.exists()
    with pytest.raises(FileNotFoundError, match=r"control_results\.parquet: no validated"):
        read_stored_records(file, "control-results")


def test_a_month_rewrite_touches_only_its_months(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path)
    items = _items("2026-01-05", "2026-02-05", "2026-03-05")
    directory = write_records(workspace, "declarations", items, "partitioned")
    march = directory / f"{PARTITION_COLUMN}=2026-03" / PART_FILE
    untouched = march.stat()

    new = pd.DataFrame({"declaration_id": ["D1", "D9"], "item_number": [1, 1]})
    versions = stored_versions(workspace, "declarations", new)
    assert versions["declaration_id"].tolist() == ["D1"], "only the stored version of a new key"
    assert versions[PARTITION_COLUMN].tolist() == ["2026-02"]
    assert stored_months(directory, {"2026-02", "2026-04"})["declaration_id"].tolist() == ["D1"]

    moved = _items("2026-01-05", "2026-04-02", note="amended")[1:]  # D1 now lodged in April
    update_partitions(directory, "lodged_at", moved.iloc[0:0], {"2026-02"}, moved)
    assert not (directory / f"{PARTITION_COLUMN}=2026-02").exists(), "a month left empty goes"
    assert march.stat().st_mtime_ns == untouched.st_mtime_ns and march.stat().st_ino == (
        untouched.st_ino
    )
    stored = _sorted(read_stored_records(workspace, "declarations"))
    assert stored["declaration_id"].tolist() == ["D0", "D1", "D2"]
    assert stored["note"].tolist() == [None, "amended", None], "null-typed parts unify"


def test_new_rows_of_a_month_are_a_new_part_and_a_rewrite_joins_them(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path)
    directory = write_records(workspace, "declarations", _items("2026-01-05"), "partitioned")
    january = directory / f"{PARTITION_COLUMN}=2026-01"
    first = (january / PART_FILE).stat()
    later = _items("2026-01-05", "2026-01-20")[1:]  # D1, later in the same month
    update_partitions(directory, "lodged_at", later.iloc[0:0], set(), later)
    parts = sorted(p.name for p in january.iterdir())
    assert len(parts) == 2 and PART_FILE in parts, "the month's part is not rewritten"
    assert (january / PART_FILE).stat().st_ino == first.st_ino
    assert sorted(read_stored_records(workspace, "declarations")["declaration_id"]) == ["D0", "D1"]
    # A rewrite of the month (a version replaced) leaves one part holding all its rows.
    rows = stored_months(directory, {"2026-01"})
    update_partitions(directory, "lodged_at", rows, {"2026-01"}, rows.iloc[0:0])
    assert [p.name for p in january.iterdir()] == [PART_FILE]
    assert sorted(read_stored_records(workspace, "declarations")["declaration_id"]) == ["D0", "D1"]


def test_a_failed_write_keeps_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = Workspace.at(tmp_path)
    before = _items("2026-01-05", "2026-02-05")
    write_records(workspace, "declarations", before, "partitioned")
    directory = workspace.record_dataset("declarations", "partitioned")
    written = []

    def fail_second(frame: pd.DataFrame, path: Path, **_: object) -> None:
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        Path(path).write_bytes(b"partial")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail_second)
    with pytest.raises(OSError, match="No space"):
        replace_partitions(directory, _items("2026-01-09", "2026-02-09"), "lodged_at",
                           {"2026-01", "2026-02"})  # fmt: skip
    with pytest.raises(OSError, match="No space"):
        write_records(workspace, "declarations", before, "partitioned")
    monkeypatch.undo()
    pd.testing.assert_frame_equal(_sorted(read_stored_records(workspace, "declarations")), before)
    assert not list(directory.rglob(".*")) and not list(workspace.data_dir.glob(".*")), "no debris"


def test_recovery_moves_back_records_a_writer_left_aside(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path)
    write_records(workspace, "ens", pd.DataFrame({"ens_id": ["E1"], "filed_at": pd.to_datetime(
        ["2026-03-01"], utc=True)}), "partitioned")  # fmt: skip
    directory = workspace.record_dataset("ens", "partitioned")
    directory.rename(directory.with_name(".ens.0a1b.previous"))  # died between its two renames
    (directory.with_name(".ens.0a1c.staging")).mkdir()
    recover_record_store(workspace)
    assert read_stored_records(workspace, "ens")["ens_id"].tolist() == ["E1"]
    assert sorted(p.name for p in workspace.data_dir.iterdir()) == ["ens"]


def _cut_after_first_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer dies (a signal, power) after the first month's rename of a swap."""
    import os

    real, renamed = os.replace, []

    def replace(source: object, target: object) -> None:
        part = Path(str(source)).name.startswith(f".{PART_FILE}")
        if part and renamed:
            raise SystemExit("killed")
        real(source, target)  # type: ignore[arg-type]
        if part:
            renamed.append(target)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("finished_by", ["reader", "next writer"])
def test_a_swap_cut_off_midway_is_finished_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finished_by: str
) -> None:
    workspace = Workspace.at(tmp_path)
    write_records(workspace, "declarations", _items("2026-01-05", "2026-02-05"), "partitioned")
    directory = workspace.record_dataset("declarations", "partitioned")
    amended = _items("2026-01-05", "2026-02-05", note="amended")
    _cut_after_first_rename(monkeypatch)
    with pytest.raises(SystemExit):
        replace_partitions(directory, amended, "lodged_at", {"2026-01", "2026-02"})
    monkeypatch.undo()
    assert len(list(directory.glob(".swap.*.json"))) == 1, "the journal outlives the writer"
    if finished_by == "next writer":
        recover_record_store(workspace)
    stored = _sorted(read_stored_records(workspace, "declarations"))
    assert stored["note"].tolist() == ["amended", "amended"], "both months new, not one"
    assert not list(directory.rglob(".*")), "journal and temporary parts gone"
