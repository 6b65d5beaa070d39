"""Column-wise validation of a score request: the fast path in front of the contract's models.

Validating a batch item by item with the contract's pydantic models costs about 25 µs per item,
almost all of it in the Python validators each field runs (the shared value parser, code lists,
cross-field rules). Here the same rules run once per *column* of the already-parsed body, with
C-level checks (types, code-list sets, bounds, one pattern match per value), and give exactly the
values the models give.

The fast path only ever *accepts*: any value it is not sure of (a wrong type, blank or padded
text, a number the models would convert, a rule broken, an unknown field, a missing one) makes it
return ``None``, and the request is validated by the models as before. So every 422 still comes
from the models, with the same reasons, and an accepted batch holds the values the models would
have produced (``tests/unit/serving/test_columnar.py`` checks both on every field and rule).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import repeat
from typing import Any

from data_contracts.definitions import (
    OPAQUE_ID_PATTERN,
    TIMESTAMP_TEXT_PREFIX,
    FieldSpec,
    RecordContract,
    contract_for,
)
from data_contracts.values import ValueRejected, parse_value

__all__ = ["ScoreColumns", "columns_from_items", "request_columns", "score_columns"]

Column = list[Any]
# A column's check: the column as the models would give it, or None (let the models decide).
_Check = Callable[[Column], Column | None]

_MIN_ITEMS = 4  # below this the column checks' fixed cost exceeds the models' per-item cost
_REQUEST_FIELDS = frozenset({"declarations", "ens", "explain"})
_TIMESTAMP_TEXT = re.compile(TIMESTAMP_TEXT_PREFIX)
_YEARS = (1900, 2199)
_INT64 = 2**63
_EXACT_INT = 2**53  # ints up to this size convert to the same float whichever way


@dataclass(frozen=True)
class ScoreColumns:
    """A validated score request by column: field name -> values in item order."""

    declarations: dict[str, Column]
    n_declarations: int
    ens: dict[str, Column]
    n_ens: int
    explain: bool


def request_columns(request: Any) -> ScoreColumns:
    """A request the contract's models validated (a ``ScoreRequest``), by column; a request
    already validated by column is returned as it is."""
    if isinstance(request, ScoreColumns):
        return request
    return ScoreColumns(
        columns_from_items(request.declarations, "declarations"),
        len(request.declarations),
        columns_from_items(request.ens, "ens"),
        len(request.ens),
        request.explain,
    )


def columns_from_items(items: Sequence[Any], kind: str) -> dict[str, Column]:
    """The columns of ``kind`` items the models validated (their attributes), in field order."""
    if not items:
        return {}
    fields = [vars(item) for item in items]
    return {spec.name: [f[spec.name] for f in fields] for spec in contract_for(kind).fields}


def score_columns(document: Any) -> ScoreColumns | None:
    """The request ``document`` (parsed JSON) by column, or None when the models must decide."""
    if type(document) is not dict or not _REQUEST_FIELDS.issuperset(document):
        return None
    if sum(len(v) for v in document.values() if type(v) is list) < _MIN_ITEMS:
        return None  # per item, the models are as fast for a very small batch
    explain = document.get("explain", False)
    if type(explain) is not bool:
        return None
    parsed: dict[str, tuple[dict[str, Column], int]] = {}
    for field, kind in (("declarations", "declarations"), ("ens", "ens")):
        items = document.get(field, [])
        if type(items) is not list:
            return None
        columns = _validator(kind)(items) if items else {}
        if columns is None:
            return None
        parsed[field] = (columns, len(items))
    (declarations, n_declarations), (ens, n_ens) = parsed["declarations"], parsed["ens"]
    return ScoreColumns(declarations, n_declarations, ens, n_ens, explain)


@cache
def _validator(kind: str) -> Callable[[list[Any]], dict[str, Column] | None]:
    """The column-wise validator of ``kind`` (the lenient, opaque-id contract the service
    parses with; the served models' id format is checked afterwards, serving.identifiers)."""
    contract = contract_for(kind, "opaque")
    checks = [(spec.name, _check_for(spec)) for spec in contract.fields]
    allowed = frozenset(spec.name for spec in contract.fields)
    cross = _cross_field_check(contract)

    def validate(items: list[Any]) -> dict[str, Column] | None:
        raw = _transposed(items, allowed)
        if raw is None:
            return None
        columns: dict[str, Column] = {}
        absent = [None] * len(items)
        for name, check in checks:
            column = check(raw.get(name, absent))
            if column is None:
                return None
            columns[name] = column
        return columns if cross(columns) else None

    return validate


def _transposed(items: list[Any], allowed: frozenset[str]) -> dict[str, Column] | None:
    """Field name -> the items' values (objects with only ``allowed`` keys), or None."""
    if not _only(items, dict):
        return None
    keys = list(map(tuple, items))
    if keys.count(keys[0]) == len(keys):
        # Items written by one client have the same keys in the same order: one C-level
        # transposition instead of a look-up per field and item.
        if not allowed.issuperset(keys[0]):
            return None
        rows = map(dict.values, items)
        return dict(zip(keys[0], map(list, zip(*rows, strict=True)), strict=True))
    given = set().union(*items)
    if not allowed.issuperset(given):
        return None
    # Clients leave out optional fields item by item: those no item has are all None.
    n = len(items)
    return {
        name: list(map(dict.get, items, repeat(name, n))) if name in given else [None] * n
        for name in allowed
    }


def _check_for(spec: FieldSpec) -> _Check:
    typed = {
        "str": _text_check,
        "int": _int_check,
        "float": _float_check,
        "bool": _bool_check,
        "timestamp": _timestamp_check,
        "str_list": _list_check,
        "map": _map_check,
    }[spec.type](spec)
    if spec.required:
        return lambda column: None if None in column else typed(column)

    def optional(column: Column) -> Column | None:
        # Absent (missing or null) optional values are None either way; the rest is checked.
        present = [v for v in column if v is not None]
        if not present:
            return column
        checked = typed(present)
        if checked is None:
            return None
        if len(present) == len(column):
            return checked
        values = iter(checked)
        return [None if v is None else next(values) for v in column]

    return optional


def _only(column: Column, *kinds: type) -> bool:
    return set(map(type, column)).issubset(kinds)


def _text_rules(spec: FieldSpec) -> Callable[[Column], bool]:
    """The models' own rules on (clean) text: pattern, length, code list."""
    # Printable non-blank text (what _clean_text lets through) always matches the opaque-id
    # pattern: it only excludes control characters.
    needed = spec.pattern and spec.pattern != OPAQUE_ID_PATTERN
    pattern = re.compile(f"(?:{spec.pattern})") if needed else None
    codes = spec.code_set()
    limit = spec.max_length

    def ok(values: Column) -> bool:
        if limit is not None and max(map(len, values)) > limit:
            return False
        if codes is not None and not codes.issuperset(values):
            return False
        return pattern is None or all(map(pattern.fullmatch, values))

    return ok


def _clean_text(values: Column) -> bool:
    """Non-blank, unpadded, printable text: the value the models' parser keeps as it is."""
    return (
        _only(values, str)
        and all(values)
        and " ".join(values).isprintable()
        and list(map(str.strip, values)) == values
    )


def _text_check(spec: FieldSpec) -> _Check:
    rules = _text_rules(spec)
    return lambda column: column if _clean_text(column) and rules(column) else None


def _bounded(spec: FieldSpec, values: Column) -> bool:
    low, high = min(values), max(values)
    return (
        (spec.gt is None or low > spec.gt)
        and (spec.ge is None or low >= spec.ge)
        and (spec.le is None or high <= spec.le)
    )


def _int_check(spec: FieldSpec) -> _Check:
    codes = spec.code_set()

    def check(column: Column) -> Column | None:
        if not _only(column, int) or not -_INT64 <= min(column) <= max(column) < _INT64:
            return None
        if codes is not None and not codes.issuperset(column):
            return None
        return column if _bounded(spec, column) else None

    return check


def _float_check(spec: FieldSpec) -> _Check:
    def check(column: Column) -> Column | None:
        if not _only(column, float):
            if not _only(column, float, int):
                return None
            if any(type(v) is int and not -_EXACT_INT < v < _EXACT_INT for v in column):
                return None
            column = [float(v) for v in column]  # the parser's conversion of whole numbers
        if not all(map(math.isfinite, column)):
            return None
        return column if _bounded(spec, column) else None

    return check


def _bool_check(spec: FieldSpec) -> _Check:
    return lambda column: column if _only(column, bool) else None


def _timestamp_check(spec: FieldSpec) -> _Check:
    def check(column: Column) -> Column | None:
        if not _clean_text(column) or not all(map(_TIMESTAMP_TEXT.match, column)):
            return None
        try:
            stamps = list(map(datetime.fromisoformat, column))
        except ValueError:  # the parser would try pandas' reading: let the models decide
            return None
        # As the parser gives them: aware, in UTC (naive ones read as UTC).
        moments = [s.replace(tzinfo=UTC) if s.tzinfo is None else s.astimezone(UTC) for s in stamps]
        if not all(_YEARS[0] <= m.year <= _YEARS[1] for m in moments):
            return None
        return moments

    return check


def _list_check(spec: FieldSpec) -> _Check:
    rules = _text_rules(spec)

    def check(column: Column) -> Column | None:
        try:
            lists = [parse_value(v, "str_list") for v in column]
        except ValueRejected:
            return None
        for elements in lists:
            if not elements or (spec.max_items is not None and len(elements) > spec.max_items):
                return None
            if not rules(elements):
                return None
        return lists

    return check


def _map_check(spec: FieldSpec) -> _Check:
    def check(column: Column) -> Column | None:
        if not _only(column, dict):
            return None
        try:
            maps = [parse_value(v, "map") for v in column]
        except ValueRejected:
            return None
        if spec.max_items is not None and any(len(m) > spec.max_items for m in maps):
            return None
        return maps

    return check


def _cross_field_check(contract: RecordContract) -> Callable[[Mapping[str, Column]], bool]:
    """The record-level rules of ``contract`` over whole columns (True: every item keeps them)."""

    def ok(columns: Mapping[str, Column]) -> bool:
        def pairs(first: str, second: str) -> Any:
            return zip(columns[first], columns[second], strict=True)

        return (
            all(
                left is None or right is None or (left >= right if rule.or_equal else left > right)
                for rule in contract.pair_rules
                for left, right in pairs(rule.left, rule.right)
            )
            and not any(
                when in rule.when_values and value is None
                for rule in contract.conditional_required
                for when, value in pairs(rule.when_field, rule.field)
            )
            and not any(
                when in rule.when_values and value is not None and value > rule.limit
                for rule in contract.conditional_max
                for when, value in pairs(rule.when_field, rule.field)
            )
            and not any(
                items and other is not None and items[0] != other
                for rule in contract.list_head_rules
                for items, other in pairs(rule.list_field, rule.equals_field)
            )
        )

    return ok
