"""The monitoring indicators on tiny hand-written control results."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from serving.indicators import IndicatorInputs, compute_indicators, wilson_interval


def _results(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows,
        columns=[
            "control_id",
            "subject_id",
            "controlled_at",
            "control_type",
            "selection_reason",
            "outcome",
            "risk_area",
        ],
    )
    frame["subject_type"] = "declaration"
    frame["controlled_at"] = pd.to_datetime(frame["controlled_at"], utc=True)
    frame["revenue_recovered_eur"] = [
        100.0 if o == "irregularity" else 0.0 for o in frame["outcome"]
    ]
    frame["seizure"] = False
    return frame


RESULTS = _results(
    [
        ("C1", "D1", "2026-03-01", "physical", "random", "irregularity", "financial"),
        ("C2", "D2", "2026-03-02", "physical", "random", "no_irregularity", None),
        ("C3", "D3", "2026-03-03", "physical", "random", "no_irregularity", None),
        ("C4", "D4", "2026-03-04", "documentary", "model", "irregularity", "ipr"),
        ("C5", "D5", "2026-03-05", "documentary", "rule", "no_irregularity", None),
        ("C6", "D6", "2026-04-10", "scan", "model", "irregularity", "financial"),
    ]
)
SUBJECTS = pd.DataFrame(
    {
        "subject_type": "declaration",
        "subject_id": ["D1", "D2", "D3", "D4", "D5", "D6"],
        "transport_mode": ["1", "1", "4", "4", "4", "3"],
        "operator_id": ["AEO1", "X1", "X1", "X2", "AEO1", "X3"],
    }
)
REGISTER = pd.Series({"AEO1": True, "X1": False, "X2": False})


def _inputs(register: pd.Series | None = REGISTER) -> IndicatorInputs:
    return IndicatorInputs(RESULTS, SUBJECTS, register, None)


def test_controls_by_type_and_reason() -> None:
    table = compute_indicators(_inputs()).get("controls_by_type_and_reason").table
    table = table.set_index("control type")
    assert table.loc["physical", "random"] == 3
    assert table.loc["documentary", "electronic risk analysis (model + rule)"] == 2
    assert table.loc["all types", "total"] == 6


def test_hit_rates_get_intervals_only_on_random_controls() -> None:
    rates = compute_indicators(_inputs()).get("hit_rate_by_type_and_selection").table
    random = rates[(rates["control type"] == "physical") & (rates["selection"] == "random")].iloc[0]
    assert (random["controls"], random["irregularities"]) == (3, 1)
    assert random["hit rate"] == pytest.approx(1 / 3)
    assert (random["95% interval low"], random["95% interval high"]) == pytest.approx(
        wilson_interval(1, 3)
    )
    model = rates[rates["selection"] == "model"]
    assert model["95% interval low"].isna().all()
    assert set(model["estimate"]) == {"targeted (biased)"}


def test_aeo_status_from_the_register_and_unknown_without_it() -> None:
    aeo = compute_indicators(_inputs()).get("irregularities_aeo_vs_non_aeo").table
    counts = aeo[aeo["basis"] == "all controls"].set_index("AEO status")["controls"].to_dict()
    assert counts == {"aeo": 2, "non_aeo": 3, "unknown": 1}
    without = compute_indicators(_inputs(None)).get("irregularities_aeo_vs_non_aeo")
    assert set(without.table["AEO status"]) == {"unknown"}
    assert "No operator register" in without.notes[0]


def test_hits_per_area_and_transport_mode() -> None:
    report = compute_indicators(_inputs())
    areas = report.get("hits_by_risk_area").table.set_index("risk area")
    assert areas["irregularities"].to_dict() == {"financial": 2, "ipr": 1}
    assert areas.loc["financial", "found by random controls"] == 1
    assert areas.loc["financial", "revenue recovered EUR"] == 200.0
    modes = report.get("hits_by_transport_mode").table.set_index("transport mode")
    assert modes.loc["4 air", "controls"] == 3 and modes.loc["4 air", "irregularities"] == 1
    assert modes.loc["1 sea", "random controls"] == 2


def test_a_period_and_a_report_without_random_controls_says_it_is_biased() -> None:
    report = compute_indicators(_inputs(), date(2026, 3, 4), date(2026, 4, 30))
    assert report.n_controls == 3 and report.n_random == 0
    assert any("No random controls" in n and "biased" in n for n in report.notes)
    assert any("No audit log" in n for n in report.notes)


@pytest.mark.parametrize(("hits", "n"), [(0, 10), (5, 10), (10, 10), (1, 1000)])
def test_wilson_interval_contains_the_rate(hits: int, n: int) -> None:
    low, high = wilson_interval(hits, n)
    assert 0.0 <= low <= hits / n <= high <= 1.0
