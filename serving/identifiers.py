"""Party ids in a scoring request, checked in the format of the served models' data.

A model trained on EORI-identified data must not score an item whose importer is a national
number (its history would never match), and a model trained on a national administration's
opaque ids must accept them. The request body is parsed with the lenient (opaque) item models;
this check then applies the EORI rule when the served models' data used EORIs, giving the
same reason a batch validation gives (``pattern`` on the field).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from data_contracts.definitions import EORI_PATTERN, contract_for, party_id_fields

__all__ = ["party_id_reasons", "party_id_reasons_in_columns"]

_EORI = re.compile(EORI_PATTERN)


def party_id_reasons(
    field: str, kind: str, items: Sequence[Any], identifier_format: str
) -> list[dict[str, Any]]:
    """Contract reasons for party ids of ``items`` that ``identifier_format`` does not accept."""
    if identifier_format != "eori" or not items:
        return []
    names = party_id_fields(contract_for(kind))
    columns = {name: [getattr(item, name, None) for item in items] for name in names}
    return party_id_reasons_in_columns(field, kind, columns, identifier_format)


def party_id_reasons_in_columns(
    field: str, kind: str, columns: Mapping[str, Sequence[Any]], identifier_format: str
) -> list[dict[str, Any]]:
    """:func:`party_id_reasons` of items given by column (field name -> values)."""
    if identifier_format != "eori":
        return []
    names = [name for name in party_id_fields(contract_for(kind)) if name in columns]
    # The common case, every id an EORI, is one C-level pass per column.
    if all(all(v is None or _EORI.fullmatch(v) for v in columns[name]) for name in names):
        return []
    reasons = []
    for index, values in enumerate(zip(*(columns[name] for name in names), strict=True)):
        for name, value in zip(names, values, strict=True):
            if value is not None and not _EORI.fullmatch(value):
                reasons.append(
                    {
                        "field": f"{field}.{index}.{name}",
                        "rule": "pattern",
                        "value": str(value)[:200],
                        "message": f"{name} must be an EORI number ({EORI_PATTERN}): the served "
                        "models learnt from EORI-identified data",
                    }
                )
    return reasons
