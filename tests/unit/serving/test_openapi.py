"""The OpenAPI document states the identifier format each subject's requests are checked in."""

from __future__ import annotations

import pytest

from data_contracts.definitions import EORI_PATTERN
from data_contracts.models import model_for
from serving.openapi import amend_openapi


def _document() -> dict:
    # As BentoML describes the request items: parsed with lenient (opaque) party ids.
    schemas = {
        name: model_for(kind, "opaque").model_json_schema()
        for name, kind in (("DeclarationItem", "declarations"), ("EnsFiling", "ens"))
    }
    return {"openapi": "3.0.2", "paths": {}, "components": {"schemas": schemas}}


@pytest.mark.parametrize(
    ("formats", "declarant_is_eori", "carrier_is_eori"),
    [
        ({"declaration": "eori", "ens": "eori"}, True, True),
        ({"declaration": "opaque", "ens": "eori"}, False, True),
        ({}, False, False),  # nothing served yet: as parsed
    ],
)
def test_party_ids_are_documented_in_the_served_format(
    formats: dict[str, str], declarant_is_eori: bool, carrier_is_eori: bool
) -> None:
    schemas = amend_openapi(_document(), 100, formats)["components"]["schemas"]
    declarant = schemas["DeclarationItem"]["properties"]["declarant_id"]
    carrier = schemas["EnsFiling"]["properties"]["carrier_id"]
    assert (EORI_PATTERN in declarant["pattern"]) is declarant_is_eori
    assert (EORI_PATTERN in carrier["pattern"]) is carrier_is_eori
