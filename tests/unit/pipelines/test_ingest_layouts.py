"""Ingest into either record layout: the same records, duplicates and corrections either way,
and a partitioned store rewritten only in the months an import touches."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.record_store import read_stored_records, stored_layout
from data_contracts.workspace import PARTITION_COLUMN, OfflineLayout, Workspace
from pipelines.config import PipelineSettings
from pipelines.ingest import ingest_frame


def _result(control_id: str, controlled_at: str, **fields: object) -> dict[str, object]:
    return {
        "control_id": control_id, "subject_type": "declaration", "subject_id": "D1",
        "item_number": 1, "controlled_at": controlled_at, "control_type": "physical",
        "selection_reason": "rule", "outcome": "no_irregularity", "risk_area": None,
        "revenue_recovered_eur": 0.0, "seizure": False,
        "reported_at": controlled_at, **fields,
    }  # fmt: skip


def _ingest(workspace: Workspace, rows: list[dict[str, object]], layout: OfflineLayout) -> tuple:
    result = ingest_frame(workspace, "control-results", pd.DataFrame(rows), "t", layout=layout)
    return result.n_valid, result.n_replaced, result.n_unchanged


def _stored(workspace: Workspace) -> pd.DataFrame:
    frame = read_stored_records(workspace, "control-results")
    return frame.sort_values("control_id").reset_index(drop=True)


A = _result("A", "2026-04-01T10:00:00Z")
B = _result("B", "2026-05-03T10:00:00Z")
C = _result("C", "2026-06-03T10:00:00Z")


@pytest.mark.parametrize("layout", ["file", "partitioned"])
def test_duplicates_and_corrections_in_either_layout(tmp_path: Path, layout: OfflineLayout) -> None:
    workspace = Workspace.at(tmp_path)
    assert _ingest(workspace, [A, B, C], layout) == (3, 0, 0)
    months = workspace.record_dataset("control-results", "partitioned")
    june = months / f"{PARTITION_COLUMN}=2026-06" / "part-0.parquet"
    before = june.stat() if layout == "partitioned" else None

    corrected = {**A, "outcome": "irregularity", "risk_area": "financial",
                 "revenue_recovered_eur": 40.0, "reported_at": "2026-04-20T00:00:00Z"}  # fmt: skip
    moved = {**B, "controlled_at": "2026-04-28T10:00:00Z", "reported_at": "2026-04-29T00:00:00Z"}
    # A corrected, B's control time corrected into April, C sent again unchanged.
    assert _ingest(workspace, [corrected, moved, C], layout) == (3, 2, 1)

    assert stored_layout(workspace, "control-results") == layout
    stored = _stored(workspace)
    assert stored["revenue_recovered_eur"].tolist() == [40.0, 0.0, 0.0]
    assert stored["controlled_at"].dt.month.tolist() == [4, 4, 6]
    history = pd.read_parquet(workspace.control_results_history_file)
    assert sorted(history["control_id"]) == ["A", "B"], "both replaced versions kept"
    if before is not None:
        assert sorted(p.name for p in months.iterdir()) == [
            f"{PARTITION_COLUMN}=2026-04",
            f"{PARTITION_COLUMN}=2026-06",
        ], "May lost its only record"
        assert june.stat().st_mtime_ns == before.st_mtime_ns, "June was not rewritten"
    assert _ingest(workspace, [C], layout) == (1, 0, 1), "an unchanged resend writes nothing"


def test_both_layouts_store_the_same_and_a_layout_change_converts_once(tmp_path: Path) -> None:
    file, partitioned = Workspace.at(tmp_path / "f"), Workspace.at(tmp_path / "p")
    for workspace, layout in ((file, "file"), (partitioned, "partitioned")):
        _ingest(workspace, [A, B], layout)  # type: ignore[arg-type]
        _ingest(workspace, [{**B, "outcome": "irregularity", "risk_area": "ipr"}, C], layout)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(_stored(file), _stored(partitioned))

    # The file store under the partitioned setting: rewritten whole as months, the file gone.
    expected = _stored(file)
    _ingest(file, [C], "partitioned")
    assert stored_layout(file, "control-results") == "file", "nothing new: nothing rewritten"
    _ingest(file, [_result("D", "2026-07-01T00:00:00Z")], "partitioned")
    assert stored_layout(file, "control-results") == "partitioned"
    assert not file.record_file("control-results").exists()
    assert _stored(file).head(3).equals(expected)
    # Without a layout an import keeps the one on disk.
    _ingest(file, [_result("E", "2026-07-02T00:00:00Z")], None)  # type: ignore[arg-type]
    assert stored_layout(file, "control-results") == "partitioned"


def test_the_scale_profile_flips_the_records_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CRISK_PROFILE", "CRISK_RECORDS_LAYOUT"):
        monkeypatch.delenv(name, raising=False)
    assert PipelineSettings().records_layout == "file"
    monkeypatch.setenv("CRISK_PROFILE", "scale")
    monkeypatch.setenv("CRISK_POSTGRES_URL", "postgresql://crisk@db:5432/crisk")
    assert PipelineSettings().records_layout == "partitioned"
    monkeypatch.setenv("CRISK_RECORDS_LAYOUT", "file")
    assert PipelineSettings().records_layout == "file", "the component's own setting wins"
    monkeypatch.setenv("CRISK_RECORDS_LAYOUT", "delta")
    with pytest.raises(ValueError, match="records_layout"):
        PipelineSettings()


def test_imports_into_a_month_add_parts_until_it_is_compacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from data_contracts import record_store

    monkeypatch.setattr(record_store, "MAX_MONTH_PARTS", 3)
    workspace = Workspace.at(tmp_path)
    april = workspace.record_dataset("control-results", "partitioned") / (
        f"{PARTITION_COLUMN}=2026-04"
    )
    counts = []
    for day in range(1, 6):
        row = _result(f"A{day}", f"2026-04-{day:02d}T10:00:00Z")
        assert _ingest(workspace, [row], "partitioned") == (1, 0, 0)
        counts.append(len(list(april.glob("*.parquet"))))
    # One part per import; the import that finds 3 parts rewrites the month into one.
    assert counts == [1, 2, 3, 1, 2]
    assert sorted(_stored(workspace)["control_id"]) == [f"A{d}" for d in range(1, 6)]
