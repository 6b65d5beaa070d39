"""The mapping file of `crisk import` (spec §6): its model, its errors, its rules on tiny frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from data_contracts.mapping import LoadedMapping, MappingError, parse_mapping
from data_contracts.mapping_apply import SourceTable, apply_mapping, read_source
from data_contracts.mapping_expression import ExpressionError, parse_expression

SPEC_EXAMPLE = Path(__file__).with_name("spec_mapping.yaml")

# The smallest complete mapping; tests add rules to it.
MINIMAL = """\
dataset: tiny
declarations:
  declaration_id: {column: D}
  item_number: {default: 1}
  lodged_at: {column: T}
  declaration_type: {constant: H1}
  customs_office: {constant: NL000396}
  declarant_id: {column: P}
  importer_id: {column: P}
  hs_code: {column: HS}
  origin_country: {constant: CN}
  dispatch_country: {constant: CN}
  transport_mode: {constant: 1}
  procedure_code: {constant: "4000"}
  net_mass_kg: {column: KG}
  gross_mass_kg: {default_from: net_mass_kg}
  customs_value_eur: {column: V}
  duty_eur: {constant: 0}
  container: {constant: false}
"""

FRAME = {
    "D": ["A1", "A2", "A3"],
    "T": ["2021-01-04T10:00:00Z", "2021-01-05T10:00:00Z", "2021-01-06T10:00:00Z"],
    "P": ["NL123456789", "NL123456789", "DE987654321"],
    "HS": ["610910", "851713", "940510"],
    "KG": ["10", "2.5", "4"],
    "V": ["100", "50", "80"],
}


def _mapping(extra_yaml: str = "", replace: dict[str, str] | None = None) -> LoadedMapping:
    text = MINIMAL
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return parse_mapping(text + extra_yaml, "m.yaml")


def _apply(loaded: LoadedMapping, columns: dict[str, list[Any]] | None = None) -> Any:
    frame = pd.DataFrame(columns or FRAME, dtype=object)
    return apply_mapping(loaded, SourceTable(frame, np.arange(2, 2 + len(frame)), Path("f.csv")))


def _problems(error: pytest.ExceptionInfo[MappingError]) -> list[str]:
    return [p.describe("m.yaml") for p in error.value.problems]


# --- the model ---------------------------------------------------------------------------------


def test_the_example_of_the_spec_is_a_valid_mapping() -> None:
    loaded = parse_mapping(SPEC_EXAMPLE.read_text(), str(SPEC_EXAMPLE))
    mapping = loaded.mapping
    assert mapping.identifier_format == "opaque"
    assert mapping.source.delimiter == ";" and mapping.source.decimal == ","
    assert mapping.declarations["customs_office"].pad == 6
    assert mapping.declarations["transport_mode"].map == {"S": 1, "R": 2, "T": 3, "A": 4, "P": 5}
    assert mapping.labels is not None and mapping.labels.outcome.irregular == ["F", "C"]
    assert mapping.split is not None and str(mapping.split.test_until) == "2021-06-30"
    assert [a for a in mapping.extra] == ["payment_type", "preferential_claim", "tax_rate"]


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (
            {"{column: HS}": "{column: HS, padd: 10}"},
            "m.yaml:10: declarations.hs_code.padd: unknown key",
        ),
        ({"dataset: tiny": "dataset: tiny\nsources: {}"}, "m.yaml:2: sources: unknown key"),
        ({"hs_code:": "hs_codes:"}, "m.yaml:10: declarations.hs_codes: unknown declaration field"),
        ({"{column: KG}": "{column: KG, format: '%d'}"}, "net_mass_kg.format: only for date-time"),
        (
            {"{column: D}": "{column: D, constant: X}"},
            "m.yaml:3: declarations.declaration_id: give one source",
        ),
        (
            {"  hs_code: {column: HS}\n": ""},
            "m.yaml:2: declarations: required field(s) not mapped: hs_code",
        ),
        ({"{default_from: net_mass_kg}": "{default_from: gross_mass_kg}"}, "reads itself"),
        ({"{column: V}": "{expression: '`V` + nonsense'}"}, "nonsense: not declaration fields"),
        (
            {"{column: V}": "{expression: '__import__(1)'}"},
            "only abs, round, min, max may be called",
        ),
        ({"{column: T}": "{column: T, timezone: Mars/Base}"}, "unknown time zone 'Mars/Base'"),
    ],
)
def test_mapping_errors_name_the_key_and_its_line(replace: dict[str, str], expected: str) -> None:
    with pytest.raises(MappingError) as error:
        _mapping(replace=replace)
    assert any(expected in line for line in _problems(error)), _problems(error)


def test_yaml_12_booleans_and_leading_zeros_keep_codes_as_text() -> None:
    loaded = _mapping(
        replace={
            "origin_country: {constant: CN}": "origin_country: {constant: NO}",
            '{constant: "4000"}': "{constant: 0100}",
            "{column: HS}": "{column: HS, map: {yes: '610910', 0: '851713', on: '940510'}}",
        }
    )
    rules = loaded.mapping.declarations
    assert rules["origin_country"].constant == "NO"  # Norway, not False (YAML 1.1)
    assert rules["procedure_code"].constant == "0100"  # a code, not the number 64 or 100
    assert set(rules["hs_code"].map or {}) == {"yes", "0", "on"}  # map keys are source text


# --- the rules ---------------------------------------------------------------------------------


def test_pad_comes_before_prefix_and_codes_stay_text() -> None:
    loaded = _mapping(
        replace={
            "{constant: NL000396}": "{column: OFF, prefix: XX, pad: 6}",
            "{column: HS}": "{column: HS, pad: 10}",
        }
    )
    mapped = _apply(
        loaded,
        {**FRAME, "OFF": ["396", " 12 ", "000396"], "HS": ["610910001", "0851713000", "94051"]},
    )
    assert list(mapped.declarations["customs_office"]) == ["XX000396", "XX000012", "XX000396"]
    assert list(mapped.declarations["hs_code"]) == ["0610910001", "0851713000", "0000094051"]


def test_a_value_outside_the_map_is_an_error_naming_rows_not_a_null() -> None:
    loaded = _mapping(
        replace={"transport_mode: {constant: 1}": "transport_mode: {column: M, map: {S: 1, A: 4}}"}
    )
    with pytest.raises(MappingError) as error:
        _apply(loaded, {**FRAME, "M": ["S", "X", "X"]})
    (line,) = _problems(error)
    assert line.startswith("m.yaml:13: declarations.transport_mode.map: value not in the map")
    assert "row 3 ('X'), row 4 ('X')" in line
    mapped = _apply(loaded, {**FRAME, "M": ["S", "A", None]})
    modes = mapped.declarations["transport_mode"]
    assert [None if pd.isna(v) else v for v in modes] == [1, 4, None]  # blank stays blank


def test_local_dates_in_a_time_zone_become_utc_and_bad_ones_are_errors() -> None:
    loaded = _mapping(
        replace={"{column: T}": '{column: T, format: "%d.%m.%Y %H:%M", timezone: Europe/Tallinn}'}
    )
    mapped = _apply(
        loaded, {**FRAME, "T": ["05.03.2021 10:30", "05.07.2021 10:30", "31.10.2021 03:30"]}
    )
    assert [str(t) for t in mapped.declarations["lodged_at"]] == [
        "2021-03-05 08:30:00+00:00",  # winter: UTC+2
        "2021-07-05 07:30:00+00:00",  # summer: UTC+3
        "2021-10-31 01:30:00+00:00",  # the hour that happens twice: read as standard time
    ]
    with pytest.raises(MappingError) as error:
        _apply(loaded, {**FRAME, "T": ["05.03.2021 10:30", "2021-03-05", "31.02.2021 10:00"]})
    (line,) = _problems(error)
    assert "declarations.lodged_at.format: not a date-time in the format '%d.%m.%Y %H:%M'" in line
    assert "row 3 ('2021-03-05'), row 4 ('31.02.2021 10:00')" in line


def test_amounts_decimal_comma_currency_tables_and_expressions() -> None:
    loaded = _mapping(
        "source: {decimal: ','}\n",
        replace={
            "{column: V}": "{column: V, currency: {column: CUR, rates: {SEK: 10, EUR: 1}}}",
            "duty_eur: {constant: 0}": "duty_eur: {expression: '`RATE` / 100 * customs_value_eur'}",
            "{column: KG}": "{column: KG}",
        },
    )
    columns = {**FRAME, "KG": ["10,5", "2", "bad"], "V": ["100", "50,5", "80"],
               "CUR": ["SEK", "EUR", "SEK"], "RATE": ["10", "12,5", ""]}  # fmt: skip
    frame = _apply(loaded, columns).declarations
    assert list(frame["customs_value_eur"]) == pytest.approx([10.0, 50.5, 8.0])
    assert frame["duty_eur"].iloc[0] == pytest.approx(1.0)
    assert frame["duty_eur"].iloc[1] == pytest.approx(6.3125)
    assert pd.isna(frame["duty_eur"].iloc[2])  # a blank input: no value (the contract says so)
    # Not a number: passed on as written, so the contract quarantines it with its value.
    assert list(frame["net_mass_kg"]) == [10.5, 2.0, "bad"]
    assert list(frame["gross_mass_kg"]) == [10.5, 2.0, "bad"]  # default_from a blank gross
    with pytest.raises(MappingError) as error:
        _apply(loaded, {**columns, "CUR": ["SEK", "USD", "SEK"]})
    assert (
        "customs_value_eur.currency.rates: currency not in the rates table" in _problems(error)[0]
    )


def test_an_expression_naming_a_missing_column_is_an_error_with_its_line() -> None:
    loaded = _mapping(
        replace={"duty_eur: {constant: 0}": "duty_eur: {expression: '`VALUE` * 0.2'}"}
    )
    with pytest.raises(MappingError) as error:
        _apply(loaded)
    (line,) = _problems(error)
    assert line.startswith("m.yaml:18: declarations.duty_eur.expression: no column 'VALUE'")
    assert "(columns: D, T, P, HS, KG, V)" in line


def test_labels_make_one_control_result_per_labelled_row() -> None:
    loaded = _mapping(
        """\
extra:
  pay: {column: PAY, type: categorical, label: Payment type}
  rate: {column: RATE, type: numeric}
labels:
  outcome: {column: R, irregular: ["F", "C"]}
  risk_area: {column: AREA, map: {U: financial, K: ipr}}
  seizure: {column: R, values: ["C"]}
  controlled_at: {offset_days: 2}
  reported_at: {offset_days: 10.5}
"""
    )
    columns = {**FRAME, "R": ["F", "", "OK"], "AREA": ["U", "?", "?"], "PAY": ["11", None, "12"],
               "RATE": ["5", "", "7.5"]}  # fmt: skip
    mapped = _apply(loaded, columns)
    controls = mapped.control_results
    assert list(controls["control_id"]) == ["A1-1", "A3-1"]  # row 3 has no label: no result
    assert list(mapped.control_rows) == [2, 4]
    assert list(controls["outcome"]) == ["irregularity", "no_irregularity"]
    # Only irregular rows have a risk area; "?" of a regular row is never mapped.
    assert list(controls["risk_area"]) == ["financial", None]
    assert list(controls["seizure"]) == [False, False]
    assert str(controls["controlled_at"].iloc[0]) == "2021-01-06 10:00:00+00:00"
    assert str(controls["reported_at"].iloc[1]) == "2021-01-16 22:00:00+00:00"
    assert list(controls["selection_reason"]) == ["rule", "rule"]  # not given: said in a warning
    assert list(controls["revenue_recovered_eur"]) == [0.0, 0.0]
    assert mapped.revenue_known is False
    assert any("revenue is unknown" in w for w in mapped.warnings)
    assert any("labels.selection_reason not given" in w for w in mapped.warnings)
    extra = list(mapped.declarations["extra"])
    assert extra == [
        {"pay": "11", "rate": 5.0},
        {"pay": None, "rate": None},
        {"pay": "12", "rate": 7.5},
    ]
    assert [(a.name, a.type, a.label) for a in mapped.extra] == [
        ("pay", "categorical", "Payment type"),
        ("rate", "numeric", ""),
    ]
    with pytest.raises(MappingError) as error:
        _apply(loaded, {**columns, "RATE": ["5", "x", "7"]})
    assert "extra.rate.type: not a number in a numeric attribute" in _problems(error)[0]


def test_a_control_dated_by_day_on_the_lodgement_day_follows_the_lodgement() -> None:
    loaded = _mapping(
        """\
labels:
  outcome: {column: R, irregular: ["F"]}
  risk_area: {constant: financial}
  controlled_at: {column: C, format: "%d/%m/%Y", timezone: Europe/Warsaw}
  reported_at: {column: C, format: "%d/%m/%Y", timezone: Europe/Warsaw}
"""
    )
    # Lodged 10:00 UTC; controlled "that day" (row 1), the next day (row 2), the day before (row 3).
    columns = {**FRAME, "R": ["F", "OK", "OK"], "C": ["04/01/2021", "06/01/2021", "05/01/2021"]}
    controls = _apply(loaded, columns).control_results
    # Not at the midnight before the lodgement (the contract would quarantine it): at it.
    assert [str(t) for t in controls["controlled_at"]] == [
        "2021-01-04 10:00:00+00:00",  # the lodgement itself
        "2021-01-05 23:00:00+00:00",  # local midnight of the next day, as written
        "2021-01-04 23:00:00+00:00",  # before its lodgement: left for the contract to refuse
    ]
    assert list(controls["reported_at"]) == list(controls["controlled_at"])


def test_a_file_without_descriptions_is_a_warning() -> None:
    mapped = _apply(_mapping())
    assert "goods_description" not in mapped.declarations
    assert any("no goods descriptions" in w for w in mapped.warnings)


def test_csv_is_read_as_text_in_its_encoding_with_file_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "national.csv"
    path.write_bytes("D;HS;NAME\nA1;0610910001;Ærø\nA2;851713;x\n".encode("latin-1"))
    loaded = parse_mapping(MINIMAL + "source: {delimiter: ';', encoding: latin-1}\n", "m.yaml")
    table = read_source(path, loaded.mapping.source)
    assert list(table.frame["HS"]) == ["0610910001", "851713"]  # the leading zero is kept
    assert list(table.frame["NAME"]) == ["Ærø", "x"]
    assert list(table.row_numbers) == [2, 3]  # the header is row 1


# --- expressions -------------------------------------------------------------------------------


def test_expressions_compute_on_columns_and_refuse_anything_else() -> None:
    expression = parse_expression("max(`A`, 2) * `B B` / 100 - abs(x) ** 2")
    assert expression.columns == ("A", "B B") and expression.fields == ("x",)
    result = expression.evaluate(
        {"A": np.array([1.0, 5.0]), "B B": np.array([100.0, 10.0])}, {"x": np.array([1.0, -2.0])}, 2
    )
    assert list(result) == pytest.approx([1.0, -3.5])
    for text in ("`A`.real", "open('x')", "`A` if 1 else 2", "[1][0]", "'text'", "`A", "a = 1"):
        with pytest.raises(ExpressionError):
            parse_expression(text)
