"""The Great Expectations suite and the pydantic model agree row for row (spec §2).

Both are derived from ``definitions.py`` so that batch files and HTTP bodies are judged alike;
this is the proof on generated rows: every valid row of a synthetic world, boundary values that
are still valid, and corrupt copies breaking each rule of each contract with deterministic values
(derived from the contract objects, so a new field or bound is covered without editing this file).
A row must be quarantined by ``validate_frame`` exactly when ``model_for(kind).model_validate``
rejects it. The model runs cross-field rules only on records whose fields are valid, so the
comparison is per row (rejected or not), plus: both name the field that was broken.

``FORMER_DISAGREEMENTS`` lists the inputs on which the two still differ, as strict xfails: they
document the gap, and fail loudly once someone closes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from data_contracts.definitions import (
    IDENTIFIER_FORMATS,
    KINDS,
    FieldSpec,
    RecordContract,
    contract_for,
    party_id_fields,
)
from data_contracts.models import model_for, reasons_from_error
from data_contracts.validate import validate_frame
from tests.unit.data_contracts.records import plain, scaled_below
from world.generate import World

Record = dict[str, Any]
# (label, record, field the record breaks, or None for a record that must stay valid)
Case = tuple[str, Record, str | None]


def valid_records(frame: pd.DataFrame, kind: str) -> list[Record]:
    """The rows of ``frame`` that pass batch validation, as plain records (no warnings)."""
    names = contract_for(kind).field_names
    valid = validate_frame(frame, kind).valid[names]
    return [{k: plain(v) for k, v in row.items()} for row in valid.to_dict("records")]


@pytest.fixture(scope="module")
def world_records(small_world: World) -> dict[str, list[Record]]:
    return {
        "declarations": valid_records(small_world.declarations, "declarations"),
        "ens": valid_records(small_world.ens, "ens"),
        "control-results": valid_records(small_world.control_results, "control-results"),
    }


# --- deterministic corruptions and boundary values, derived from the contract -------------------


def _codes_missed(spec: FieldSpec, codes: frozenset[Any]) -> list[Any]:
    if spec.type == "int":
        return [v for v in (0, 6, 99, -1) if v not in codes]
    first = sorted(codes, key=str)[0]
    return [v for v in (first.lower(), first + "X", "??") if v not in codes]


def _bad_values(spec: FieldSpec) -> Iterator[tuple[str, Any]]:
    """(rule, value) pairs that break ``spec`` alone."""
    is_int = spec.type == "int"
    if spec.required:
        for value in (None, "", "   "):
            yield "required", value
        if spec.type == "str_list":
            yield "required", []
    codes = spec.code_set()
    if codes is not None:
        for value in _codes_missed(spec, codes):
            yield "code_list", [value] if spec.type == "str_list" else value
    if spec.pattern is not None:
        example = spec.example[0] if spec.type == "str_list" else str(spec.example)
        for value in (example + "!", example.lower() + "~", "!", example[:1], example[:-1]):
            if re.fullmatch(spec.pattern, value) is None:
                yield "pattern", [value] if spec.type == "str_list" else value
    if spec.max_length is not None:
        yield "max_length", "A" * (spec.max_length + 1)
        yield "max_length", "é" * (spec.max_length + 1)
    if spec.max_items is not None:
        count = spec.max_items + 1
        if spec.type == "map":
            yield "max_items", {f"k{i}": i for i in range(count)}
        else:
            yield "max_items", [spec.example[0]] * count
    if spec.gt is not None:
        yield "greater_than", spec.gt
        yield "greater_than", spec.gt - (1 if is_int else 1e-9)
        yield "greater_than", str(spec.gt - 1)
    if spec.ge is not None:
        yield "at_least", spec.ge - (1 if is_int else 1e-9)
        yield "at_least", -1_000_000
    if spec.le is not None:
        yield "at_most", spec.le + 1
        yield "at_most", str(spec.le * 100)
    unparsable: dict[str, tuple[Any, ...]] = {
        "int": ("abc", "1.5", 1.5, "inf", "2**8"),
        "float": ("abc", "nan", "inf", "1,5", "12 kg"),
        "bool": ("maybe", "2", 2, "ja"),
        "timestamp": (
            "not a date",
            "2026-02-30",
            "now",
            "today",
            "20261102",
            "2026",
            1_700_000_000,
        ),
        "str_list": (5, 2.5, "[broken", {"CN": 1}),
        "map": (
            "not json",
            "[1, 2]",
            5,
            [1, 2],
            {"nested": {"a": 1}},
            {"bad key": 1},
            {"k": "x" * 300},
            {"k": "nul\x00"},
        ),
    }
    for value in unparsable.get(spec.type, ()):
        yield "type", value


def _good_values(spec: FieldSpec) -> Iterator[Any]:
    """Values at the edge of ``spec`` that both sides must accept."""
    if not spec.required:
        yield from (None, "", "  ")
    if spec.type in ("int", "float"):
        if spec.gt is not None:
            yield spec.gt + (1 if spec.type == "int" else 1e-9)
        for bound in (spec.ge, spec.le):
            if bound is not None:
                yield bound
                yield str(bound)
    if spec.max_length is not None and spec.pattern is None and spec.code_set() is None:
        yield "A" * spec.max_length
        yield " padded text "
        yield "\u0645\u0631\u062d\u0628\u0627 \u200fRTL mark\ttab"
    if spec.type == "bool":
        yield from ("yes", "0", "TRUE", "off")
    if spec.type == "timestamp":
        yield from (
            "2026-11-02",
            "2026-11-02T09:30:00Z",
            "2026-11-02 09:30",
            "2026-11-02T09:30+01:00",
        )
        yield "2026-11-02T09:30:00.123456789Z"
    if spec.code_set() is not None and spec.type != "str_list":
        code = sorted(spec.code_set() or (), key=str)[-1]
        yield f" {code} " if isinstance(code, str) else str(code)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _other_code(contract: RecordContract, name: str, excluded: tuple[Any, ...]) -> Any:
    return sorted((contract.spec(name).code_set() or set()) - set(excluded), key=str)[0]


def _keep_cross_rules(contract: RecordContract, base: Record, updates: Record) -> Record:
    """Adjust the partner fields so a valid boundary value breaks no cross-field rule."""
    out = dict(updates)
    for pair in contract.pair_rules:
        for name, partner, scale in ((pair.left, pair.right, 0.5), (pair.right, pair.left, 2.0)):
            if name in updates and not _is_blank(updates[name]):
                if contract.spec(name).type == "timestamp":
                    # Times: the partner takes the same instant (every pair rule is or-equal).
                    out[partner] = updates[name]
                    continue
                number = float(updates[name])
                out[partner] = number if pair.or_equal else number * scale
    for cond_max in contract.conditional_max:
        if cond_max.field in updates:
            out[cond_max.when_field] = _other_code(
                contract, cond_max.when_field, cond_max.when_values
            )
    for head in contract.list_head_rules:
        head_value = updates.get(head.equals_field)
        if not _is_blank(head_value):
            out[head.list_field] = [str(head_value).strip(), *list(base[head.list_field])[1:]]
    return out


def cases(contract: RecordContract, base: Record) -> Iterator[Case]:
    """Every corruption and every boundary value, each applied to a copy of ``base``."""
    conditional = {cond.field: cond for cond in contract.conditional_required}
    for spec in contract.fields:
        for rule, value in _bad_values(spec):
            yield f"{spec.name}:{rule}={value!r:.40}", {spec.name: value}, spec.name
        for value in _good_values(spec):
            updates = {spec.name: value}
            if spec.name in conditional and _is_blank(value):
                # Absent is valid only where the condition does not require the field.
                cond = conditional[spec.name]
                updates[cond.when_field] = _other_code(contract, cond.when_field, cond.when_values)
            yield (
                f"{spec.name}:valid={value!r:.40}",
                _keep_cross_rules(contract, base, updates),
                None,
            )
    for pair in contract.pair_rules:
        right = base[pair.right]
        yield pair.rule, {pair.left: scaled_below(right, 0.5)}, pair.left
        yield (
            f"{pair.rule}:equal",
            {pair.left: scaled_below(right, 1.0)},
            None if pair.or_equal else pair.left,
        )
    for cond in contract.conditional_required:
        for when in cond.when_values:
            for missing in (None, ""):
                yield (
                    f"{cond.rule}:{when}",
                    {cond.when_field: when, cond.field: missing},
                    cond.field,
                )
    for cond_max in contract.conditional_max:
        when = cond_max.when_values[0]
        for value, broken in ((cond_max.limit, None), (cond_max.limit + 0.01, cond_max.field)):
            yield (
                f"{cond_max.rule}={value}",
                {cond_max.when_field: when, cond_max.field: value},
                broken,
            )
    for head in contract.list_head_rules:
        codes = sorted(
            (contract.spec(head.list_field).code_set() or frozenset()) - {base[head.equals_field]}
        )
        rest = list(base[head.list_field])[1:]
        yield head.rule, {head.list_field: [codes[0], *rest]}, head.list_field
        yield f"{head.rule}:same", {head.list_field: [base[head.equals_field], *rest]}, None


# --- comparing the two sides ----------------------------------------------------------------------


def _model_reasons(kind: str, record: Record, identifiers: str = "eori") -> list[dict[str, Any]]:
    try:
        model_for(kind, identifiers).model_validate(record)
    except ValidationError as error:
        return reasons_from_error(error)
    return []


def _compare(
    kind: str, records: list[Record], identifiers: str = "eori"
) -> tuple[list[set[str]], list[set[str]]]:
    """Fields named by the batch side and by the model side, per record (empty: accepted)."""
    frame = pd.DataFrame(records, columns=contract_for(kind).field_names)
    result = validate_frame(frame, kind, identifiers=identifiers)
    assert result.n_valid + result.n_quarantined == len(records)
    batch: list[set[str]] = [set() for _ in records]
    for row, reasons in zip(result.quarantine["row"], result.quarantine["reasons"], strict=True):
        batch[int(row) - 1] = {r["field"] for r in reasons}
    model = [
        {r["field"].split(".")[0] for r in _model_reasons(kind, rec, identifiers)}
        for rec in records
    ]
    return batch, model


def _has_rule(spec: FieldSpec) -> bool:
    bounds = (spec.gt, spec.ge, spec.le, spec.max_length, spec.pattern, spec.codes)
    return spec.required or any(bound is not None for bound in bounds)


def _unique(record: Record, contract: RecordContract, tag: str) -> Record:
    copy = dict(record)
    copy[contract.key[0]] = f"{copy[contract.key[0]]}-{tag}"
    return copy


# Each kind in each identifier format that changes its rules (control results name no party).
VARIANTS = [
    (kind, identifiers)
    for kind in sorted(KINDS)
    for identifiers in IDENTIFIER_FORMATS
    if identifiers == "eori" or party_id_fields(contract_for(kind))
]


@pytest.mark.parametrize(("kind", "identifiers"), VARIANTS)
def test_suite_and_model_agree_on_every_row(
    kind: str, identifiers: str, world_records: dict[str, list[Record]]
) -> None:
    contract = contract_for(kind, identifiers)
    good = world_records[kind]
    labelled: list[Case] = [(f"world row {i + 1}", r, None) for i, r in enumerate(good)]
    # Apply every case to a few different world rows (cross-field rules depend on the row).
    for b, base in enumerate(good[:: max(1, len(good) // 3)][:3]):
        for n, (label, updates, broken) in enumerate(cases(contract, base)):
            record = _unique(base, contract, f"A{b}x{n}")
            record.update(updates)
            labelled.append((label, record, broken))
    records = [record for _, record, _ in labelled]

    batch, model = _compare(kind, records, identifiers)

    disagreements = [
        (label, sorted(by_batch), sorted(by_model))
        for (label, _, _), by_batch, by_model in zip(labelled, batch, model, strict=True)
        if bool(by_batch) != bool(by_model)
    ]
    assert not disagreements, f"{len(disagreements)} rows judged differently: {disagreements[:10]}"
    for (label, _, broken), by_batch, by_model in zip(labelled, batch, model, strict=True):
        if broken is None:
            assert not by_batch, f"{label}: must be valid, batch names {by_batch}"
        else:
            assert broken in by_batch and broken in by_model, (
                f"{label}: batch names {by_batch}, model names {by_model}"
            )
    ruled = {f.name for f in contract.fields if f.type != "str" or _has_rule(f)}
    assert ruled <= {broken for _, _, broken in labelled if broken}, "every rule is exercised"


# Inputs on which a pandas batch parser and pydantic read values differently (found by this
# test before both sides shared one value parser, data_contracts/values.py). They stay here as
# regression cases: both sides must now give the same verdict.
FORMER_DISAGREEMENTS: list[tuple[str, str, str, Any, str]] = [
    ("declarations", "item-exponent", "item_number", "1e3", "batch reads 1000; model refuses"),
    ("declarations", "float-underscore", "duty_eur", "1_000", "model reads 1000; batch refuses"),
    ("declarations", "padded-bool", "container", " off ", "batch strips it; the model does not"),
    ("declarations", "year-2300", "lodged_at", "2300-01-01T00:00:00Z", "beyond pandas' ns range"),
    ("declarations", "unit-separator", "declaration_type", "H1\x1f", "str.strip vs Rust trim"),
    ("declarations", "float-as-bool", "container", 1.0, "model reads 1.0 as true"),
    ("declarations", "bool-as-text", "goods_description", True, "batch reads 'True'"),
    ("ens", "int64-overflow", "packages", 2**63, "batch cannot store it in Int64"),
    ("ens", "separator-in-element", "itinerary", ["CN", "AE>NL"], "batch joins list with '>'"),
]


@pytest.fixture(scope="module")
def former_judgements(
    world_records: dict[str, list[Record]],
) -> dict[str, tuple[set[str], set[str]]]:
    """Both sides' verdicts on every former disagreement (one batch run per kind)."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for kind in KINDS:
        labels, records = [], []
        for case_kind, label, field, value, _ in FORMER_DISAGREEMENTS:
            if case_kind != kind:
                continue
            record = _unique(world_records[kind][0], contract_for(kind), label)
            record[field] = value
            if field == "itinerary":
                record["country_of_loading"] = value[0]
            labels.append(label)
            records.append(record)
        if records:
            batch, model = _compare(kind, records)
            out.update(zip(labels, zip(batch, model, strict=True), strict=True))
    return out


@pytest.mark.parametrize(
    "label",
    [pytest.param(label, id=label) for _, label, _, _, _ in FORMER_DISAGREEMENTS],
)
def test_former_disagreements_now_agree(
    label: str, former_judgements: dict[str, tuple[set[str], set[str]]]
) -> None:
    batch, model = former_judgements[label]
    assert bool(batch) == bool(model), f"batch names {batch}, model names {model}"
