"""The data store's records as partitioned Parquet give what one file per kind gives.

The small session world's files are ingested twice: whole into the file layout, and in two
imports each (the second resending the end of the first) into the partitioned layout
(``CRISK_RECORDS_LAYOUT=partitioned``). The stored records, the feature tables computed from
them and what training, evaluation, the decision pages, the indicators and the inventory read
must be the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from data_contracts.inventory import MISSING_KIND_NOTES, RecordInventory
from data_contracts.offline_data import read_dataset
from data_contracts.record_store import partition_time_field, read_stored_records, stored_layout
from data_contracts.workspace import PARTITION_COLUMN, PARTITIONED_RECORD_KINDS, Workspace
from features.tables import FeatureTableInputs, build_feature_tables
from pipelines.config import PipelineSettings
from pipelines.ingest import ingest_file
from pipelines.steps import ingest_world
from serving.config import ServingSettings
from serving.decision import subject_control_results
from serving.indicators import load_inputs
from training.dataset import item_labels, load_records
from world.generate import World, write_world

pytestmark = pytest.mark.integration

KEYS = {"declarations": ["declaration_id", "item_number"], "ens": ["ens_id"],
        "control-results": ["control_id"]}  # fmt: skip


def _by_key(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    return frame.sort_values(KEYS[kind]).reset_index(drop=True)


@pytest.fixture(scope="module")
def homes(small_world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("records")
    files = write_world(small_world, root / "world")
    ingest_world(PipelineSettings(home=root / "file", records_layout="file"), files)

    home = root / "partitioned"
    workspace = Workspace.at(home)
    notes: dict[str, list[str]] = {}
    for kind, path in (("declarations", files.declarations), ("ens", files.ens),
                       ("control-results", files.control_results)):  # fmt: skip
        frame = pd.read_parquet(path)
        time = pd.to_datetime(frame[partition_time_field(kind)], utc=True)
        cut = time.quantile(0.6)
        first, second = frame[time < cut], frame[time >= cut]
        resent = pd.concat([first.tail(50), second], ignore_index=True)
        for part, rows in (("1", first), ("2", resent)):
            rows.to_parquet(root / f"{kind}-{part}.parquet", index=False)
            result = ingest_file(
                workspace, kind, root / f"{kind}-{part}.parquet", layout="partitioned"
            )
        assert result.n_unchanged >= 50, f"{kind}: the resent rows are stored unchanged"
        if kind == "declarations":  # what a declarations-only store lacks, one line each
            notes["declarations-only"] = RecordInventory.of(workspace).notes()
    shutil.copy(files.operators, workspace.data_dir / "operators.parquet")
    assert notes["declarations-only"] == [
        MISSING_KIND_NOTES["ens"],
        MISSING_KIND_NOTES["operators"],
    ]
    return {"file": root / "file", "partitioned": home}


def test_the_stored_records_are_the_same(homes: dict[str, Path]) -> None:
    file, parts = Workspace.at(homes["file"]), Workspace.at(homes["partitioned"])
    for kind in PARTITIONED_RECORD_KINDS:
        assert stored_layout(file, kind) == "file" and stored_layout(parts, kind) == "partitioned"
        directory = parts.record_dataset(kind, "partitioned")
        assert not parts.record_file(kind).exists(), "no file of the other layout"
        expected = _by_key(read_stored_records(file, kind), kind)
        actual = _by_key(read_stored_records(parts, kind), kind)
        pd.testing.assert_frame_equal(actual, expected, obj=kind)
        months = pd.to_datetime(expected[partition_time_field(kind)], utc=True)
        assert {p.name for p in directory.iterdir()} == {
            f"{PARTITION_COLUMN}={m:%Y-%m}" for m in months.dt.tz_localize(None)
        }, f"{kind}: one partition per month, no staging leftovers"


def test_feature_tables_from_partitioned_records_equal_the_file_ones(
    homes: dict[str, Path],
) -> None:
    tables = {}
    for layout, home in homes.items():
        workspace = Workspace.at(home)
        built = build_feature_tables(FeatureTableInputs.of(workspace), workspace.feature_tables_dir)
        assert not built.skipped, layout
        tables[layout] = built.written
    assert sorted(tables["file"]) == sorted(tables["partitioned"])
    for view, path in tables["file"].items():
        expected = read_dataset(path)
        actual = read_dataset(tables["partitioned"][view])
        order = list(expected.columns[:2])
        assert len(expected) > 0, view
        pd.testing.assert_frame_equal(
            actual.sort_values(order, kind="stable").reset_index(drop=True),
            expected.sort_values(order, kind="stable").reset_index(drop=True),
            obj=view,
        )


def test_every_reader_sees_the_same_records(homes: dict[str, Path]) -> None:
    """Training's labels, the inventory, a decision page's results and the indicators' inputs."""
    seen = {}
    for layout, home in homes.items():
        workspace = Workspace.at(home)
        records = _by_key(load_records(workspace, "declaration"), "declarations")
        labels = item_labels(
            records, read_stored_records(workspace, "control-results"), "declaration"
        )
        subject = str(records["declaration_id"].iloc[int(labels.index[0])])
        inputs = load_inputs(workspace, ServingSettings(home=home))
        seen[layout] = {
            "labels": labels.reset_index(drop=True),
            "inventory": RecordInventory.of(workspace),
            "page": subject_control_results(workspace, None, "declaration", subject),
            "results": _by_key(inputs.control_results, "control-results"),
            "subjects": inputs.subjects.sort_values("subject_id").reset_index(drop=True),
            "sources": inputs.sources,
        }
    file, parts = seen["file"], seen["partitioned"]
    pd.testing.assert_frame_equal(parts["labels"], file["labels"])
    assert parts["inventory"] == file["inventory"] and not parts["inventory"].notes()
    assert parts["page"] == file["page"] and parts["page"], "the subject's results, once"
    pd.testing.assert_frame_equal(parts["results"], file["results"])
    pd.testing.assert_frame_equal(parts["subjects"], file["subjects"])
    assert parts["sources"] == file["sources"]
    assert PARTITION_COLUMN not in parts["results"] and PARTITION_COLUMN not in parts["subjects"]
