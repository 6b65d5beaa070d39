"""`crisk import --mapping` end to end through the CLI, on the two example formats (spec §6).

Each example file is generated from a small synthetic world (``examples/make_example_files.py``)
and taken through ``crisk import`` → ``crisk features materialize`` → ``crisk train`` →
``crisk evaluate`` in a workspace of its own, which holds declarations and control results only
(no ENS, no operator register, no ground truth: the normal case for real data). Bad mappings
are refused with the key, its line and the first offending rows, exit 2, and leave the
workspace byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from data_contracts.dataset import read_manifest
from data_contracts.workspace import Workspace
from examples.make_example_files import EXAMPLES, write_national_a, write_research_b
from pipelines.cli import app
from tests.conftest import start_server, stop_server
from tests.integration.workspaces import crisk_home
from world.generate import World, WorldConfig, generate_world

pytestmark = pytest.mark.integration

# Small worlds: enough labels for a financial model, cheap enough for every CI run.
ITEMS_A = 25_000
ITEMS_B = 6_000
TRAIN_ENV = {"CRISK_TRAIN_MIN_POSITIVE_LABELS": "10", "CRISK_TRAIN_REFERENCE_SAMPLE_SIZE": "2000"}


def _invoke(*args: str, expect: tuple[int, ...] = (0,)) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in expect, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    return result


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@dataclass
class Example:
    home: Path
    file: Path
    mapping: Path
    world: World
    imported: str
    evaluated: str
    report: dict[str, Any]


@pytest.fixture(scope="module")
def world_a() -> World:
    return generate_world(WorldConfig(seed=21, declarations=ITEMS_A, ens=200))


@pytest.fixture(scope="module")
def world_b() -> World:
    return generate_world(WorldConfig(seed=22, declarations=ITEMS_B, ens=200))


def _run_example(home: Path, file: Path, mapping: Path, world: World) -> Example:
    with crisk_home(home), pytest.MonkeyPatch.context() as patch:
        for name, value in TRAIN_ENV.items():
            patch.setenv(name, value)
        imported = _invoke("import", "--mapping", str(mapping), str(file), expect=(0, 1)).output
        _invoke("features", "materialize")
        _invoke("train")
        out = home / "runs" / "evaluation"
        evaluated = _invoke("evaluate", "--out", str(out)).output
    report = json.loads((out / "metrics.json").read_text())
    return Example(home, file, mapping, world, imported, evaluated, report)


@pytest.fixture(scope="module")
def example_a(tmp_path_factory: pytest.TempPathFactory, world_a: World) -> Example:
    base = tmp_path_factory.mktemp("example_a")
    file = write_national_a(world_a, base / "national_a.csv")
    return _run_example(base / "home", file, EXAMPLES / "national_a.yaml", world_a)


@pytest.fixture(scope="module")
def example_b(tmp_path_factory: pytest.TempPathFactory, world_b: World) -> Example:
    base = tmp_path_factory.mktemp("example_b")
    file = write_research_b(world_b, base / "research_b.parquet")
    return _run_example(base / "home", file, EXAMPLES / "research_b.yaml", world_b)


# --- example (a): a national system's CSV ------------------------------------------------------


def test_example_a_imports_codes_ids_dates_and_amounts_as_the_contract_wants(
    example_a: Example,
) -> None:
    workspace = Workspace.at(example_a.home)
    stored = pd.read_parquet(workspace.data_dir / "declarations.parquet")
    items = example_a.world.declarations.drop_duplicates(
        ["declaration_id", "item_number"], keep="last"
    )
    # The world's planted broken rows are quarantined, every other item is stored.
    quarantine = pd.read_parquet(workspace.quarantine_dir / "declarations.parquet")
    assert len(stored) + len(quarantine) == len(items)
    assert 0 < len(quarantine) < 0.01 * len(items)
    assert quarantine["row"].min() >= 2  # row numbers of the file: the header is row 1
    # Tariff codes that lost their leading zero in the file are whole again (pad: 10).
    assert stored["hs_code"].str.len().eq(10).all()
    source = pd.read_csv(example_a.file, sep=";", dtype=str, encoding="latin-1")
    assert (source["TARIF"].str.len() == 9).any(), "the example must show lost leading zeros"
    # Identity of the items: national number + prefix, values back in EUR, times back in UTC.
    world = items.assign(
        key="XF" + items["declaration_id"].str[2:] + "-" + items["item_number"].astype(str)
    )
    stored["key"] = stored["declaration_id"] + "-" + stored["item_number"].astype(str)
    joined = stored.merge(world, on="key", suffixes=("", "_world"))
    assert len(joined) == len(stored)
    # Amounts went through the local currency at 2 decimals: within half a local cent.
    assert np.allclose(joined["customs_value_eur"], joined["customs_value_eur_world"], atol=0.005)
    lag = (joined["lodged_at"] - joined["lodged_at_world"]).abs()
    assert (lag < pd.Timedelta(minutes=1)).all()  # the file has minutes in local time
    assert (joined["hs_code"].str[:8] == joined["hs_code_world"].str[:8]).all()
    assert not joined["importer_id"].str.match(r"^[A-Z]{2}").any()  # national numbers, not EORIs
    assert stored["customs_office"].str.match(r"^XF[0-9]{6}$").all()
    manifest = read_manifest(workspace)
    assert manifest.dataset == "xf-national-import" and manifest.source == "import"
    assert manifest.identifier_format == "opaque" and manifest.revenue_known
    assert [a.name for a in manifest.extra] == ["payment_type", "tax_rate", "filing_channel"]
    assert manifest.extra_attribute("payment_type").display_label == "Payment type"
    controls = pd.read_parquet(workspace.data_dir / "control_results.parquet")
    world_controls = example_a.world.control_results
    assert 0.9 * (world_controls["subject_type"] == "declaration").sum() < len(controls)
    assert set(controls["selection_reason"]) <= {"rule", "random", "other"}
    assert (controls["reported_at"] >= controls["controlled_at"]).all()


def test_example_a_trains_and_evaluates_on_labelled_controls(example_a: Example) -> None:
    report = example_a.report
    assert report["dataset"] == "xf-national-import"
    assert "financial" in report["areas"], example_a.evaluated
    financial = report["areas"]["financial"]
    assert financial["dataset"] in ("random_controls", "controlled")
    assert "synthetic_ground_truth" not in json.dumps(report["primary_datasets"])
    assert not any(key.endswith("@synthetic_ground_truth") for key in report["areas"])
    assert set(financial["baselines"]) == {
        "random", "rules", "logistic_regression", "label_encoded_lightgbm", "raw_columns_lightgbm",
    }  # fmt: skip
    assert financial["precision_at"]["5"] > financial["baselines"]["random"]["precision_at"]["5"]
    assert report["splits"]["declaration"]["source"] == "last_days"
    printed = _one_line(example_a.evaluated)
    assert "label-enc. LGBM" in printed and "raw-col. LGBM" in printed
    assert "financial:" in printed  # why that set is the primary one


# --- example (b): a research data set in Parquet --------------------------------------------------


def test_example_b_uses_the_published_split_and_says_what_it_measures(example_b: Example) -> None:
    report = example_b.report
    manifest = read_manifest(Workspace.at(example_b.home))
    assert manifest.split is not None and manifest.dataset == "rs-customs-fraud-benchmark"
    split = report["splits"]["declaration"]
    assert split["source"] == "published"
    assert report["windows"]["declaration"]["from"].startswith("2026-11-01")
    assert report["windows"]["declaration"]["to"].startswith("2027-01-04")
    financial = report["areas"]["financial"]
    # Every row was inspected: no random controls, so the labelled controls are the primary set.
    assert financial["dataset"] == "controlled"
    assert "no random controls" in financial["dataset_reason"]
    measured = report["datasets"]["declaration:controlled"]["measures"]
    assert "every item of the test window was inspected" in measured
    assert "as published customs-fraud benchmarks report" in measured
    assert any("no random controls" in note for note in report["notes"])
    for name in ("label_encoded_lightgbm", "raw_columns_lightgbm"):
        assert 0.0 <= financial["baselines"][name]["precision_at"]["5"] <= 1.0
    low, high = financial["precision_at_interval"]["5"]
    assert low <= financial["precision_at"]["5"] <= high
    assert financial["revenue_at"]["5"] is not None  # the file gives the revenue recovered
    printed = _one_line(example_b.evaluated)
    assert "published split" in printed
    imported = _one_line(example_b.imported)
    assert "no goods descriptions in the file" in imported
    stored = pd.read_parquet(Workspace.at(example_b.home).data_dir / "declarations.parquet")
    assert stored["hs_code"].str.len().eq(10).all()  # integers in the file, codes here


def test_example_b_without_revenue_trains_no_revenue_model_and_reports_no_revenue(
    example_b: Example, tmp_path: Path
) -> None:
    from tests.integration.workspaces import copy_workspace

    home = copy_workspace(example_b.home, tmp_path / "home")
    text = example_b.mapping.read_text()
    mapping = tmp_path / "no_revenue.yaml"
    mapping.write_text(re.sub(r"\n  revenue_recovered_eur: .*", "", text))
    with crisk_home(home), pytest.MonkeyPatch.context() as patch:
        for name, value in TRAIN_ENV.items():
            patch.setenv(name, value)
        _invoke("import", "--mapping", str(mapping), str(example_b.file), expect=(0, 1))
        assert read_manifest(Workspace.at(home)).revenue_known is False
        trained = _one_line(_invoke("train").output)
        evaluated = _one_line(_invoke("evaluate", "--out", str(tmp_path / "out")).output)
    assert "no revenue model: the revenue recovered is unknown" in trained
    assert "_revenue" not in trained
    assert "Revenue@n% is not reported" in evaluated
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["revenue_known"] is False
    assert report["areas"]["financial"]["revenue_at"] is None


def test_a_scored_request_with_extra_attributes_through_the_real_server(
    example_a: Example, tmp_path: Path
) -> None:
    import httpx

    stored = pd.read_parquet(Workspace.at(example_a.home).data_dir / "declarations.parquet")
    from data_contracts.definitions import contract_for

    fields = contract_for("declarations", "opaque").field_names
    items = json.loads(stored.tail(3)[fields].to_json(orient="records", date_format="iso"))
    assert all(item["extra"] for item in items)
    running = start_server(example_a.home, tmp_path / "server.log")
    try:
        response = httpx.post(
            f"{running.url}/score",
            json={"declarations": items, "explain": True},
            headers={"Authorization": f"Bearer {running.keys['scorer']}"},
            timeout=60,
        )
        ready = httpx.get(f"{running.url}/readyz").json()
    finally:
        stop_server(running.process)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["subject_id"] for r in results] == [i["declaration_id"] for i in items]
    named = {reason["feature"] for r in results for reason in r["reasons"]}
    assert any(name.startswith("extra_") for name in named) or results[0]["scores"]
    assert ready["identifier_formats"] == {"declaration": "opaque"}, "opaque national ids"


# --- bad mappings --------------------------------------------------------------------------------


def _snapshot(home: Path) -> dict[str, str]:
    """Every file of the workspace and a hash of its bytes."""
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def small_a(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small file (a) already imported into a workspace (so there is something to keep)."""
    base = tmp_path_factory.mktemp("bad_mappings")
    world = generate_world(WorldConfig(seed=23, declarations=2_000, ens=200))
    file = write_national_a(world, base / "national_a.csv")
    with crisk_home(base / "home"):
        _invoke("import", "--mapping", str(EXAMPLES / "national_a.yaml"), str(file), expect=(0, 1))
    return base / "home", file


BAD_MAPPINGS = {
    # name: (the change to the example mapping, key, text of the error)
    "unknown column": (
        ("{column: PAIEMENT,", "{column: PAYMENT,"),
        "extra.payment_type.column",
        "no column 'PAYMENT' in the file; did you mean PAIEMENT?",
    ),
    "unknown key": (
        ("{column: BUREAU, pad: 6,", "{column: BUREAU, padding: 6,"),
        "declarations.customs_office.padding",
        "unknown key (allowed here: column, pad, prefix",
    ),
    "value outside a map": (
        ("A: 4, P: 5,", "A: 4,"),
        "declarations.transport_mode.map",
        "value not in the map",
    ),
    "unparseable date": (
        ('DATE_ACCEPTATION, format: "%d/%m/%Y', 'DATE_ACCEPTATION, format: "%Y-%m-%d'),
        "declarations.lodged_at.format",
        "not a date-time in the format '%Y-%m-%d %H:%M'",
    ),
    "expression naming a missing column": (
        ("{column: DROITS, currency: {rate: 6.5}}", "{expression: '`DUTY` / 6.5'}"),
        "declarations.duty_eur.expression",
        "no column 'DUTY' in the file",
    ),
}  # fmt: skip


@pytest.mark.parametrize("mistake", list(BAD_MAPPINGS))
def test_a_bad_mapping_names_key_line_and_rows_exits_2_and_writes_nothing(
    mistake: str, small_a: tuple[Path, Path], tmp_path: Path
) -> None:
    home, file = small_a
    (old, new), key, message = BAD_MAPPINGS[mistake]
    text = (EXAMPLES / "national_a.yaml").read_text()
    assert old in text
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(text.replace(old, new))
    line = next(i for i, row in enumerate(mapping.read_text().splitlines(), 1) if new in row)
    before = _snapshot(home)
    with crisk_home(home):
        result = _invoke("import", "--mapping", str(mapping), str(file), expect=(2,))
    output = _one_line(result.output)
    assert f"mapping error: {mapping}:{line}: {key}: {message}" in output, output
    if mistake in ("value outside a map", "unparseable date"):
        assert re.search(r"; row \d+ \('", output), "the first offending rows of the file"
    assert "nothing was written to the workspace" in output
    assert _snapshot(home) == before


def test_reimporting_the_same_file_changes_nothing(small_a: tuple[Path, Path]) -> None:
    home, file = small_a
    with crisk_home(home):
        result = _invoke(
            "import", "--mapping", str(EXAMPLES / "national_a.yaml"), str(file), expect=(0, 1)
        )
    output = _one_line(result.output)
    stored = pd.read_parquet(Workspace.at(home).data_dir / "declarations.parquet")
    assert re.search(rf"declaration items │ [\d,]+ │ [\d,]+ │ \d+ │ 0 │ {len(stored):,}", output)


def test_an_import_into_a_workspace_of_another_dataset_is_refused(
    small_a: tuple[Path, Path], tmp_path: Path
) -> None:
    home, file = small_a
    mapping = tmp_path / "other.yaml"
    mapping.write_text(
        (EXAMPLES / "national_a.yaml")
        .read_text()
        .replace("dataset: xf-national-import", "dataset: other")
    )
    before = _snapshot(home)
    with crisk_home(home):
        result = _invoke("import", "--mapping", str(mapping), str(file), expect=(2,))
    assert "holds dataset 'xf-national-import'" in _one_line(result.output)
    assert _snapshot(home) == before


def test_validate_and_ingest_read_the_workspace_identifier_format(
    small_a: tuple[Path, Path], tmp_path: Path
) -> None:
    home, _ = small_a
    stored = pd.read_parquet(Workspace.at(home).data_dir / "declarations.parquet").head(20)
    from data_contracts.definitions import contract_for

    path = tmp_path / "national_ids.csv"
    columns = [name for name in contract_for("declarations").field_names if name != "extra"]
    stored[columns].to_csv(path, index=False)  # extra is a map: not a CSV column
    with crisk_home(home):  # the workspace's manifest says opaque
        _invoke("validate", "declarations", str(path), "--out", str(tmp_path / "v1"))
    eori = _invoke(
        "validate", "declarations", str(path), "--out", str(tmp_path / "v2"),
        "--identifiers", "eori", expect=(1,),
    )  # fmt: skip
    assert "importer_id:pattern" in _one_line(eori.output)
    with crisk_home(home):
        ingested = _invoke("ingest", "declarations", str(path))
    assert "0 quarantined" in _one_line(ingested.output)
