"""Parsing raw columns into the contract's types, recording every value that does not parse.

Files arrive as text (CSV) or typed (Parquet); both go through the value parser the HTTP models
use too (``values.py``), so a value either becomes a typed value or a ``type`` reason naming the
field and the raw value. Nothing is dropped: a row with a bad value is quarantined with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_contracts.definitions import FieldSpec, RecordContract
from data_contracts.values import LIST_SEPARATOR, parse_column

__all__ = [
    "LIST_SEPARATOR",
    "Reason",
    "coerce_frame",
    "item_count_column",
    "joined_list_column",
    "list_head_column",
]

Reason = dict[str, Any]


def joined_list_column(name: str) -> str:
    """Name of the helper column that holds a list field joined by ``>`` (for regex rules)."""
    return f"__joined_{name}"


def list_head_column(name: str) -> str:
    """Name of the helper column that holds the first element of a list field."""
    return f"__head_{name}"


def item_count_column(name: str) -> str:
    """Name of the helper column that holds the number of elements (keys) of a list (map)."""
    return f"__count_{name}"


def _raw_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _add_helper_columns(typed: pd.DataFrame, spec: FieldSpec, column: pd.Series) -> None:
    """Columns the suite's rules on lists and maps read (sizes, joined text, first element)."""
    if spec.max_items is not None:
        typed[item_count_column(spec.name)] = column.map(
            lambda v: None if v is None else len(v)
        ).astype("Int64")
    if spec.type == "str_list":
        typed[joined_list_column(spec.name)] = column.map(
            lambda v: None if v is None or len(v) == 0 else LIST_SEPARATOR.join(v)
        ).astype("string")
        typed[list_head_column(spec.name)] = column.map(
            lambda v: None if v is None or len(v) == 0 else v[0]
        ).astype("string")


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
        if spec.name in raw.columns:
            column, bad = parse_column(raw[spec.name], spec.type)
            for position in np.flatnonzero(bad):
                reasons[position].append(
                    {
                        "field": spec.name,
                        "rule": "type",
                        "value": _raw_text(raw[spec.name].iloc[position]),
                        "message": f"{spec.name} must be a {spec.type.replace('_', ' ')}",
                    }
                )
        else:
            # An absent optional column has its kind's dtype, as a present one would: the data
            # store's column types never depend on whether a file happened to carry the field.
            absent = pd.Series([None] * len(raw), index=raw.index, dtype=object)
            column = parse_column(absent, spec.type)[0]
        typed[spec.name] = column
        _add_helper_columns(typed, spec, column)
    return typed, reasons
