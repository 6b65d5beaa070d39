"""Party ids in a scoring request, checked in the format of the served models' data.

A model trained on EORI-identified data must not score an item whose importer is a national
number (its history would never match), and a model trained on a national administration's
opaque ids must accept them. The request body is parsed with the lenient (opaque) item models;
this check then applies the EORI rule when the served models' data used EORIs, giving the
same reason a batch validation gives (``pattern`` on the field).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from data_contracts.definitions import EORI_PATTERN, contract_for, party_id_fields

__all__ = ["party_id_reasons"]

_EORI = re.compile(EORI_PATTERN)


def party_id_reasons(
    field: str, kind: str, items: Sequence[Any], identifier_format: str
) -> list[dict[str, Any]]:
    """Contract reasons for party ids of ``items`` that ``identifier_format`` does not accept."""
    if identifier_format != "eori" or not items:
        return []
    reasons = []
    names = party_id_fields(contract_for(kind))
    for index, item in enumerate(items):
        for name in names:
            value = getattr(item, name, None)
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
