"""Identifier formats: EORI party ids, or a national file's opaque ids (``crisk import``).

Batch validation and the HTTP models must judge party ids alike in both formats.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from data_contracts.definitions import contract_for, party_id_fields
from data_contracts.models import model_for
from data_contracts.suites import suite_name
from data_contracts.validate import validate_frame

BASE: dict[str, Any] = {
    spec.name: spec.example for spec in contract_for("declarations").fields if spec.required
}


CASES: list[tuple[Any, bool, bool]] = [  # importer_id, valid as EORI, valid as opaque
    ("DE987654321098", True, True),
    ("7300412", False, True),  # a national register number
    ("NO 123/45-Æ", False, True),
    (7300412, False, True),  # a number in a request: its text
    ("A\x01B", False, False),  # a control character is no id
    ("X" * 71, False, False),  # bounded length
    ("   ", False, False),  # blank is absent, and the field is required
]


def _model_accepts(identifiers: str, record: dict[str, Any]) -> bool:
    try:
        model_for("declarations", identifiers).model_validate(record)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("identifiers", ["eori", "opaque"])
def test_both_sides_judge_party_ids_alike(identifiers: str) -> None:
    records = [
        {**BASE, "declaration_id": f"D{i}", "importer_id": importer_id}
        for i, (importer_id, _, _) in enumerate(CASES)
    ]
    result = validate_frame(pd.DataFrame(records), "declarations", identifiers=identifiers)
    batch = set(result.valid["declaration_id"])
    for record, (importer_id, eori, opaque) in zip(records, CASES, strict=True):
        expected = eori if identifiers == "eori" else opaque
        assert (record["declaration_id"] in batch) == expected, importer_id
        assert _model_accepts(identifiers, record) == expected, importer_id


def test_formats_change_only_the_party_ids() -> None:
    for kind in ("declarations", "ens", "control-results"):
        eori, opaque = contract_for(kind), contract_for(kind, "opaque")
        changed = {a.name for a, b in zip(eori.fields, opaque.fields, strict=True) if a != b}
        assert changed == set(party_id_fields(eori))
    assert set(party_id_fields(contract_for("declarations"))) == {"declarant_id", "importer_id"}
    assert set(party_id_fields(contract_for("ens"))) == {"carrier_id", "consignee_id"}
    assert suite_name(contract_for("ens")) != suite_name(contract_for("ens", "opaque"))


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="identifier format"):
        contract_for("declarations", "national")
