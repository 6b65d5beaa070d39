"""The column-wise fast path accepts only what the contract's models accept, with their values.

For every record of a small world, and for each field set to each of a list of awkward values,
either the fast path declines (the models decide, with their reasons) or it gives exactly the
columns the models give; and whenever the models refuse a batch, the fast path declines it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from data_contracts.definitions import contract_for
from serving.columnar import ScoreColumns, request_columns, score_columns
from serving.schemas import ScoreRequest
from world.generate import World

_ODD_VALUES: list[Any] = [
    None, "", " ", " padded ", "x\ty", "\u202eabc", "abc\x00", True, False, 0, 1, -1, 0.0, 2.5,
    -3.0, 1e308, 2**53 + 1, 2**64, 10_000, "12", "1.5", "yes", "true", "AB12345678",
    "2026-01-02", "2026-01-02T10:00:00", "2026-01-02T10:00:00+02:00", "2026-13-02T10:00:00Z",
    "1850-01-01T00:00:00Z", "2026-01-02T10:00:00.123456789Z", "now", [], ["CN"], ["CN", "DE"],
    ["cn"], "CN>DE", {}, {"a": 1}, {"a": {"b": 1}}, {"1a": 2}, "H7", "IM", "CN", "XX",
]  # fmt: skip


def _records(frame: Any, kind: str, n: int) -> list[dict[str, Any]]:
    fields = [f for f in contract_for(kind).field_names if f in frame]
    return json.loads(frame[fields].head(n).to_json(orient="records", date_format="iso"))


def _by_models(document: Any) -> ScoreColumns | None:
    """The request validated by the contract's models, by column (None: refused)."""
    try:
        request = ScoreRequest.model_validate_json(json.dumps(document))
    except ValidationError:
        return None
    return request_columns(request)


def _same(fast: ScoreColumns, slow: ScoreColumns) -> None:
    assert (fast.n_declarations, fast.n_ens, fast.explain) == (
        slow.n_declarations,
        slow.n_ens,
        slow.explain,
    )
    for got, expected in ((fast.declarations, slow.declarations), (fast.ens, slow.ens)):
        assert list(got) == list(expected)  # same fields, same order
        for name, column in expected.items():
            assert got[name] == column, name
            # Same Python types too (what the audit log and the features see).
            assert [type(v) for v in got[name]] == [type(v) for v in column], name
            stamps = [v for v in column if hasattr(v, "tzinfo")]
            assert [v.tzinfo for v in got[name] if hasattr(v, "tzinfo")] == [
                v.tzinfo for v in stamps
            ]


def _check(document: Any) -> bool:
    """Fast path and models agree on ``document``; True when the fast path took it."""
    fast = score_columns(document)
    slow = _by_models(document)
    if slow is None:
        assert fast is None, "the fast path accepted what the models refuse"
        return False
    if fast is not None:
        _same(fast, slow)
    return fast is not None


@pytest.fixture(scope="module")
def records(small_world: World) -> dict[str, list[dict[str, Any]]]:
    return {
        "declarations": _records(small_world.declarations, "declarations", 300),
        "ens": _records(small_world.ens, "ens", 300),
    }


def test_real_batches_take_the_fast_path_with_the_models_values(
    records: dict[str, list[dict[str, Any]]],
) -> None:
    assert _check({"declarations": records["declarations"], "explain": True})
    assert _check({"ens": records["ens"]})
    assert _check({"declarations": records["declarations"][:7], "ens": records["ens"][:3]})


@pytest.mark.parametrize("kind", ["declarations", "ens"])
def test_every_field_with_awkward_values_agrees_with_the_models(
    records: dict[str, list[dict[str, Any]]], kind: str
) -> None:
    batch = records[kind][:4]
    taken = refused = 0
    for spec in contract_for(kind, "opaque").fields:
        for value in [*_ODD_VALUES, spec.example]:
            changed = [dict(batch[0]), *batch[1:]]
            changed[0][spec.name] = value
            if _check({kind: changed}):
                taken += 1
            elif _by_models({kind: changed}) is None:
                refused += 1
        missing = [{k: v for k, v in batch[0].items() if k != spec.name}, *batch[1:]]
        _check({kind: missing})
    assert taken > 50 and refused > 50  # both sides of the contract were exercised


def test_cross_field_rules_unknown_fields_and_request_shape_go_to_the_models(
    records: dict[str, list[dict[str, Any]]],
) -> None:
    item = records["declarations"][0]
    for document in (
        {"declarations": [{**item, "gross_mass_kg": item["net_mass_kg"] / 2}]},
        {"declarations": [{**item, "declaration_type": "H7", "customs_value_eur": 151.0}]},
        {"declarations": [{**item, "surprise": 1}]},
        {"declarations": [item], "explain": "yes"},
        {"declarations": [item], "other": []},
        {"declarations": item},
        {"declarations": None},
        {"declarations": [item, 3]},
        [item],
    ):
        assert score_columns(document) is None
        assert _by_models(document) is None
    ens = records["ens"][0]
    for document in (
        {"ens": [{**ens, "ics2_release": "R3", "hs_code": None}]},
        {"ens": [{**ens, "itinerary": ["ZZ", *ens["itinerary"]]}]},
    ):
        assert score_columns(document) is None
        assert _by_models(document) is None
