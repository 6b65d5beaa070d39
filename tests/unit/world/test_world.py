"""The synthetic world: reproducible, and labelled only where customs controlled."""

from __future__ import annotations

import numpy as np
import pandas as pd

from world.generate import WorldConfig, generate_world


def test_same_seed_gives_the_same_world() -> None:
    first = generate_world(WorldConfig(seed=3, declarations=3_000))
    second = generate_world(WorldConfig(seed=3, declarations=3_000))
    for name in ("declarations", "ens", "control_results", "operators", "ground_truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


def test_another_seed_gives_another_world() -> None:
    first = generate_world(WorldConfig(seed=3, declarations=3_000))
    other = generate_world(WorldConfig(seed=4, declarations=3_000))
    assert not first.declarations["declaration_id"].equals(other.declarations["declaration_id"])


def test_labels_exist_only_for_controlled_rows(small_world) -> None:
    declarations = small_world.declarations
    observable = " ".join(declarations.columns)
    assert "irregular" not in observable and "p_" not in observable, "no truth in the feeds"
    controls = small_world.control_results
    declared = controls[controls["subject_type"] == "declaration"]
    keys = set(zip(declarations["declaration_id"], declarations["item_number"], strict=True))
    labelled = set(zip(declared["subject_id"], declared["item_number"].astype(int), strict=True))
    assert labelled <= keys, "every control result is about a declared item"
    assert 0 < len(labelled) < 0.15 * len(keys), "only a small share of items is controlled"
    ens_ids = set(small_world.ens["ens_id"])
    assert set(controls.loc[controls["subject_type"] == "ens", "subject_id"]) <= ens_ids


def test_controls_happen_after_lodgement(small_world) -> None:
    items = small_world.declarations.drop_duplicates(["declaration_id", "item_number"], keep="last")
    controls = small_world.control_results
    joined = controls[controls["subject_type"] == "declaration"].merge(
        items, left_on=["subject_id", "item_number"], right_on=["declaration_id", "item_number"]
    )
    assert (joined["controlled_at"] >= joined["lodged_at"]).all()


def test_ground_truth_covers_every_row_and_is_consistent(small_world) -> None:
    truth = small_world.ground_truth
    items = small_world.declarations.drop_duplicates(["declaration_id", "item_number"])
    assert (truth["subject_type"] == "declaration").sum() == len(items)
    assert (truth["subject_type"] == "ens").sum() == small_world.ens["ens_id"].nunique()
    for area in ("financial", "ipr", "safety_security"):
        p = truth[f"p_{area}"].to_numpy()
        assert ((p >= 0) & (p <= 1)).all()
        realised = truth[f"irregular_{area}"].mean()
        assert abs(realised - p.mean()) < 0.02, f"{area}: realised rate follows the probabilities"
    financial = truth["irregular_financial"].to_numpy()
    assert (truth.loc[~financial, "recoverable_revenue_eur"] == 0).all()


def test_irregular_outcomes_name_a_risk_area(small_world) -> None:
    controls = small_world.control_results
    irregular = controls[controls["outcome"] == "irregularity"]
    assert irregular["risk_area"].notna().all()
    assert (controls["revenue_recovered_eur"] >= 0).all()
    assert set(controls["selection_reason"]) <= {"rule", "random", "other", "model"}
    assert np.isin(
        controls["control_type"], ["documentary", "physical", "scan", "post_release_audit"]
    ).all()


def test_outcomes_are_known_when_reported(small_world) -> None:
    controls = small_world.control_results
    delay = (controls["reported_at"] - controls["controlled_at"]).dt.total_seconds() / 3600
    assert (delay >= 0).all(), "an outcome is never known before its control"
    clean = controls["outcome"] == "no_irregularity"
    same_day = controls["control_type"].isin(["physical", "scan"]) & clean
    assert (delay[same_day] <= 10).all(), "a clean physical check or scan is known the same day"
    audits = controls["control_type"] == "post_release_audit"
    assert (delay[audits] >= 14 * 24).all(), "an audit report takes weeks"
    end = pd.Timestamp(small_world.config.start, tz="UTC") + pd.Timedelta(
        weeks=small_world.config.weeks
    )
    assert (controls["reported_at"] <= end).all(), "results not reported yet do not exist"


def test_the_planted_scheme_starts_mid_way_and_lives_only_in_the_ground_truth() -> None:
    world = generate_world(WorldConfig(seed=5, declarations=20_000))
    truth = world.ground_truth[world.ground_truth["subject_type"] == "declaration"]
    week = (truth["event_at"] - pd.Timestamp(world.config.start, tz="UTC")).dt.days // 7
    scheme = truth["origin_misdeclared"].to_numpy()
    assert scheme.any() and (week[scheme] >= world.config.shift.start_week).all()
    assert truth.loc[scheme, "irregular_financial"].all()
    assert (truth.loc[scheme, "recoverable_revenue_eur"] > 0).all()
    assert "origin_fraud" in world.ground_truth_operators
    observable = set(world.declarations.columns) | set(world.operators.columns)
    assert not {"origin_misdeclared", "origin_fraud"} & observable


def test_the_scheme_launders_through_one_country_so_its_declared_origin_shows_where() -> None:
    world = generate_world(WorldConfig(seed=5, declarations=20_000))
    truth = world.ground_truth[world.ground_truth["subject_type"] == "declaration"]
    scheme = truth.loc[truth["origin_misdeclared"].astype(bool), ["subject_id", "item_number"]]
    items = world.declarations.merge(
        scheme.rename(columns={"subject_id": "declaration_id"}),
        on=["declaration_id", "item_number"],
    )
    assert len(items) == len(scheme) > 0
    assert set(items["origin_country"]) == {world.config.shift.country}
    sellers = world.ground_truth_operators.loc[world.ground_truth_operators["origin_fraud"]]
    assert sellers["operator_id"].str.startswith(world.config.shift.country).all()


def test_without_the_scheme_nothing_is_misdeclared() -> None:
    from world.drift import FraudShift

    world = generate_world(WorldConfig(seed=5, declarations=5_000, shift=FraudShift(None)))
    assert not world.ground_truth["origin_misdeclared"].fillna(False).astype(bool).any()
