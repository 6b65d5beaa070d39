"""`crisk validate KIND FILE --out DIR` end to end (spec §2 and §4), through Typer's CliRunner.

Exit codes: 0 all valid, 1 some rows quarantined, 2 unusable input. Unusable input gets one
message naming the file and the problem (or column), never a traceback. Decisions taken here:

- a header-only file is a valid, empty batch (exit 0, empty outputs written);
- a file cut off in the middle of an unquoted field is read as far as it goes: the last row lacks
  its trailing fields and is quarantined with ``required`` reasons (exit 1), since the rows
  before it are intact; a file cut off inside a quoted field cannot be tokenised at all and is
  unusable (exit 2);
- a huge field is a row problem (``max_length``), not a file problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from data_contracts.definitions import contract_for
from data_contracts.validate import validate_frame
from pipelines.cli import app
from world.generate import World

pytestmark = pytest.mark.integration

CLEAN_ROWS = 40


@pytest.fixture(scope="module")
def clean_frame(small_world: World) -> pd.DataFrame:
    """Declarations that pass the contract, with the world's own columns (as a feed has them)."""
    valid = validate_frame(small_world.declarations, "declarations").valid
    return valid[list(small_world.declarations.columns)].head(CLEAN_ROWS).reset_index(drop=True)


@pytest.fixture
def clean_csv(tmp_path: Path, clean_frame: pd.DataFrame) -> Path:
    path = tmp_path / "declarations.csv"
    clean_frame.to_csv(path, index=False)
    return path


def run_validate(kind: str, path: Path, out: Path) -> Result:
    return CliRunner().invoke(app, ["validate", kind, str(path), "--out", str(out)])


def squashed(text: str) -> str:
    """Text without whitespace: Rich wraps long messages (and paths) at the console width."""
    return re.sub(r"\s+", "", text)


def assert_no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


def assert_outputs(out: Path, n_input: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The three outputs exist and valid + quarantined == input."""
    for name in ("valid.parquet", "quarantine.parquet", "report.html"):
        assert (out / name).is_file(), name
    valid = pd.read_parquet(out / "valid.parquet")
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    assert len(valid) + len(quarantine) == n_input
    assert "reasons" in quarantine.columns
    return valid, quarantine


def test_clean_csv_is_all_valid(clean_csv: Path, tmp_path: Path) -> None:
    result = run_validate("declarations", clean_csv, tmp_path / "out")

    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    valid, quarantine = assert_outputs(tmp_path / "out", CLEAN_ROWS)
    assert len(valid) == CLEAN_ROWS and quarantine.empty
    assert f"{CLEAN_ROWS} rows: {CLEAN_ROWS} valid, 0 quarantined" in result.output
    assert "declarations" in (tmp_path / "out" / "report.html").read_text()


def test_clean_parquet_is_all_valid(clean_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "declarations.parquet"
    clean_frame.to_parquet(path, index=False)

    result = run_validate("declarations", path, tmp_path / "out")

    assert result.exit_code == 0, result.output
    assert_outputs(tmp_path / "out", CLEAN_ROWS)


def test_bad_rows_are_quarantined_with_reasons(clean_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = clean_frame.astype(object)
    frame.loc[3, "hs_code"] = "85AB"
    frame.loc[5, "net_mass_kg"] = -2.0
    frame.loc[7, "declaration_type"] = "X9"
    frame.loc[9, "lodged_at"] = "yesterday"
    frame = pd.concat([frame, frame.iloc[[11]]], ignore_index=True)  # an exact re-send
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)

    result = run_validate("declarations", path, tmp_path / "out")

    assert_no_traceback(result)
    assert result.exit_code == 1, result.output
    _, quarantine = assert_outputs(tmp_path / "out", len(frame))
    assert len(quarantine) == 5
    reasons = {
        int(row): {(r["field"], r["rule"]) for r in rs}
        for row, rs in zip(quarantine["row"], quarantine["reasons"], strict=True)
    }
    # CSV rows are numbered from the first data row, as in a spreadsheet without its header.
    assert ("hs_code", "pattern") in reasons[4]
    assert ("net_mass_kg", "greater_than") in reasons[6]
    assert ("declaration_type", "code_list") in reasons[8]
    assert ("lodged_at", "type") in reasons[10]
    assert ("declaration_id,item_number", "exact_duplicate") in reasons[12]
    for rs in quarantine["reasons"]:
        assert all({"field", "rule", "value", "message"} <= set(r) for r in rs)
    hs_reason = next(r for r in quarantine.loc[quarantine["row"] == 4, "reasons"].iloc[0])
    assert hs_reason["value"] == "85AB"
    assert "hs_code:pattern" in result.output


def test_header_only_is_an_empty_valid_batch(clean_csv: Path, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(clean_csv.read_text().splitlines()[0] + "\n")

    result = run_validate("declarations", path, tmp_path / "out")

    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    valid, quarantine = assert_outputs(tmp_path / "out", 0)
    assert valid.empty and quarantine.empty


def test_file_cut_mid_field_quarantines_the_last_row(clean_csv: Path, tmp_path: Path) -> None:
    text = clean_csv.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    # Cut inside the goods description of the last row (an unquoted field).
    cut = text.rstrip("\n").rsplit("\n", 1)[0] + "\n" + last[: len(last) // 2]
    path = tmp_path / "cut.csv"
    path.write_text(cut)

    result = run_validate("declarations", path, tmp_path / "out")

    assert_no_traceback(result)
    assert result.exit_code == 1, result.output
    _, quarantine = assert_outputs(tmp_path / "out", CLEAN_ROWS)
    assert list(quarantine["row"]) == [CLEAN_ROWS]
    rules = {r["rule"] for r in quarantine["reasons"].iloc[0]}
    assert "required" in rules


def test_file_cut_inside_a_quoted_field_is_unusable(clean_csv: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut_quoted.csv"
    path.write_text(clean_csv.read_text() + '26NL0000000000001,1,2026-01-05,H1,NL000396,"unfinish')

    result = run_validate("declarations", path, tmp_path / "out")

    assert_no_traceback(result)
    assert result.exit_code == 2, result.output
    assert squashed(f"{path}:malformedCSV") in squashed(result.output)


def test_huge_field_is_quarantined_by_max_length(clean_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = clean_frame.astype(object)
    frame.loc[2, "goods_description"] = "cotton shirts " * 75_000  # about 1 MB
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)

    result = run_validate("declarations", path, tmp_path / "out")

    assert_no_traceback(result)
    assert result.exit_code == 1, result.output
    _, quarantine = assert_outputs(tmp_path / "out", CLEAN_ROWS)
    (reason,) = quarantine["reasons"].iloc[0]
    assert (reason["field"], reason["rule"]) == ("goods_description", "max_length")
    assert len(reason["value"]) <= 201, "reasons carry a short excerpt, not the megabyte"
    assert len(quarantine["goods_description"].iloc[0]) <= 201


def _latin1(path: Path, clean: Path) -> None:
    frame = pd.read_csv(clean, dtype=str)
    frame.loc[0, "goods_description"] = "crème brûlée moulds"
    frame.to_csv(path, index=False, encoding="latin-1")


def _extra_column(path: Path, clean: Path) -> None:
    frame = pd.read_csv(clean, dtype=str)
    frame["colour"] = "red"
    frame.to_csv(path, index=False)


def _missing_column(path: Path, clean: Path) -> None:
    pd.read_csv(clean, dtype=str).drop(columns=["hs_code"]).to_csv(path, index=False)


def _duplicated_column(path: Path, clean: Path) -> None:
    lines = clean.read_text().splitlines()
    lines[0] = lines[0].replace("seller_id", "hs_code")
    path.write_text("\n".join(lines) + "\n")


def _too_many_fields(path: Path, clean: Path) -> None:
    path.write_text(clean.read_text() + "a,b,c," * 30 + "\n")


def _corrupt_parquet(path: Path, clean: Path) -> None:
    pd.read_csv(clean, dtype=str).to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# name: (file name, how to make it, fragments the message must contain)
UNUSABLE: dict[str, tuple[str, Callable[[Path, Path], object], tuple[str, ...]]] = {
    "zero_bytes": ("zero.csv", lambda p, c: p.touch(), ("empty",)),
    "blank_lines_only": ("blank.csv", lambda p, c: p.write_text("\n  \n\n"), ("empty",)),
    "latin1": ("latin1.csv", _latin1, ("UTF-8", "0xe8")),
    "unknown_column": ("extra.csv", _extra_column, ("unknown column", "colour")),
    "missing_column": ("missing.csv", _missing_column, ("missing required column", "hs_code")),
    "duplicated_column": ("dup.csv", _duplicated_column, ("duplicated column", "hs_code")),
    "too_many_fields": ("wide.csv", _too_many_fields, ("malformed CSV",)),
    "corrupt_parquet": ("broken.parquet", _corrupt_parquet, ("Parquet",)),
    "not_a_parquet": ("text.parquet", lambda p, c: p.write_text("id,x\n1,2\n"), ("Parquet",)),
    "directory": ("folder.csv", lambda p, c: p.mkdir(), ("directory",)),
    "nonexistent": ("nowhere.csv", lambda p, c: None, ("no such file",)),
    "unsupported_type": (
        "declarations.xlsx",
        lambda p, c: p.write_bytes(b"PK\x03\x04"),
        ("unsupported file type",),
    ),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_unusable_input_exits_2_naming_file_and_problem(
    case: str, clean_csv: Path, tmp_path: Path
) -> None:
    name, make, fragments = UNUSABLE[case]
    path = tmp_path / "inputs" / name
    path.parent.mkdir()
    make(path, clean_csv)

    result = run_validate("declarations", path, tmp_path / "out")

    assert_no_traceback(result)
    assert result.exit_code == 2, result.output
    message = squashed(result.output)
    assert squashed(str(path)) in message, "the message names the file"
    for fragment in fragments:
        assert squashed(fragment) in message, fragment
    assert not (tmp_path / "out" / "valid.parquet").exists(), "no partial outputs"


def test_unknown_kind_exits_2_naming_the_kind(clean_csv: Path, tmp_path: Path) -> None:
    result = run_validate("invoices", clean_csv, tmp_path / "out")

    assert_no_traceback(result)
    assert "invoices" in result.output and "declarations" in result.output
    assert result.exit_code == 2, result.output


def test_unknown_kind_writes_nothing(clean_csv: Path, tmp_path: Path) -> None:
    result = run_validate("invoices", clean_csv, tmp_path / "out")

    assert "control-results" in result.output
    assert not (tmp_path / "out").exists()


def test_contract_columns_are_what_the_clean_file_has(clean_frame: pd.DataFrame) -> None:
    """Guards the fixtures: the clean file carries every required column and nothing unknown."""
    contract = contract_for("declarations")
    assert set(contract.required_fields) <= set(clean_frame.columns)
    assert set(clean_frame.columns) <= set(contract.field_names)
