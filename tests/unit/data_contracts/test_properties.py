"""Property-based tests of batch validation: every rule catches what it should, and only that.

The corruptions are derived from the contract objects (each ``FieldSpec``'s requiredness, codes,
pattern, bounds, length and type, and each cross-field rule), so a rule added to
``definitions.py`` is exercised here without touching this file; a new *kind* of rule makes
``test_every_kind_of_rule_has_a_corruption`` fail until a corruption for it is written below.
Hypothesis draws the corrupt values (codes not in the list, near-miss identifiers, numbers at or
past a bound, overlong text, unparsable values) and the rows they are applied to.

One Great Expectations run costs about half a second however small the frame, so each example
validates a single frame holding every corruption of the contract next to untouched valid rows,
and examples are few.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from data_contracts.definitions import (
    IDENTIFIER_FORMATS,
    KINDS,
    FieldSpec,
    RecordContract,
    contract_for,
    party_id_fields,
)
from data_contracts.suites import build_suite
from data_contracts.validate import ValidationResult, validate_frame
from data_contracts.values import ValueRejected, check_text
from tests.unit.data_contracts.records import plain, scaled_below
from world.generate import World

Record = dict[str, Any]
Updates = dict[str, Any]
Expected = set[tuple[str, str]]
UpdatesFor = Callable[[Record], st.SearchStrategy[Updates]]  # the changes that break a rule

# No shrinking: every run of a shrink step costs a GX run, and the assertion messages already
# name the offending row and its reasons.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    phases=NO_SHRINK,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# FieldSpec attributes and RecordContract members that carry rules; everything else describes.
FIELD_RULE_ATTRIBUTES = {
    "required", "codes", "pattern", "gt", "ge", "le", "max_length", "max_items",
}  # fmt: skip
CONTRACT_RULE_MEMBERS = {"pair_rules", "conditional_required", "conditional_max", "list_head_rules"}
DESCRIPTIVE_FIELD_ATTRIBUTES = {"name", "type", "description", "example"}
DESCRIPTIVE_CONTRACT_MEMBERS = {
    "kind",
    "record_name",
    "key",
    "time_field",
    "fields",
    "description",
    "extra_allowed",
    "tags",
    "identifiers",  # which contract variant (EORI or opaque party ids), not a rule itself
}
# The boolean spellings the contract accepts (pydantic's): anything else is a type error.
BOOL_SPELLINGS = {"true", "t", "1", "yes", "y", "on", "false", "f", "0", "no", "n", "off"}
LIST_SEPARATOR = ">"  # how lists are written in CSV cells (coerce.py)

MISSING = st.sampled_from([None, "", "   ", "\t", float("nan")])
LETTERS = st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True)
# Characters str.strip() never removes, so a drawn length is the length the contract sees.
VISIBLE = st.characters(exclude_categories=("Z", "C"))


@dataclass(frozen=True)
class Corruption:
    """A way to break one rule: the (field, rule) reason it must produce, and how to break it."""

    field: str
    rule: str
    updates: UpdatesFor
    # Breaks only its field's own value, so it can be combined with others on distinct fields
    # (a cross-field rule is silent when one of its fields is already broken).
    field_level: bool = True


# --- drawing corrupt values ----------------------------------------------------------------------


def _stripped(value: str) -> str:
    return value.strip()


def _not_a_code(spec: FieldSpec, codes: frozenset[Any], in_list: bool) -> st.SearchStrategy[Any]:
    """Values outside the code list: near misses of real codes, and arbitrary text.

    In a list, an element may not contain the CSV list separator (see ``separator-in-element``
    in test_agreement.py) and may not be blank: a blank element makes the list unreadable, a
    ``type`` problem (hypothesis found ``["\x1d", "NL"]``; ``str.strip`` removes ``\x1d``).
    A blank scalar is a ``required`` problem, not a ``code_list`` one.
    """
    if spec.type == "int":
        return st.integers(-(10**6), 10**6).filter(lambda v: v not in codes)
    ordered = sorted(codes, key=str)
    near_miss = st.sampled_from(ordered).flatmap(
        lambda code: st.sampled_from([code.lower(), code + "X", code[:-1], code[::-1], f" {code}1"])
    )
    anything = st.text(min_size=1, max_size=8)
    if in_list:
        return st.one_of(near_miss, anything).filter(
            lambda s: (
                bool(s.strip())
                and s.strip() not in codes
                and LIST_SEPARATOR not in s
                and _allowed_text(s)
            )
        )
    return st.one_of(near_miss, anything).filter(
        lambda s: bool(s.strip()) and s.strip() not in codes and _allowed_text(s)
    )


def _allowed_text(text: str) -> bool:
    """Text without the characters every text field refuses (those are a ``type`` problem)."""
    try:
        check_text(text)
    except ValueRejected:
        return False
    return True


def _not_matching(
    pattern: str, base: str, max_length: int, in_list: bool
) -> st.SearchStrategy[str]:
    inserted = st.tuples(st.integers(0, len(base)), st.characters()).map(
        lambda t: base[: t[0]] + t[1] + base[t[0] :]
    )
    dropped = st.integers(0, max(len(base) - 1, 0)).map(lambda i: base[:i] + base[i + 1 :])
    # A pattern that takes almost any text (opaque ids refuse only control characters) is
    # broken only by a character the text check lets through: a tab or a C1 control inside.
    controlled = st.tuples(
        st.integers(1, max(len(base) - 1, 1)), st.sampled_from(["\t", "\x80", "\x9f"])
    ).map(lambda t: base[: t[0]] + t[1] + base[t[0] :])
    takes_almost_anything = all(re.fullmatch(pattern, text) for text in ("x", base.lower()))
    candidates = (
        controlled
        if takes_almost_anything
        else st.one_of(
            inserted, dropped, controlled, st.just(base.lower()), st.text(min_size=1, max_size=20)
        )
    )
    return candidates.filter(
        lambda s: (
            bool(s.strip())
            and len(s.strip()) <= max_length
            and re.fullmatch(pattern, s.strip()) is None
            and (not in_list or LIST_SEPARATOR not in s)
            and _allowed_text(s)
        )
    )


def _overlong(limit: int) -> st.SearchStrategy[str]:
    # Repeating a short chunk keeps Hypothesis' buffer small for 2,000-character limits.
    return st.tuples(st.text(VISIBLE, min_size=1, max_size=8), st.integers(1, 40)).map(
        lambda t: (t[0] * (limit // len(t[0]) + 2))[: limit + t[1]]
    )


def _as_text_sometimes(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Numbers as a JSON body carries them, or as a CSV cell does."""
    return st.one_of(numbers, numbers.map(repr))


def _at_or_below(bound: float, is_int: bool) -> st.SearchStrategy[Any]:
    if is_int:
        return _as_text_sometimes(st.integers(-(2**53), math.floor(bound)))
    return _as_text_sometimes(
        st.one_of(
            st.just(float(bound)),
            st.floats(min_value=-1e12, max_value=bound, allow_nan=False),
        )
    )


def _below(bound: float, is_int: bool) -> st.SearchStrategy[Any]:
    if is_int:
        return _as_text_sometimes(st.integers(-(2**53), math.ceil(bound) - 1))
    return _as_text_sometimes(
        st.floats(min_value=-1e12, max_value=bound, exclude_max=True, allow_nan=False)
    )


def _above(bound: float, is_int: bool) -> st.SearchStrategy[Any]:
    if is_int:
        return _as_text_sometimes(st.integers(math.floor(bound) + 1, 2**53))
    return _as_text_sometimes(
        st.floats(min_value=bound, max_value=1e12, exclude_min=True, allow_nan=False)
    )


def _is_json(text: str, kind: type) -> bool:
    try:
        return isinstance(json.loads(text), kind)
    except ValueError:
        return False


def _unparsable(spec: FieldSpec) -> st.SearchStrategy[Any] | None:
    """Values that cannot be read as the field's type (None: every value is valid text)."""
    if spec.type == "int":
        fractions = st.floats(-1e6, 1e6).filter(lambda x: not x.is_integer())
        return st.one_of(LETTERS, _as_text_sometimes(fractions), st.sampled_from(["1,5", "--1"]))
    if spec.type == "float":
        return st.one_of(LETTERS, st.sampled_from(["1,5", "1.2.3", "--1", "12 kg", "1e400"]))
    if spec.type == "bool":
        return st.one_of(LETTERS, st.integers(2, 99).map(str)).filter(
            lambda s: s.strip().lower() not in BOOL_SPELLINGS
        )
    if spec.type == "timestamp":
        malformed = st.sampled_from(
            [
                *("now", "today", "2026", "20261102", "1700000000", "2026-02-30", "2026-13-01"),
                *("2026-11-02T25:00:00", "02/11/2026", "2026-11-02X09:30"),
            ]
        )
        return st.one_of(malformed, LETTERS, st.integers(0, 2**40))
    if spec.type == "str_list":
        broken_json = (
            st.text(max_size=10).map(lambda s: "[" + s).filter(lambda s: not _is_json(s, list))
        )
        scalars = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
        blank_element = st.sampled_from(["", " ", "\t", "\x1d"]).map(lambda b: ["CN", b])
        return st.one_of(
            broken_json,
            scalars,
            st.dictionaries(st.text(max_size=3), st.integers()),
            blank_element,
        )
    if spec.type == "map":
        not_an_object = st.text(min_size=1, max_size=10).filter(
            lambda s: bool(s.strip()) and not _is_json(s, dict)
        )
        return st.one_of(not_an_object, st.integers(), st.lists(st.integers(), max_size=3))
    return None


# --- corruptions derived from the contract -------------------------------------------------------


def _element_corruption(spec: FieldSpec, elements: st.SearchStrategy[Any]) -> UpdatesFor:
    """Replace one element of the record's list (or of the spec's example) by a bad one."""

    def updates(record: Record) -> st.SearchStrategy[Updates]:
        items = list(record.get(spec.name) or spec.example)
        return st.tuples(st.integers(0, len(items) - 1), elements).map(
            lambda t: {spec.name: [*items[: t[0]], t[1], *items[t[0] + 1 :]]}
        )

    return updates


def _fixed(updates: st.SearchStrategy[Updates]) -> UpdatesFor:
    """The same updates whatever the record."""

    def draw(record: Record) -> st.SearchStrategy[Updates]:
        return updates

    return draw


def _constant(strategy: st.SearchStrategy[Any], name: str) -> UpdatesFor:
    """Set field ``name`` to a drawn value, whatever the record."""
    return _fixed(strategy.map(lambda value: {name: value}))


def _pattern_breaker(spec: FieldSpec, limit: int) -> UpdatesFor:
    """A near miss of the record's own value (or the spec's example) that the pattern refuses."""

    def draw(record: Record) -> st.SearchStrategy[Updates]:
        base = str(record.get(spec.name) or spec.example)
        bad = _not_matching(spec.pattern or "", base, limit, in_list=False)
        return bad.map(lambda value: {spec.name: value})

    return draw


def _too_many(spec: FieldSpec) -> Any:
    """One element (key) more than ``spec`` allows, each valid on its own."""
    count = (spec.max_items or 0) + 1
    if spec.type == "map":
        return {f"k{i}": i for i in range(count)}
    return [spec.example[0]] * count


def _field_corruptions(spec: FieldSpec) -> list[Corruption]:
    out: list[Corruption] = []
    name, is_int = spec.name, spec.type == "int"
    if spec.required:
        missing = st.one_of(MISSING, st.just([])) if spec.type == "str_list" else MISSING
        out.append(Corruption(name, "required", _constant(missing, name)))
    codes = spec.code_set()
    if codes is not None:
        if spec.type == "str_list":
            bad = _element_corruption(spec, _not_a_code(spec, codes, in_list=True))
            out.append(Corruption(name, "code_list", bad))
        else:
            out.append(
                Corruption(name, "code_list", _constant(_not_a_code(spec, codes, False), name))
            )
    if spec.pattern is not None:
        limit = spec.max_length or 40
        if spec.type == "str_list":
            example = spec.example[0]
            bad = _element_corruption(spec, _not_matching(spec.pattern, example, limit, True))
            out.append(Corruption(name, "pattern", bad))
        else:
            out.append(Corruption(name, "pattern", _pattern_breaker(spec, limit)))
    if spec.max_length is not None:
        out.append(Corruption(name, "max_length", _constant(_overlong(spec.max_length), name)))
    if spec.max_items is not None:
        out.append(Corruption(name, "max_items", _constant(st.just(_too_many(spec)), name)))
    if spec.gt is not None:
        out.append(Corruption(name, "greater_than", _constant(_at_or_below(spec.gt, is_int), name)))
    if spec.ge is not None:
        out.append(Corruption(name, "at_least", _constant(_below(spec.ge, is_int), name)))
    if spec.le is not None:
        out.append(Corruption(name, "at_most", _constant(_above(spec.le, is_int), name)))
    unparsable = _unparsable(spec)
    if unparsable is not None:
        out.append(Corruption(name, "type", _constant(unparsable, name)))
    return out


def corruptions(contract: RecordContract) -> list[Corruption]:
    """Every way to break every rule of ``contract``."""
    out = [c for spec in contract.fields for c in _field_corruptions(spec)]
    for pair in contract.pair_rules:
        # Both values stay valid on their own; only their order is wrong.
        def smaller(record: Record, rule: Any = pair) -> st.SearchStrategy[Updates]:
            right = record[rule.right]
            factors = st.floats(0.01, 0.99) if rule.or_equal else st.floats(0.01, 1.0)
            return factors.map(lambda f: {rule.left: scaled_below(right, f)})

        out.append(Corruption(pair.left, pair.rule, smaller, field_level=False))
    for cond in contract.conditional_required:
        absent = st.builds(
            lambda when, value, c=cond: {c.when_field: when, c.field: value},
            st.sampled_from(cond.when_values),
            MISSING,
        )
        out.append(Corruption(cond.field, cond.rule, _fixed(absent), field_level=False))
    for cond_max in contract.conditional_max:
        is_int = contract.spec(cond_max.field).type == "int"
        over = st.builds(
            lambda when, value, c=cond_max: {c.when_field: when, c.field: value},
            st.sampled_from(cond_max.when_values),
            _above(cond_max.limit, is_int),
        )
        out.append(Corruption(cond_max.field, cond_max.rule, _fixed(over), field_level=False))
    for head in contract.list_head_rules:
        codes = contract.spec(head.list_field).code_set()
        assert codes is not None, f"{head.rule}: only coded lists have a corruption so far"

        def wrong_head(record: Record, rule: Any = head, allowed: Any = codes) -> Any:
            others = sorted(allowed - {record[rule.equals_field]})
            rest = list(record[rule.list_field])[1:]
            return st.sampled_from(others).map(lambda code: {rule.list_field: [code, *rest]})

        out.append(Corruption(head.list_field, head.rule, wrong_head, field_level=False))
    return out


# Each kind in each identifier format that changes its rules (control results name no party).
VARIANTS = [
    (kind, identifiers)
    for kind in sorted(KINDS)
    for identifiers in IDENTIFIER_FORMATS
    if identifiers == "eori" or party_id_fields(contract_for(kind))
]
CORRUPTIONS = {(k, i): corruptions(contract_for(k, i)) for k, i in VARIANTS}


# --- valid rows from the synthetic world ---------------------------------------------------------


@pytest.fixture(scope="module")
def pools(small_world: World) -> dict[str, list[Record]]:
    """The world's valid rows of each kind, as plain records (one version per key)."""
    frames = {
        "declarations": small_world.declarations,
        "ens": small_world.ens,
        "control-results": small_world.control_results,
    }
    out = {}
    for kind, frame in frames.items():
        names = contract_for(kind).field_names
        valid = validate_frame(frame, kind).valid[names]
        out[kind] = [{k: plain(v) for k, v in row.items()} for row in valid.to_dict("records")]
    return out


def _unique(record: Record, contract: RecordContract, tag: str) -> Record:
    """A copy whose key no other row shares, so re-send detection stays out of the way."""
    copy = dict(record)
    copy[contract.key[0]] = f"{copy[contract.key[0]]}-{tag}"
    return copy


def _reasons_by_row(result: ValidationResult) -> dict[int, list[dict[str, Any]]]:
    rows = result.quarantine["row"].astype(int)
    return dict(zip(rows, result.quarantine["reasons"], strict=True))


# --- tests ---------------------------------------------------------------------------------------


def test_every_kind_of_rule_has_a_corruption() -> None:
    """A new kind of rule in definitions.py must come with a way to break it here."""
    field_attributes = {f.name for f in fields(FieldSpec)} - DESCRIPTIVE_FIELD_ATTRIBUTES
    assert field_attributes == FIELD_RULE_ATTRIBUTES
    contract_members = {f.name for f in fields(RecordContract)} - DESCRIPTIVE_CONTRACT_MEMBERS
    assert contract_members == CONTRACT_RULE_MEMBERS


@pytest.mark.parametrize(("kind", "identifiers"), VARIANTS)
def test_corruptions_cover_every_expectation_of_the_suite(kind: str, identifiers: str) -> None:
    """The derived corruptions break exactly the suite's rules, plus parsing (``type``)."""
    import great_expectations as gx

    gx.get_context(mode="ephemeral")  # GX 1.x builds suites only inside a context
    contract = contract_for(kind, identifiers)
    suite_rules = {(e.meta["field"], e.meta["rule"]) for e in build_suite(contract).expectations}
    targets = {(c.field, c.rule) for c in CORRUPTIONS[kind, identifiers]}
    typed_fields = {(f.name, "type") for f in contract.fields if f.type != "str"}
    assert targets == suite_rules | typed_fields


@pytest.mark.parametrize(("kind", "identifiers"), VARIANTS)
@EXAMPLES
@given(data=st.data())
def test_each_corruption_is_quarantined_with_its_reason(
    kind: str, identifiers: str, data: st.DataObject, pools: dict[str, list[Record]]
) -> None:
    contract, pool = contract_for(kind, identifiers), pools[kind]
    pick = st.integers(0, len(pool) - 1)
    rows: list[tuple[Record, Expected]] = []
    clean = data.draw(st.lists(pick, min_size=5, max_size=25, unique=True), label="clean rows")
    rows += [(pool[i], set()) for i in clean]
    for n, corruption in enumerate(CORRUPTIONS[kind, identifiers]):
        record = _unique(pool[data.draw(pick)], contract, f"C{n}")
        record.update(data.draw(corruption.updates(record), label=corruption.rule))
        rows.append((record, {(corruption.field, corruption.rule)}))
    # Rows broken in several fields at once must name every broken field.
    field_level = [c for c in CORRUPTIONS[kind, identifiers] if c.field_level]
    for n in range(3):
        chosen = data.draw(
            st.lists(
                st.sampled_from(field_level), min_size=2, max_size=4, unique_by=lambda c: c.field
            )
        )
        record = _unique(pool[data.draw(pick)], contract, f"M{n}")
        for corruption in chosen:
            record.update(data.draw(corruption.updates(record), label=corruption.rule))
        rows.append((record, {(c.field, c.rule) for c in chosen}))
    rows = data.draw(st.permutations(rows), label="order")

    frame = pd.DataFrame([record for record, _ in rows], columns=contract.field_names)
    result = validate_frame(frame, kind, identifiers=identifiers)

    assert result.n_valid + result.n_quarantined == result.n_input == len(rows)
    reasons = _reasons_by_row(result)
    broken = {position + 1 for position, (_, expected) in enumerate(rows) if expected}
    assert set(reasons) <= broken, [(p, rows[p - 1][0], reasons[p]) for p in set(reasons) - broken]
    assert broken <= set(reasons), [rows[p - 1] for p in broken - set(reasons)]
    for position, (record, expected) in enumerate(rows):
        if not expected:
            continue
        named = {(r["field"], r["rule"]) for r in reasons[position + 1]}
        assert expected <= named, f"row {position + 1} {record}: reasons {named}"
        assert all(set(r) == {"field", "rule", "value", "message"} for r in reasons[position + 1])
    kept = set(result.valid[contract.key[0]])
    assert kept == {record[contract.key[0]] for record, expected in rows if not expected}


def _free_text_fields(contract: RecordContract) -> list[str]:
    """Fields any text fits (an amendment can change them without breaking a rule)."""
    return [
        f.name
        for f in contract.fields
        if f.type == "str"
        and f.codes is None
        and f.pattern is None
        and f.max_length is not None
        and f.name not in contract.key
    ]


def _other_text(old: str | None) -> st.SearchStrategy[str]:
    """Valid free text that differs from ``old`` once stripped (so the content changed)."""
    text = st.text("abcdefghijklmnopqrstuvwxyz0123456789 ", min_size=1, max_size=30)
    return text.map(_stripped).filter(lambda s: bool(s) and s != old)


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(
    max_examples=6, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_resends_keep_only_the_newest_version(
    kind: str, data: st.DataObject, pools: dict[str, list[Record]]
) -> None:
    """An identical re-send is an ``exact_duplicate``, an earlier version is ``superseded``."""
    contract, pool = contract_for(kind), pools[kind]
    editable = _free_text_fields(contract)
    picks = data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=3, max_size=10, unique=True))
    versions: list[list[Record]] = []
    for i in picks:
        history = [pool[i]]
        # Each later send repeats the last version or amends one free-text field of it.
        for _ in range(data.draw(st.integers(0, 3), label="re-sends")):
            last = dict(history[-1])
            if data.draw(st.booleans(), label="amended"):
                name = data.draw(st.sampled_from(editable))
                last[name] = data.draw(_other_text(last[name]), label=name)
            history.append(last)
        versions.append(history)
    # Interleave the keys' histories, keeping each key's own order.
    tokens = data.draw(st.permutations([k for k, h in enumerate(versions) for _ in h]))
    sent = [0] * len(versions)
    rows: list[tuple[Record, str | None]] = []
    for k in tokens:
        history = versions[k]
        record = history[sent[k]]
        sent[k] += 1
        newest = sent[k] == len(history)
        rule = None if newest else "exact_duplicate" if record == history[-1] else "superseded"
        rows.append((record, rule))

    frame = pd.DataFrame([record for record, _ in rows], columns=contract.field_names)
    result = validate_frame(frame, kind)

    assert result.n_valid + result.n_quarantined == len(rows)
    assert result.n_valid == len(versions), "one version per key is kept"
    reasons = _reasons_by_row(result)
    key_name = ",".join(contract.key)
    for position, (record, rule) in enumerate(rows):
        if rule is None:
            assert position + 1 not in reasons, f"row {position + 1}: the newest version is valid"
            continue
        (reason,) = reasons[position + 1]
        assert (reason["field"], reason["rule"]) == (key_name, rule)
        assert reason["value"] == "|".join(str(record[k]) for k in contract.key)
    newest = pd.DataFrame([h[-1] for h in versions], columns=contract.field_names)
    kept = result.valid.set_index(list(contract.key)).sort_index()
    expected = newest.set_index(list(contract.key)).sort_index()
    for name in editable:
        assert kept[name].astype(object).where(kept[name].notna(), None).tolist() == (
            expected[name].astype(object).where(expected[name].notna(), None).tolist()
        ), f"{name}: the newest version's content is the one kept"
