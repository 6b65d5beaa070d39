"""A request's party ids are checked in the format of the served models' data."""

from __future__ import annotations

from types import SimpleNamespace

from serving.identifiers import party_id_reasons


def _item(**ids: str | None) -> SimpleNamespace:
    return SimpleNamespace(**{"importer_id": "NL123456789", "declarant_id": "DE42", **ids})


def test_eori_models_refuse_national_ids_naming_field_and_rule() -> None:
    items = [_item(), _item(importer_id="7300412")]
    reasons = party_id_reasons("declarations", "declarations", items, "eori")
    assert [(r["field"], r["rule"], r["value"]) for r in reasons] == [
        ("declarations.1.importer_id", "pattern", "7300412")
    ]


def test_opaque_models_accept_any_id_and_absent_ids_pass() -> None:
    assert (
        party_id_reasons("declarations", "declarations", [_item(importer_id="7300412")], "opaque")
        == []
    )
    ens = [SimpleNamespace(carrier_id="DK1", consignee_id=None)]
    assert party_id_reasons("ens", "ens", ens, "eori") == []
