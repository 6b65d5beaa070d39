"""The feature store: no label leakage, no training/serving skew, cold starts, parity of engines."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureStoreSettings
from features.online import OnlineFeatureReader
from features.retrieval import entity_frame, historical_features
from features.services import SERVICE_FOR_SUBJECT
from features.store import apply_definitions
from features.tables import FeatureTableInputs, build_feature_tables, cutoff_of

pytestmark = pytest.mark.integration

DECLARATION_SERVICE = SERVICE_FOR_SUBJECT["declaration"]


def _feature_columns(frame: pd.DataFrame, entities: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in entities.columns]


def _assert_same_features(left: pd.DataFrame, right: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        np.testing.assert_allclose(
            left[column].to_numpy(dtype=float),
            right[column].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-9,
            equal_nan=True,
            err_msg=column,
        )


@pytest.fixture(scope="module")
def declarations(trained_workspace: Path) -> pd.DataFrame:
    return pd.read_parquet(trained_workspace / "data" / "declarations.parquet")


# subject -> (records file, event-time field, features that must be among the service's)
SUBJECTS = {
    "declaration": ("declarations.parquet", "lodged_at", ("price_z_score",)),
    "ens": (
        "ens.parquet",
        "filed_at",
        (
            "first_transit_hub_safety_security_hit_rate_365d",
            "last_transit_hub_safety_security_hit_rate_365d",
            "consignor_hit_rate_365d",
        ),
    ),
}


def _records(workspace: Path, subject: str) -> pd.DataFrame:
    return pd.read_parquet(workspace / "data" / SUBJECTS[subject][0])


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_offline_engines_agree(trained_workspace: Path, subject: str) -> None:
    """The DuckDB ASOF path equals Feast's own get_historical_features, row for row."""
    settings = FeatureStoreSettings(home=trained_workspace)
    service = SERVICE_FOR_SUBJECT[subject]
    sample = _records(trained_workspace, subject).sample(400, random_state=3)
    entities = entity_frame(sample, subject)
    by_feast = historical_features(settings, service, entities, engine="feast")
    by_duckdb = historical_features(settings, service, entities, engine="duckdb")
    columns = _feature_columns(by_feast, entities)
    assert len(columns) > 20
    assert set(SUBJECTS[subject][2]) <= set(columns)
    assert len(by_feast) == len(by_duckdb) == len(sample), "no entity row is dropped"
    _assert_same_features(by_feast, by_duckdb, columns)


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_online_features_equal_historical_features_at_the_same_time(
    trained_workspace: Path, subject: str
) -> None:
    """Training/serving skew: online values are the offline values as of the cut-off."""
    settings = FeatureStoreSettings(home=trained_workspace)
    service = SERVICE_FOR_SUBJECT[subject]
    records = _records(trained_workspace, subject)
    event = SUBJECTS[subject][1]
    # The online store holds the snapshot of the latest day any record of the world reached.
    cutoff = cutoff_of(_records(trained_workspace, "declaration")["lodged_at"])
    cutoff = max(cutoff, cutoff_of(records[event]))
    sample = records[records[event] < cutoff].sample(300, random_state=4).copy()
    sample[event] = cutoff + pd.Timedelta(hours=2)  # scored now, after the last snapshot
    entities = entity_frame(sample, subject)
    offline = historical_features(settings, service, entities, engine="duckdb")
    reader = OnlineFeatureReader(settings, service)
    online = pd.DataFrame(reader.get({c: entities[c].to_numpy() for c in entities.columns}))
    columns = _feature_columns(offline, entities)
    assert set(columns) <= set(online.columns)
    assert offline[columns].notna().mean().mean() > 0.5, "most entities have history"
    for name in SUBJECTS[subject][2]:
        assert offline[name].notna().any(), name
    _assert_same_features(offline.reset_index(drop=True), online, columns)
    # A second read is served from the cache and is identical.
    again = pd.DataFrame(reader.get({c: entities[c].to_numpy() for c in entities.columns}))
    _assert_same_features(online, again, columns)
    assert reader.hits > 0


def test_unknown_operator_gets_cold_start_values_not_an_error(
    trained_workspace: Path, declarations: pd.DataFrame
) -> None:
    settings = FeatureStoreSettings(home=trained_workspace)
    item = declarations.head(1).copy()
    item["importer_id"] = "NL999999999999"
    item["seller_id"] = None
    entities = entity_frame(item, "declaration")
    online = OnlineFeatureReader(settings, DECLARATION_SERVICE).get(
        {c: entities[c].to_numpy() for c in entities.columns}
    )
    assert np.isnan(online["importer_declarations_365d"][0])
    assert np.isnan(online["importer_hit_rate_365d"][0])
    assert np.isnan(online["seller_hit_rate_365d"][0])
    assert np.isfinite(online["commodity_declarations_365d"][0]), "known entities still resolve"


def _world_tables(
    home: Path,
    declarations: pd.DataFrame,
    controls: pd.DataFrame,
    source: Path,
    history: pd.DataFrame | None = None,
) -> Path:
    data = home / "data"
    data.mkdir(parents=True, exist_ok=True)
    declarations.to_parquet(data / "declarations.parquet")
    controls.to_parquet(data / "control_results.parquet")
    if history is not None:
        history.to_parquet(data / "control_results_history.parquet")
    shutil.copy(source / "data" / "operators.parquet", data / "operators.parquet")
    tables = home / "feast" / "tables"
    build_feature_tables(
        FeatureTableInputs(
            declarations=data / "declarations.parquet",
            control_results=data / "control_results.parquet",
            operators=data / "operators.parquet",
            control_results_history=data / "control_results_history.parquet",
        ),
        tables,
    )
    return tables


def test_a_later_control_result_never_changes_earlier_features(
    trained_workspace: Path, declarations: pd.DataFrame, tmp_path: Path
) -> None:
    """Label leakage: an outcome dated after a lodgement cannot reach that item's features."""
    controls = pd.read_parquet(trained_workspace / "data" / "control_results.parquet")
    # A busy importer, one of its items in the middle of the year, and an earlier item of the
    # same importer that was never controlled (the finding we add is then its only outcome).
    busiest = declarations["importer_id"].value_counts().index[0]
    own = declarations[declarations["importer_id"] == busiest].sort_values("lodged_at")
    target = own.iloc[len(own) // 2]
    controlled = set(controls["subject_id"])
    earlier = own[
        (own["lodged_at"] < target["lodged_at"].normalize() - pd.Timedelta(days=2))
        & ~own["declaration_id"].isin(controlled)
    ]
    other = earlier.iloc[-1]
    finding = {
        "control_id": "LEAK-1", "subject_type": "declaration",
        "subject_id": other["declaration_id"],
        "item_number": int(other["item_number"]), "control_type": "physical",
        "selection_reason": "other", "outcome": "irregularity", "risk_area": "financial",
        "revenue_recovered_eur": 5000.0, "seizure": False, "note": None,
    }  # fmt: skip

    def features_with(controlled_at: pd.Timestamp, name: str) -> pd.DataFrame:
        extra = pd.DataFrame([{**finding, "controlled_at": controlled_at}])
        extra["item_number"] = extra["item_number"].astype("Int64")
        home = tmp_path / name
        _world_tables(
            home, declarations, pd.concat([controls, extra], ignore_index=True), trained_workspace
        )
        settings = FeatureStoreSettings(home=home)
        apply_definitions(settings)
        entities = entity_frame(pd.DataFrame([target]), "declaration")
        return historical_features(settings, DECLARATION_SERVICE, entities, engine="duckdb")

    baseline_home = tmp_path / "baseline"
    _world_tables(baseline_home, declarations, controls, trained_workspace)
    apply_definitions(FeatureStoreSettings(home=baseline_home))
    entities = entity_frame(pd.DataFrame([target]), "declaration")
    baseline = historical_features(
        FeatureStoreSettings(home=baseline_home), DECLARATION_SERVICE, entities
    )
    columns = _feature_columns(baseline, entities)

    after = features_with(target["lodged_at"] + pd.Timedelta(hours=1), "after")
    _assert_same_features(baseline, after, columns)

    # The same finding known the day before the lodgement does change the features: the test
    # above would notice leakage.
    before = features_with(target["lodged_at"].normalize() - pd.Timedelta(hours=12), "before")
    irregularities = "importer_irregularities_365d"
    assert before[irregularities].iloc[0] == baseline[irregularities].iloc[0] + 1


def _busy_importer_items(
    declarations: pd.DataFrame, controls: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """An item in the middle of a busy importer's year, and an earlier uncontrolled item."""
    busiest = declarations["importer_id"].value_counts().index[0]
    own = declarations[declarations["importer_id"] == busiest].sort_values("lodged_at")
    target = own.iloc[len(own) // 2]
    earlier = own[
        (own["lodged_at"] < target["lodged_at"].normalize() - pd.Timedelta(days=5))
        & ~own["declaration_id"].isin(set(controls["subject_id"]))
    ]
    return target, earlier.iloc[-1]


def _finding(item: pd.Series, **fields: object) -> dict[str, object]:
    return {
        "control_id": "TIMING-1", "subject_type": "declaration",
        "subject_id": item["declaration_id"], "item_number": int(item["item_number"]),
        "controlled_at": item["lodged_at"] + pd.Timedelta(hours=2),
        "reported_at": item["lodged_at"] + pd.Timedelta(hours=3),
        "control_type": "post_release_audit", "selection_reason": "rule",
        "outcome": "irregularity", "risk_area": "financial", "revenue_recovered_eur": 900.0,
        "seizure": False, "note": None, **fields,
    }  # fmt: skip


def _with(controls: pd.DataFrame, *rows: dict[str, object]) -> pd.DataFrame:
    extra = pd.DataFrame(list(rows))
    extra["item_number"] = extra["item_number"].astype("Int64")
    for name in ("controlled_at", "reported_at"):
        extra[name] = pd.to_datetime(extra[name], utc=True)
    return pd.concat([controls, extra], ignore_index=True)


def _features_of(
    home: Path,
    item: pd.Series,
    declarations: pd.DataFrame,
    controls: pd.DataFrame,
    source: Path,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    _world_tables(home, declarations, controls, source, history)
    settings = FeatureStoreSettings(home=home)
    apply_definitions(settings)
    entities = entity_frame(pd.DataFrame([item]), "declaration")
    return historical_features(settings, DECLARATION_SERVICE, entities, engine="duckdb")


def test_a_result_reported_after_a_declaration_never_reaches_its_features(
    trained_workspace: Path, declarations: pd.DataFrame, tmp_path: Path
) -> None:
    """Outcome timing: controlled days before the lodgement, but reported after it."""
    controls = pd.read_parquet(trained_workspace / "data" / "control_results.parquet")
    target, other = _busy_importer_items(declarations, controls)
    baseline = _features_of(
        tmp_path / "baseline", target, declarations, controls, trained_workspace
    )
    columns = _feature_columns(baseline, entity_frame(pd.DataFrame([target]), "declaration"))
    late = _finding(other, reported_at=target["lodged_at"] + pd.Timedelta(minutes=5))
    reported_late = _features_of(
        tmp_path / "late", target, declarations, _with(controls, late), trained_workspace
    )
    _assert_same_features(baseline, reported_late, columns)
    early = _finding(other)  # reported soon after the control, days before the lodgement
    reported_early = _features_of(
        tmp_path / "early", target, declarations, _with(controls, early), trained_workspace
    )
    name = "importer_irregularities_365d"
    assert reported_early[name].iloc[0] == baseline[name].iloc[0] + 1, "the test can see it"


def test_a_later_correction_never_changes_a_past_feature_value(
    trained_workspace: Path, declarations: pd.DataFrame, tmp_path: Path
) -> None:
    """A clean result, corrected to an irregularity after the lodgement: the lodgement's
    features keep the clean result; a later lodgement sees the correction."""
    controls = pd.read_parquet(trained_workspace / "data" / "control_results.parquet")
    target, other = _busy_importer_items(declarations, controls)
    clean = _finding(other, outcome="no_irregularity", risk_area=None, revenue_recovered_eur=0.0)
    before = _features_of(
        tmp_path / "before", target, declarations, _with(controls, clean), trained_workspace
    )
    corrected = _finding(other, reported_at=target["lodged_at"] + pd.Timedelta(hours=1))
    history = _with(controls.iloc[:0], clean)
    after = _features_of(
        tmp_path / "after", target, declarations, _with(controls, corrected), trained_workspace,
        history,
    )  # fmt: skip
    columns = _feature_columns(before, entity_frame(pd.DataFrame([target]), "declaration"))
    _assert_same_features(before, after, columns)
    later = target.copy()
    later["lodged_at"] = target["lodged_at"] + pd.Timedelta(days=2)
    settings = FeatureStoreSettings(home=tmp_path / "after")
    seen = historical_features(
        settings, DECLARATION_SERVICE, entity_frame(pd.DataFrame([later]), "declaration")
    )
    name = "importer_irregularities_365d"
    assert seen[name].iloc[0] >= before[name].iloc[0] + 1


def test_feast_cli_accepts_the_repository(trained_workspace: Path) -> None:
    """`feast plan` in features/ (Feast's own CLI) finds every object once (no conflicts)."""
    import subprocess
    import sys

    import features

    env = {
        **os.environ,
        "CRISK_FEAST_DIR": str(trained_workspace / "feast"),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("feast")), "plan"],
        cwd=Path(features.__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Conflicting" not in output
    # The workspace registered every view the repository defines: nothing to create or delete.
    assert "Created feature view" not in output and "Deleted" not in output, output[-3000:]
    assert "Could not validate FileSource" not in output, "sources name the workspace's tables"
