"""Outcome timing in the feature tables: an outcome counts from its report, a correction from its
own report, the version it corrected until then (tiny handwritten worlds, DuckDB only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.tables import FeatureTableInputs, build_feature_tables
from features.tables.records import item_outcome_deltas, outcome_versions

DAY0 = pd.Timestamp("2026-03-02", tz="UTC")


def day(n: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


def _declarations(lodged_days: list[float], importer: str = "NL000000000001") -> pd.DataFrame:
    n = len(lodged_days)
    return pd.DataFrame(
        {
            "declaration_id": [f"D{i:03d}" for i in range(n)],
            "item_number": np.ones(n, dtype=np.int64),
            "lodged_at": [day(d) for d in lodged_days],
            "importer_id": importer,
            "declarant_id": "NL000000000009",
            "seller_id": "S1",
            "hs_code": "6109100010",
            "origin_country": "CN",
            "dispatch_country": "CN",
            "transport_mode": 4,
            "customs_value_eur": 100.0,
            "net_mass_kg": 10.0,
            "warning_vague_description": False,
        }
    )


def _result(
    control_id: str,
    subject: str,
    *,
    controlled: float,
    reported: float | None,
    outcome: str = "no_irregularity",
    item_number: int | None = 1,
) -> dict[str, object]:
    return {
        "control_id": control_id,
        "subject_type": "declaration",
        "subject_id": subject,
        "item_number": item_number,
        "controlled_at": day(controlled),
        "reported_at": None if reported is None else day(reported),
        "control_type": "documentary",
        "selection_reason": "rule",
        "outcome": outcome,
        "risk_area": "financial" if outcome == "irregularity" else None,
        "revenue_recovered_eur": 120.0 if outcome == "irregularity" else 0.0,
        "seizure": False,
        "note": None,
    }


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["item_number"] = frame["item_number"].astype("Int64")
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True)
    return frame


def _importer_history(
    tmp_path: Path,
    declarations: pd.DataFrame,
    results: pd.DataFrame,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The importer's control-history table, by snapshot day (0 = DAY0)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    declarations.to_parquet(tmp_path / "declarations.parquet")
    results.to_parquet(tmp_path / "control_results.parquet")
    history_path = None
    if history is not None:
        history_path = tmp_path / "history.parquet"
        history.to_parquet(history_path)
    tables = build_feature_tables(
        FeatureTableInputs(
            declarations=tmp_path / "declarations.parquet",
            control_results=tmp_path / "control_results.parquet",
            control_results_history=history_path,
        ),
        tmp_path / "tables",
    )
    table = pd.read_parquet(tables.written["importer_hit_rate_365d"])
    table["day"] = (table["event_timestamp"] - DAY0).dt.days
    return table.set_index("day")


def test_an_outcome_counts_from_the_day_after_it_was_reported(tmp_path: Path) -> None:
    """Controlled on day 3, reported on day 10: invisible to a declaration of day 6."""
    declarations = _declarations(list(range(0, 20)))
    results = _frame([_result("C1", "D002", controlled=3.5, reported=10.2, outcome="irregularity")])
    table = _importer_history(tmp_path, declarations, results)
    controls = table["importer_controls_365d"]
    assert controls.loc[6] == 0, "controlled before the day-6 declaration, but not yet reported"
    assert controls.loc[10] == 0, "reported during day 10: counted from the next day start"
    assert controls.loc[11] == 1
    assert table["importer_irregularities_365d"].loc[11] == 1
    assert table["importer_revenue_recovered_365d"].loc[11] == pytest.approx(120.0)


def test_without_reported_at_an_outcome_counts_from_the_day_after_the_control(
    tmp_path: Path,
) -> None:
    declarations = _declarations(list(range(0, 10)))
    results = _frame([_result("C1", "D002", controlled=3.5, reported=None)])
    controls = _importer_history(tmp_path, declarations, results)["importer_controls_365d"]
    assert controls.loc[3] == 0
    assert controls.loc[4] == 1


def test_a_correction_supersedes_from_its_own_report_and_never_changes_the_past(
    tmp_path: Path,
) -> None:
    """No irregularity reported on day 5, corrected to an irregularity reported on day 12."""
    declarations = _declarations(list(range(0, 20)))
    first = _frame([_result("C1", "D001", controlled=2.0, reported=5.0)])
    before = _importer_history(tmp_path / "before", declarations, first)
    corrected = _frame(
        [_result("C1", "D001", controlled=2.0, reported=12.0, outcome="irregularity")]
    )
    after = _importer_history(tmp_path / "after", declarations, corrected, history=first)

    past = before.index <= 12
    pd.testing.assert_frame_equal(before[past], after[past])
    irregular = after["importer_irregularities_365d"]
    assert irregular.loc[12] == 0 and irregular.loc[13] == 1
    assert after["importer_controls_365d"].loc[13] == 1, "the same control, counted once"
    assert before["importer_irregularities_365d"].loc[19] == 0


def test_an_outcome_leaves_the_window_365_days_after_its_control(tmp_path: Path) -> None:
    declarations = _declarations([0, 1, 300, 365, 366, 367])
    results = _frame([_result("C1", "D000", controlled=1.0, reported=2.0)])
    controls = _importer_history(tmp_path, declarations, results)["importer_controls_365d"]
    assert controls.loc[300] == 1
    assert controls.loc[366] == 1, "controlled on day 1: inside [day 1, day 365] of day 366"
    assert controls.loc[367] == 0


def test_a_result_without_item_number_applies_to_every_item_of_the_declaration(
    tmp_path: Path,
) -> None:
    declarations = _declarations([0, 0, 5])
    declarations.loc[1, ["declaration_id", "item_number"]] = ["D000", 2]
    results = _frame([_result("C1", "D000", controlled=1.0, reported=1.5, item_number=None)])
    controls = _importer_history(tmp_path, declarations, results)["importer_controls_365d"]
    assert controls.loc[5] == 2


def test_item_state_aggregates_the_versions_valid_on_each_day(tmp_path: Path) -> None:
    """Two controls of one item (a check, then an audit finding): counted as one controlled
    item, irregular from the audit's report on, and back to nothing when both expire."""
    path = tmp_path / "results.parquet"
    _frame(
        [
            _result("C1", "D000", controlled=1.0, reported=1.0),
            _result("C2", "D000", controlled=40.0, reported=80.0, outcome="irregularity"),
        ]
    ).to_parquet(path)
    deltas = item_outcome_deltas(outcome_versions(path, None, "declaration"))
    by_day = deltas.set_index("day")
    first = int((day(1.0) - pd.Timestamp(0, tz="UTC")).days)
    assert by_day.loc[first + 1, "d_controls"] == 1
    assert by_day.loc[first + 80, "d_irr"] == 1
    assert by_day.loc[first + 80, "d_controls"] == 0, "still one controlled item"
    assert deltas["d_controls"].sum() == 0 and deltas["d_irr"].sum() == 0, "all expire"
