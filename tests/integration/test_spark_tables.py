"""Feature tables on Spark equal DuckDB's: same rows, same values, the same views skipped.

One ``local[2]`` Spark session for the module; the records are the session workspace's data
store (read only), once whole and once as a declarations-only workspace would hold them (its
records stored partitioned, ``CRISK_RECORDS_LAYOUT=partitioned``, for Spark's build). Spark
writes the whole build as files and the declarations-only one in the partitioned layout
(``event_month=YYYY-MM`` directories through ``partitionBy``, read back by Spark too): both
layouts are compared with DuckDB's files. (One partitioned write from Spark costs a job of its
own, about a second here; the whole build partitioned would add 20-50 s to the suite.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from data_contracts.offline_data import partition_values, read_dataset
from data_contracts.record_store import read_stored_records, write_records
from data_contracts.workspace import PARTITION_COLUMN, OfflineLayout, Workspace
from features.tables import BUILDERS, FeatureTableInputs, FeatureTables, build_feature_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    pytest.importorskip("pyspark")
    from features.tables.spark import SparkUnavailable, spark_session

    try:
        with spark_session("local[2]") as session:
            yield session
    except SparkUnavailable as error:  # pragma: no cover - the suite's machines have a JRE
        pytest.skip(str(error))


def _both(
    inputs: FeatureTableInputs,
    spark: SparkSession,
    out: Path,
    views: set[str] | None = None,
    spark_layout: OfflineLayout = "file",
    spark_inputs: FeatureTableInputs | None = None,
) -> tuple[FeatureTables, FeatureTables]:
    from features.tables.spark import SparkEngine

    by_duckdb = build_feature_tables(inputs, out / "duckdb", views=views)
    by_spark = build_feature_tables(
        spark_inputs or inputs, out / "spark", SparkEngine(spark), views, layout=spark_layout
    )
    return by_duckdb, by_spark


def _assert_same_tables(by_duckdb: FeatureTables, by_spark: FeatureTables) -> None:
    assert by_spark.cutoff == by_duckdb.cutoff
    assert by_spark.skipped == by_duckdb.skipped
    assert sorted(by_spark.written) == sorted(by_duckdb.written)
    for view, path in by_duckdb.written.items():
        expected, actual = read_dataset(path), read_dataset(by_spark.written[view])
        order = [expected.columns[0], "event_timestamp"]
        expected = expected.sort_values(order, kind="stable").reset_index(drop=True)
        actual = actual.sort_values(order, kind="stable").reset_index(drop=True)
        assert len(expected) > 0, view
        # Spark's Parquet keeps microseconds, pandas' nanoseconds: the same instants.
        for frame in (expected, actual):
            frame["event_timestamp"] = frame["event_timestamp"].dt.as_unit("us")
        # Same keys and event timestamps, same columns and types, floats within 1e-9, nulls
        # where DuckDB has them.
        pd.testing.assert_frame_equal(
            actual, expected, check_exact=False, rtol=1e-9, atol=1e-9, obj=view
        )


def test_spark_tables_equal_duckdb_tables(
    trained_workspace: Path, spark: SparkSession, tmp_path: Path
) -> None:
    """Every view of a workspace with every record kind, computed by both engines."""
    inputs = FeatureTableInputs.of(Workspace.at(trained_workspace))
    by_duckdb, by_spark = _both(inputs, spark, tmp_path)
    assert len(by_duckdb.written) == len(BUILDERS) and not by_duckdb.skipped
    _assert_same_tables(by_duckdb, by_spark)


def _assert_spark_reads_its_partitions(spark: SparkSession, tables: FeatureTables) -> None:
    """Spark discovers the partitions it wrote: the month of each row is its partition."""
    path = tables.written["route_hit_rate_365d"]
    read = spark.read.parquet(str(path))
    assert dict(read.dtypes)[PARTITION_COLUMN] == "string"
    rows = read.select("event_timestamp", PARTITION_COLUMN).toPandas()  # one Spark job
    assert len(rows) == len(read_dataset(path)) > 0
    assert (rows[PARTITION_COLUMN] == partition_values(rows["event_timestamp"])).all()
    months = {f"{PARTITION_COLUMN}={month}" for month in rows[PARTITION_COLUMN]}
    assert months == {p.name for p in path.iterdir() if p.is_dir()}


def test_declarations_only_skips_the_same_views(
    trained_workspace: Path, spark: SparkSession, tmp_path: Path
) -> None:
    """No ENS, no operator register: both engines skip the same views, and the route view
    (declarations only, no ENS routes now; partitioned by Spark) is the same. The other views
    read what they read in the test above; each Spark query costs seconds, so they are not
    computed twice."""
    source = Workspace.at(trained_workspace)
    full = FeatureTableInputs.of(source)
    inputs = FeatureTableInputs(
        declarations=full.declarations,
        control_results=full.control_results,
        control_results_history=full.control_results_history,
    )
    partitioned = Workspace.at(tmp_path / "records")
    for kind in ("declarations", "control-results"):
        write_records(partitioned, kind, read_stored_records(source, kind), "partitioned")
    stored = FeatureTableInputs(
        declarations=partitioned.record_dataset("declarations", "partitioned"),
        control_results=partitioned.record_dataset("control-results", "partitioned"),
        control_results_history=full.control_results_history,
    )
    lacking = {
        "importer_registration_current",
        "carrier_hit_rate_365d",
        "consignor_hit_rate_365d",
        "first_transit_hub_hit_rate_365d",
        "last_transit_hub_hit_rate_365d",
    }
    by_duckdb, by_spark = _both(
        inputs, spark, tmp_path, lacking | {"route_hit_rate_365d"}, "partitioned", stored
    )
    assert set(by_duckdb.skipped) == lacking
    assert list(by_duckdb.written) == ["route_hit_rate_365d"]
    assert by_spark.written["route_hit_rate_365d"].is_dir()
    assert sorted(p.name for p in (tmp_path / "spark").iterdir()) == ["route_hit_rate_365d"]
    _assert_same_tables(by_duckdb, by_spark)
    _assert_spark_reads_its_partitions(spark, by_spark)
