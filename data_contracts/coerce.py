"""Parsing raw columns into the contract's types, recording every value that does not parse.

Files arrive as text (CSV) or typed (Parquet); both go through the same parser so that a value
either becomes a typed value or a ``type`` reason naming the field and the raw value. Nothing is
dropped: a row with a bad value is quarantined with that reason.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.definitions import TIMESTAMP_TEXT_PREFIX, FieldSpec, RecordContract

__all__ = ["LIST_SEPARATOR", "Reason", "coerce_frame", "joined_list_column", "list_head_column"]

Reason = dict[str, Any]
LIST_SEPARATOR = ">"
# The spellings pydantic accepts for booleans, so files and HTTP agree.
_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}


def joined_list_column(name: str) -> str:
    """Name of the helper column that holds a list field joined by ``>`` (for regex rules)."""
    return f"__joined_{name}"


def list_head_column(name: str) -> str:
    """Name of the helper column that holds the first element of a list field."""
    return f"__head_{name}"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    if value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, str) and value.strip() == ""


def _raw_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _parse_list(value: Any) -> list[str] | None:
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v).strip() for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = json.loads(text)
            if not isinstance(parsed, list):
                raise ValueError("not a list")
            return [str(v).strip() for v in parsed]
        for separator in (">", ";", ",", "|", " "):
            if separator in text:
                return [part.strip() for part in text.split(separator) if part.strip()]
        return [text]
    raise ValueError("not a list")


def _parse_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        parsed = json.loads(value)
        if isinstance(parsed, dict):
            return parsed
    raise ValueError("not a map")


def _coerce_column(spec: FieldSpec, raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Typed column and a boolean mask of values that were present but did not parse."""
    present = ~raw.map(_is_missing).to_numpy(dtype=bool)
    if spec.type == "str":
        typed = raw.where(present, None).map(lambda v: None if v is None else str(v).strip())
        return typed.astype("string"), np.zeros(len(raw), dtype=bool)
    if spec.type in ("int", "float"):
        if raw.dtype == bool:
            numbers = pd.Series(np.nan, index=raw.index)
        else:
            numbers = pd.to_numeric(raw.where(present, None), errors="coerce")
        finite = np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
        bad = present & ~finite
        if spec.type == "int":
            whole = numbers.to_numpy(dtype=float, na_value=np.nan)
            not_integral = finite & (np.floor(whole) != whole)
            # Int64 cannot hold 2**63 or more: such a value is the row's problem, not the batch's.
            too_large = finite & (np.abs(whole) >= 2.0**63)
            bad |= not_integral | too_large
            typed = pd.Series(np.where(bad | ~present, np.nan, whole), index=raw.index)
            return typed.astype("Int64"), bad
        typed = pd.Series(
            np.where(bad, np.nan, numbers.to_numpy(dtype=float, na_value=np.nan)), index=raw.index
        )
        return typed.astype("float64"), bad
    if spec.type == "bool":
        if raw.dtype == bool:
            return raw.astype("boolean"), np.zeros(len(raw), dtype=bool)
        text = raw.map(lambda v: None if _is_missing(v) else str(v).strip().lower())
        typed = text.map(lambda v: True if v in _TRUE else (False if v in _FALSE else None))
        bad = present & typed.isna().to_numpy()
        return typed.astype("boolean"), bad
    if spec.type == "timestamp":
        if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(raw):
            typed = pd.to_datetime(raw, utc=True)
        else:
            text = raw.map(lambda v: v.strip() if isinstance(v, str) else None).astype("string")
            not_iso = text.notna() & ~text.str.match(TIMESTAMP_TEXT_PREFIX).fillna(True)
            typed = pd.to_datetime(
                raw.where(present & ~not_iso.to_numpy(dtype=bool), None),
                utc=True,
                errors="coerce",
                format="ISO8601",
            )
        bad = present & typed.isna().to_numpy()
        return typed, bad
    # Lists and maps: parse value by value (these columns are short).
    parser = _parse_list if spec.type == "str_list" else _parse_map
    values: list[Any] = []
    bad_list: list[bool] = []
    for value, is_present in zip(raw.tolist(), present, strict=True):
        if not is_present:
            values.append(None)
            bad_list.append(False)
            continue
        try:
            parsed = parser(value)
            # An empty list carries no value: absent, as the HTTP model's min_length sees it.
            values.append(parsed if parsed or spec.type != "str_list" else None)
            bad_list.append(False)
        except (ValueError, TypeError):
            values.append(None)
            bad_list.append(True)
    return pd.Series(values, index=raw.index, dtype=object), np.array(bad_list, dtype=bool)


def coerce_frame(
    raw: pd.DataFrame, contract: RecordContract
) -> tuple[pd.DataFrame, list[list[Reason]]]:
    """Typed frame with the contract's columns (and helper columns), plus type reasons per row.

    The returned frame keeps ``raw``'s index; unknown columns are left out (they are reported by
    the caller as a file-level problem, not a row problem).
    """
    typed = pd.DataFrame(index=raw.index)
    reasons: list[list[Reason]] = [[] for _ in range(len(raw))]
    for spec in contract.fields:
        if spec.name not in raw.columns:
            typed[spec.name] = pd.Series([None] * len(raw), index=raw.index, dtype=object)
            if spec.type == "str":
                typed[spec.name] = typed[spec.name].astype("string")
            continue
        column, bad = _coerce_column(spec, raw[spec.name])
        typed[spec.name] = column
        for position in np.flatnonzero(bad):
            reasons[position].append(
                {
                    "field": spec.name,
                    "rule": "type",
                    "value": _raw_text(raw[spec.name].iloc[position]),
                    "message": f"{spec.name} must be a {spec.type.replace('_', ' ')}",
                }
            )
        if spec.type == "str_list":
            typed[joined_list_column(spec.name)] = column.map(
                lambda v: None if v is None or len(v) == 0 else LIST_SEPARATOR.join(v)
            ).astype("string")
            typed[list_head_column(spec.name)] = column.map(
                lambda v: None if v is None or len(v) == 0 else v[0]
            ).astype("string")
    return typed, reasons
