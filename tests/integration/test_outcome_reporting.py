"""Outcome timing in the data store: reporting times filled from the configured delays, and
every version of a corrected control result kept for the feature tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_contracts.workspace import Workspace
from pipelines.config import PipelineSettings
from pipelines.ingest import DEFAULT_REPORTING_DELAY_DAYS, ingest_frame

pytestmark = pytest.mark.integration

CONTROLLED = pd.Timestamp("2026-04-01T10:00:00Z")


def _result(control_id: str, control_type: str, **fields: object) -> dict[str, object]:
    return {
        "control_id": control_id, "subject_type": "declaration", "subject_id": "D1",
        "item_number": 1, "controlled_at": CONTROLLED.isoformat(), "control_type": control_type,
        "selection_reason": "rule", "outcome": "no_irregularity", "risk_area": None,
        "revenue_recovered_eur": 0.0, "seizure": False, **fields,
    }  # fmt: skip


def _ingest(workspace: Workspace, rows: list[dict[str, object]], delays: dict[str, float]) -> None:
    ingest_frame(workspace, "control-results", pd.DataFrame(rows), "test", reporting_delays=delays)


def test_reported_at_is_filled_from_the_control_type_delay(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path)
    delays = PipelineSettings(home=tmp_path, reporting_delay_days={"post_release_audit": 60})
    assert delays.reporting_delay_days["physical"] == DEFAULT_REPORTING_DELAY_DAYS["physical"]
    given = (CONTROLLED + pd.Timedelta(hours=5)).isoformat()
    _ingest(
        workspace,
        [
            _result("A", "physical"),
            _result("B", "post_release_audit"),
            _result("C", "documentary", reported_at=given),
        ],
        delays.reporting_delay_days,
    )
    stored = pd.read_parquet(workspace.record_file("control-results")).set_index("control_id")
    known = stored["reported_at"] - CONTROLLED
    assert known["A"] == pd.Timedelta(days=DEFAULT_REPORTING_DELAY_DAYS["physical"])
    assert known["B"] == pd.Timedelta(days=60)
    assert known["C"] == pd.Timedelta(hours=5), "a given reporting time is kept"


def test_settings_refuse_an_unknown_control_type_or_a_negative_delay(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"reporting_delay_days\.x_ray"):
        PipelineSettings(home=tmp_path, reporting_delay_days={"x_ray": 1})
    with pytest.raises(ValueError, match="negative"):
        PipelineSettings(home=tmp_path, reporting_delay_days={"scan": -1})


def test_a_correction_keeps_every_earlier_version_in_order(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path)
    delays = DEFAULT_REPORTING_DELAY_DAYS
    first = _result("A", "physical", reported_at="2026-04-02T00:00:00Z")
    _ingest(workspace, [first], delays)
    _ingest(workspace, [first], delays)  # an unchanged resend is no new version
    assert not workspace.control_results_history_file.exists()

    second = {**first, "outcome": "irregularity", "risk_area": "financial",
              "revenue_recovered_eur": 50.0, "reported_at": "2026-05-01T00:00:00Z"}  # fmt: skip
    third = {**second, "revenue_recovered_eur": 80.0, "reported_at": "2026-06-01T00:00:00Z"}
    # The second and third versions arrive in one file: the batch keeps the newest, and the
    # one it superseded is history too (it was reported, and counted, before the third).
    _ingest(workspace, [second, third], delays)

    stored = pd.read_parquet(workspace.record_file("control-results"))
    assert stored["revenue_recovered_eur"].tolist() == [80.0]
    history = pd.read_parquet(workspace.control_results_history_file)
    assert history["control_id"].tolist() == ["A", "A"]
    assert history["reported_at"].dt.month.tolist() == [4, 5], "oldest first"
    assert history["outcome"].tolist() == ["no_irregularity", "irregularity"]
