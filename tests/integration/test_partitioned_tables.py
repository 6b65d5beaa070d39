"""The partitioned offline layout gives what the file layout gives: tables, features, online.

The session workspace's tables are one Parquet file per view (the default layout). Its data
store (read only) is rebuilt here once with ``CRISK_FEATURES_OFFLINE_LAYOUT=partitioned`` into
a workspace of its own, registered and materialised there; every reader must see the same
rows. A declarations-only workspace runs ``crisk features materialize`` with that layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_contracts.inventory import MISSING_KIND_NOTES
from data_contracts.offline_data import existing_dataset, partition_values, read_dataset
from data_contracts.workspace import PARTITION_COLUMN, Workspace
from features.config import FeatureStoreSettings
from features.online import OnlineFeatureReader
from features.retrieval import entity_frame, historical_features
from features.services import SERVICE_FOR_SUBJECT
from features.store import apply_definitions, materialize
from features.tables import BUILDERS, FeatureTableInputs, build_tables, cutoff_of

pytestmark = pytest.mark.integration

SUBJECTS = {"declaration": ("declarations", "lodged_at"), "ens": ("ens", "filed_at")}


@pytest.fixture(scope="module")
def partitioned(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("partitioned")
    settings = FeatureStoreSettings(home=home, offline_layout="partitioned")
    inputs = FeatureTableInputs.of(Workspace.at(trained_workspace))
    tables = build_tables(settings, inputs, Workspace.at(home).feature_tables_dir)
    apply_definitions(settings)
    materialize(settings, end=tables.cutoff.to_pydatetime() + pd.Timedelta(hours=1))
    return home


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    order = [frame.columns[0], "event_timestamp"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def _assert_same_features(left: pd.DataFrame, right: pd.DataFrame, columns: list[str]) -> None:
    for name in columns:
        np.testing.assert_allclose(
            np.asarray(left[name], dtype=float), np.asarray(right[name], dtype=float),
            rtol=1e-12, atol=0, equal_nan=True, err_msg=name,
        )  # fmt: skip


def test_partitioned_tables_equal_the_file_tables(
    trained_workspace: Path, partitioned: Path
) -> None:
    """Same rows, columns and values; one directory of month partitions per view, nothing else."""
    files, parts = Workspace.at(trained_workspace), Workspace.at(partitioned)
    assert sorted(p.name for p in parts.feature_tables_dir.iterdir()) == sorted(
        b.view for b in BUILDERS
    ), "a directory per view, no file of the file layout, no staging leftovers"
    for builder in BUILDERS:
        directory = parts.feature_table(builder.view, "partitioned")
        expected = _sorted(read_dataset(files.feature_table(builder.view)))
        actual = _sorted(read_dataset(directory))
        assert len(expected) > 0, builder.view
        pd.testing.assert_frame_equal(actual, expected, check_dtype=False, obj=builder.view)
        # Parquet written by an engine stores timestamps in microseconds (pandas wrote the
        # file's in nanoseconds): the same instants, every other dtype the same.
        dtypes = [re.sub(r"\[(s|ms|ns),", "[us,", str(t)) for t in expected.dtypes]
        assert list(actual.dtypes.astype(str)) == dtypes, builder.view
        months = {f"{PARTITION_COLUMN}={m}" for m in partition_values(expected["event_timestamp"])}
        assert {p.name for p in directory.iterdir()} == months, builder.view


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_historical_features_are_the_same_on_both_layouts(
    trained_workspace: Path, partitioned: Path, subject: str
) -> None:
    """The DuckDB ASOF join and Feast's own join on the partitioned tables equal the DuckDB
    join on the files (itself proven equal to Feast's in test_feature_store)."""
    kind, _ = SUBJECTS[subject]
    records = pd.read_parquet(trained_workspace / "data" / f"{kind}.parquet")
    entities = entity_frame(records.sample(300, random_state=8), subject)
    service = SERVICE_FOR_SUBJECT[subject]
    on_files = historical_features(FeatureStoreSettings(home=trained_workspace), service, entities)
    on_parts = FeatureStoreSettings(home=partitioned)
    by_duckdb = historical_features(on_parts, service, entities, engine="duckdb")
    by_feast = historical_features(on_parts, service, entities, engine="feast")
    assert list(by_duckdb.columns) == list(on_files.columns), "no partition column leaks"
    assert PARTITION_COLUMN not in by_feast.columns
    columns = [c for c in on_files.columns if c not in entities.columns]
    assert on_files[columns].notna().mean().mean() > 0.5, "most entities have history"
    _assert_same_features(by_duckdb, on_files, columns)
    _assert_same_features(by_feast.reset_index(drop=True), on_files.reset_index(drop=True), columns)


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_online_store_loaded_from_partitions_serves_the_same_values(
    trained_workspace: Path, partitioned: Path, subject: str
) -> None:
    kind, event = SUBJECTS[subject]
    records = pd.read_parquet(trained_workspace / "data" / f"{kind}.parquet")
    cutoff = cutoff_of(records[event]) + pd.Timedelta(hours=2)
    entities = entity_frame(records.sample(200, random_state=9).assign(**{event: cutoff}), subject)
    request = {c: entities[c].to_numpy() for c in entities.columns}
    service = SERVICE_FOR_SUBJECT[subject]
    expected = OnlineFeatureReader(FeatureStoreSettings(home=trained_workspace), service).get(
        request
    )
    actual = OnlineFeatureReader(FeatureStoreSettings(home=partitioned), service).get(request)
    assert sorted(actual) == sorted(expected)
    rate = "importer_hit_rate_365d" if kind == "declarations" else "consignor_hit_rate_365d"
    assert np.isfinite(np.asarray(actual[rate], dtype=float)).any(), "the sample has history"
    _assert_same_features(actual, expected, [c for c in expected if c not in request])


def test_declarations_only_workspace_with_the_partitioned_layout(
    trained_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ENS, no operator register: the materialize step (what `crisk features materialize`
    runs) with the partitioned layout writes partitions for the views it can feed and none for
    the others, the workspace says in one line each what it lacks, and both offline engines
    read the partitions (the register's features missing, as for a cold start)."""
    from pipelines.config import PipelineSettings
    from pipelines.steps import materialize_features, workspace_notes

    home = tmp_path / "administration"
    data = Workspace.at(home).ensure().data_dir
    # The first ten weeks of the world: enough history for every declaration view, cheap.
    records = pd.read_parquet(trained_workspace / "data" / "declarations.parquet")
    records = records[records["lodged_at"] < records["lodged_at"].min() + pd.Timedelta(weeks=10)]
    records.to_parquet(data / "declarations.parquet", index=False)
    controls = pd.read_parquet(trained_workspace / "data" / "control_results.parquet")
    controls[controls["subject_id"].isin(set(records["declaration_id"]))].to_parquet(
        data / "control_results.parquet", index=False
    )
    monkeypatch.delenv("CRISK_PROFILE", raising=False)
    monkeypatch.setenv("CRISK_FEATURES_OFFLINE_LAYOUT", "partitioned")
    settings = PipelineSettings(home=home)
    done = materialize_features(settings)
    assert MISSING_KIND_NOTES["ens"] in workspace_notes(settings)
    assert MISSING_KIND_NOTES["operators"] in workspace_notes(settings)
    assert set(done.skipped) == {
        "importer_registration_current",
        "carrier_hit_rate_365d",
        "consignor_hit_rate_365d",
        "first_transit_hub_hit_rate_365d",
        "last_transit_hub_hit_rate_365d",
    }
    tables = Workspace.at(home).feature_tables_dir
    assert sorted(p.name for p in tables.iterdir()) == sorted(done.tables)
    assert all(existing_dataset(tables, view) == tables / view for view in done.tables)
    assert "importer_hit_rate_365d" in done.views, "materialised from its partitions"

    features = settings.training.features
    entities = entity_frame(records.sample(200, random_state=10), "declaration")
    service = SERVICE_FOR_SUBJECT["declaration"]
    by_duckdb = historical_features(features, service, entities, engine="duckdb")
    by_feast = historical_features(features, service, entities, engine="feast")
    columns = [c for c in by_duckdb.columns if c not in entities.columns]
    _assert_same_features(
        by_feast.reset_index(drop=True), by_duckdb.reset_index(drop=True), columns
    )
    assert by_duckdb["importer_aeo"].isna().all()
    assert by_duckdb["importer_hit_rate_365d"].notna().any()
