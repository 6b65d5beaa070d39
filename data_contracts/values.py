"""One value parser for both sides of the contract: batch columns and HTTP fields.

A value either parses into the contract's type or is refused with a ``type`` reason, and it does
so identically whether it arrives in a million-row file (``parse_column``, vectorised) or in one
JSON body (``parse_value``, used by the pydantic models as a before-validator). The rules:

- blank (None, NaN, NA, NaT, empty or whitespace-only text) is *absent*, never an error here;
- text is stripped of surrounding whitespace; numbers sent for text fields (a code sent as
  85171300) become their text, booleans do not;
- integers: whole numbers, from numbers or plain digit text (no exponent, no separators), within
  64 bits; floats: finite numbers, from numbers or plain decimal text; booleans are neither;
- booleans: true/false values, 0 and 1, and the spellings true/false, yes/no, on/off, t/f, y/n;
- timestamps: date-time objects, or text that starts with an ISO 8601 date, years 1900–2199,
  naive ones read as UTC (no "now", no bare numbers: pandas would read those as the clock or as
  nanoseconds since 1970);
- text never holds control characters (NUL, other C0 controls but tab and line breaks, DEL) nor
  bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069), which reorder what an
  officer reads on screen, nor lone surrogates; right-to-left text and the plain RTL/LTR marks
  are accepted;
- lists: sequences (or JSON/``>``-separated text) of non-blank text elements that do not contain
  the ``>`` separator; an empty list is absent; maps: objects or JSON object text whose keys are
  names (letters, digits, ``_``) and whose values are text (bounded), finite numbers, booleans or
  null — never nested.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from data_contracts.definitions import (
    EXTRA_KEY_PATTERN,
    EXTRA_VALUE_MAX_LENGTH,
    TIMESTAMP_TEXT_PREFIX,
)

__all__ = [
    "LIST_SEPARATOR",
    "ValueRejected",
    "check_text",
    "factorize_text",
    "is_blank",
    "parse_column",
    "parse_value",
]

LIST_SEPARATOR = ">"
_TRUE = frozenset({"true", "t", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "f", "0", "no", "n", "off"})
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TIMESTAMP_TEXT = re.compile(TIMESTAMP_TEXT_PREFIX)
_INT64 = 2**63
# Lone surrogates too: they are not characters, and no UTF-8 writer (the audit log) takes them.
_FORBIDDEN_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_MAP_KEY = re.compile(EXTRA_KEY_PATTERN)
_YEARS = (1900, 2199)


class ValueRejected(ValueError):
    """The value cannot be read as the field's type; the message says what was expected."""


def is_blank(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(math.isnan(value))
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return isinstance(value, str) and not value.strip()


def check_text(text: str) -> str:
    """``text`` unchanged, or :class:`ValueRejected` if it holds a forbidden character."""
    # isprintable() is a fast C check that is True for almost every real text; only the rest
    # (line breaks, tabs, format characters such as RTL marks) is searched.
    if not text.isprintable():
        found = _FORBIDDEN_TEXT.search(text)
        if found is not None:
            raise ValueRejected(
                f"text must not contain control or bidirectional-override characters "
                f"(U+{ord(found.group()):04X} at position {found.start()})"
            )
    return text


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _text(value: Any) -> str:
    if _is_bool(value):
        raise ValueRejected("text expected, not a boolean")
    if isinstance(value, str):
        return check_text(value.strip())
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    raise ValueRejected(f"text expected, not {type(value).__name__}")


def _int(value: Any) -> int:
    if _is_bool(value):
        raise ValueRejected("a whole number expected, not a boolean")
    if isinstance(value, int | np.integer):
        number = int(value)
    elif isinstance(value, float | np.floating):
        if not math.isfinite(value) or not float(value).is_integer():
            raise ValueRejected("a whole number expected")
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueRejected("a whole number expected")
    if not -_INT64 <= number < _INT64:
        raise ValueRejected("a whole number within 64 bits expected")
    return number


def _float(value: Any) -> float:
    if _is_bool(value):
        raise ValueRejected("a number expected, not a boolean")
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    elif isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise ValueRejected("a number expected")
    if not math.isfinite(number):
        raise ValueRejected("a finite number expected")
    return number


def _bool(value: Any) -> bool:
    if _is_bool(value):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueRejected("true or false expected")


def _timestamp_text(value: str) -> pd.Timestamp:
    """ISO text: the standard library's parser first (fast), pandas' where it declines."""
    text = value.strip()
    if not _TIMESTAMP_TEXT.match(text):
        raise ValueRejected("an ISO 8601 date-time expected (YYYY-MM-DDThh:mm:ssZ)")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _timestamp(text)
    stamp = pd.Timestamp(parsed)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not _YEARS[0] <= stamp.year <= _YEARS[1]:
        raise ValueRejected("a date-time between 1900 and 2199 expected")
    return stamp


def _timestamp(value: Any) -> pd.Timestamp:
    if isinstance(value, str):
        text = value.strip()
        if not _TIMESTAMP_TEXT.match(text):
            raise ValueRejected("an ISO 8601 date-time expected (YYYY-MM-DDThh:mm:ssZ)")
        try:
            stamp = pd.to_datetime(text, utc=True, format="ISO8601")
        except (ValueError, OverflowError):
            raise ValueRejected("an ISO 8601 date-time expected (YYYY-MM-DDThh:mm:ssZ)") from None
    elif isinstance(value, datetime | np.datetime64):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, OverflowError):
            raise ValueRejected("a date-time between 1900 and 2199 expected") from None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    else:
        raise ValueRejected("an ISO 8601 date-time expected (YYYY-MM-DDThh:mm:ssZ)")
    if not _YEARS[0] <= stamp.year <= _YEARS[1]:
        raise ValueRejected("a date-time between 1900 and 2199 expected")
    return stamp


def _list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueRejected("a list expected") from None
        else:
            separator = next((s for s in (">", ";", ",", "|", " ") if s in text), None)
            value = [p for p in text.split(separator)] if separator else [text]
    if not isinstance(value, list | tuple | np.ndarray):
        raise ValueRejected("a list expected")
    elements = []
    for element in value:
        if is_blank(element):
            raise ValueRejected("list elements must not be blank")
        text = _text(element)
        if LIST_SEPARATOR in text:
            raise ValueRejected(f"list elements must not contain {LIST_SEPARATOR!r}")
        elements.append(text)
    return elements or None


def _map_value(key: str, value: Any) -> Any:
    if value is None or _is_bool(value):
        return None if value is None else bool(value)
    try:
        if isinstance(value, float | np.floating):
            return _float(value)
        if isinstance(value, int | np.integer):
            return _int(value)
    except ValueRejected as error:
        raise ValueRejected(f"{key}: {error}") from None
    if isinstance(value, str):
        if len(value) > EXTRA_VALUE_MAX_LENGTH:
            raise ValueRejected(f"{key}: text of at most {EXTRA_VALUE_MAX_LENGTH} characters")
        try:
            return check_text(value)
        except ValueRejected as error:
            raise ValueRejected(f"{key}: {error}") from None
    raise ValueRejected(f"{key}: text, a number, a boolean or null expected (no nesting)")


def _map(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueRejected("an object expected") from None
    if not isinstance(value, dict):
        raise ValueRejected("an object expected")
    checked: dict[str, Any] = {}
    for key, element in value.items():
        if not isinstance(key, str) or not _MAP_KEY.fullmatch(key):
            raise ValueRejected(f"keys must be names ({EXTRA_KEY_PATTERN}), not {str(key)[:40]!r}")
        checked[key] = _map_value(key, element)
    return checked


_SCALAR: dict[str, Callable[[Any], Any]] = {
    "str": _text,
    "int": _int,
    "float": _float,
    "bool": _bool,
    "timestamp": _timestamp,
    "str_list": _list,
    "map": _map,
}


def parse_value(value: Any, kind: str) -> Any:
    """The parsed value (None when blank). Raises :class:`ValueRejected`."""
    # Fast paths for values that already have the right JSON type (most of every request);
    # they give exactly what the general rules below give.
    kind_of_value = type(value)
    if kind == "str" and kind_of_value is str:
        return check_text(value.strip()) or None
    if kind == "float" and kind_of_value is float and math.isfinite(value):
        return value
    if kind == "int" and kind_of_value is int and -_INT64 <= value < _INT64:
        return value
    if kind == "bool" and kind_of_value is bool:
        return value
    if kind == "timestamp" and kind_of_value is str and not is_blank(value):
        return _timestamp_text(value)
    if kind not in ("str_list", "map") and is_blank(value):
        return None
    if kind == "str_list" and (
        value is None or (not isinstance(value, list | tuple | np.ndarray) and is_blank(value))
    ):
        return None
    if kind == "map" and (value is None or (isinstance(value, str | float) and is_blank(value))):
        return None
    parsed = _SCALAR[kind](value)
    return None if kind == "str" and parsed == "" else parsed


def factorize_text(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (-1 for None/NaN) into the distinct values of an object array of text.

    Arrow's dictionary encoding, not ``pd.factorize``: pandas hashes text as C strings, so two
    values that differ only after a NUL character would share a code.
    """
    try:
        encoded = pa.array(values, type=pa.string(), from_pandas=True).dictionary_encode()
    except (pa.ArrowException, UnicodeEncodeError, TypeError):
        index: dict[str, int] = {}
        codes = np.array(
            [-1 if not isinstance(v, str) else index.setdefault(v, len(index)) for v in values],
            dtype=np.int64,
        )
        return codes, np.array(list(index), dtype=object)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    return codes, uniques


def _per_value(values: np.ndarray, kind: str, cache: bool) -> tuple[list[Any], np.ndarray]:
    out: list[Any] = [None] * len(values)
    bad = np.zeros(len(values), dtype=bool)
    seen: dict[Any, tuple[Any, bool]] = {}
    for i, value in enumerate(values):
        key = value if cache and isinstance(value, str | int | float | bool | type(None)) else None
        if key is not None and key in seen:
            out[i], bad[i] = seen[key]
            continue
        try:
            result = (parse_value(value, kind), False)
        except ValueRejected:
            result = (None, True)
        out[i], bad[i] = result
        if key is not None:
            seen[key] = result
    return out, bad


def parse_column(raw: pd.Series, kind: str) -> tuple[pd.Series, np.ndarray]:
    """A typed column and the mask of values that were present but refused.

    Typed columns take vectorised paths that follow the scalar rules exactly; object columns go
    value by value through :func:`parse_value` (distinct values once).
    """
    n = len(raw)
    if kind in ("int", "float") and raw.dtype.kind in "if":
        numbers = raw.to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(numbers)
        bad = present & ~np.isfinite(numbers)
        if kind == "int":
            finite = np.isfinite(numbers)
            bad |= finite & ((np.floor(numbers) != numbers) | (np.abs(numbers) >= 2.0**63))
            if raw.dtype.kind == "i":
                return raw.astype("Int64"), np.zeros(n, dtype=bool)
            return pd.Series(np.where(bad, np.nan, numbers), index=raw.index).astype("Int64"), bad
        return pd.Series(np.where(bad, np.nan, numbers), index=raw.index), bad
    if kind in ("int", "float") and raw.dtype == bool:
        return pd.Series(np.nan, index=raw.index).astype(
            "Int64" if kind == "int" else float
        ), np.ones(n, dtype=bool)
    if kind == "bool" and raw.dtype == bool:
        return raw.astype("boolean"), np.zeros(n, dtype=bool)
    if kind == "timestamp" and (
        isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(raw)
    ):
        typed = pd.to_datetime(raw, utc=True)
        years = typed.dt.year
        bad = (typed.notna() & ((years < _YEARS[0]) | (years > _YEARS[1]))).to_numpy(dtype=bool)
        return typed.where(~bad), bad
    if kind == "timestamp":
        text = raw.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
        is_text = text.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        blank = text.map(is_blank).to_numpy(dtype=bool)
        strings = text.where(is_text & ~blank, None).astype("string")
        dated = strings.str.match(_TIMESTAMP_TEXT.pattern).fillna(False).to_numpy(dtype=bool)
        typed = pd.to_datetime(
            strings.where(dated, None), utc=True, errors="coerce", format="ISO8601"
        )
        years = typed.dt.year
        in_range = (typed.notna() & (years >= _YEARS[0]) & (years <= _YEARS[1])).to_numpy(
            dtype=bool
        )
        typed = typed.where(in_range)
        bad = is_text & ~blank & ~in_range
        others = ~is_text & ~blank
        if others.any():  # date-time objects in an object column
            parsed, refused = _per_value(text.to_numpy()[others], kind, cache=False)
            positions = np.flatnonzero(others)
            typed.iloc[positions] = pd.to_datetime(
                pd.Series(parsed, dtype=object), utc=True
            ).to_numpy()
            bad[positions] = refused
        return typed, bad
    values = raw.astype(object).to_numpy()
    inferred = pd.api.types.infer_dtype(values)
    if inferred == "empty":  # nothing but blanks (an absent optional column): all absent
        column: Any = np.full(n, None, dtype=object)
        bad = np.zeros(n, dtype=bool)
    elif kind in ("str", "int", "float", "bool") and inferred == "string":
        # Text (the usual object column): each distinct value is parsed once and spread back by
        # its codes, exactly what the per-value cache gives, without a Python loop over rows.
        codes, uniques = factorize_text(values)
        if kind == "str":
            # parse_value of text is its stripped self, blank as absent: vectorised here.
            stripped = pd.Series(uniques, dtype=object).str.strip()
            distinct = stripped.where(stripped.ne(""), None).to_numpy(dtype=object)
            refused = np.zeros(len(distinct), dtype=bool)
        else:
            listed, refused = _per_value(uniques, kind, cache=False)
            distinct = np.empty(len(listed), dtype=object)
            distinct[:] = listed
        parsed_array = np.empty(len(distinct) + 1, dtype=object)
        parsed_array[:-1] = distinct
        parsed_array[-1] = None  # blank (None, NaN): absent
        column = parsed_array[codes]
        bad = np.append(refused, False)[codes]
    else:
        column, bad = _per_value(values, kind, cache=kind not in ("str_list", "map"))
    if kind == "str":
        return pd.Series(column, index=raw.index, dtype=object).astype("string"), bad
    if kind == "int":
        return pd.Series(column, index=raw.index, dtype=object).astype("Int64"), bad
    if kind == "float":
        floats = pd.Series(column, index=raw.index, dtype=object)
        return floats.where(floats.notna(), np.nan).astype(float), bad
    if kind == "bool":
        return pd.Series(column, index=raw.index, dtype=object).astype("boolean"), bad
    return pd.Series(column, index=raw.index, dtype=object), bad
