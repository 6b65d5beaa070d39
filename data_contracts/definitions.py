"""The single declarative definition of each record kind (spec §2).

Everything else is derived from these tables: the Great Expectations suites that validate batches
(``suites.py``), the pydantic models the HTTP service validates requests with (``models.py``),
the column types files are parsed into (``io.py``) and the reasons quarantined rows carry. A test
proves the suite and the models agree row for row; adding a rule here adds it to both.

Rule names are part of the contract: quarantine reasons and HTTP 422 bodies name them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from data_contracts.codelists import (
    CONTROL_TYPES,
    DECLARATION_TYPES,
    EU_MEMBER_STATES,
    ICS2_RELEASES,
    INCOTERMS,
    OUTCOMES,
    RISK_AREAS,
    SELECTION_REASONS,
    SUBJECT_TYPES,
    TRANSPORT_MODES,
    iso_countries,
)

__all__ = [
    "CONTAINERS_MAX_ITEMS",
    "CONTRACT_VERSION",
    "EXTRA_KEY_PATTERN",
    "EXTRA_MAX_KEYS",
    "EXTRA_VALUE_MAX_LENGTH",
    "IDENTIFIER_FORMATS",
    "ITINERARY_MAX_ITEMS",
    "KINDS",
    "ConditionalMax",
    "ConditionalRequired",
    "FieldSpec",
    "IdentifierFormat",
    "ListHeadRule",
    "PairRule",
    "RecordContract",
    "RecordKind",
    "contract_for",
    "party_id_fields",
]

# 1.1: opaque party ids (identifiers="opaque"); a declaration's goods description is optional.
CONTRACT_VERSION = "1.1.0"

RecordKind = Literal["declarations", "ens", "control-results"]
# How parties are identified: EU EORI numbers, or a national administration's own ids.
IdentifierFormat = Literal["eori", "opaque"]
FieldType = Literal["str", "int", "float", "bool", "timestamp", "str_list", "map"]

EORI_PATTERN = r"[A-Z]{2}[A-Za-z0-9]{1,15}"
# An opaque party id: any text without control characters (bounded by ID_MAX_LENGTH). National
# files identify traders by their own numbers, which the contract cannot check beyond that.
OPAQUE_ID_PATTERN = r"[^\x00-\x1f\x7f-\x9f]+"
OFFICE_PATTERN = r"[A-Z]{2}[A-Z0-9]{6}"
HS_PATTERN = r"[0-9]{6}([0-9]{2}([0-9]{2})?)?"
# Timestamps as text must start with an ISO 8601 calendar date (then optionally a time): files and
# HTTP bodies must read the same instant, and pandas alone would take "now" or "2026", pydantic
# alone "1700000000" (as Unix seconds).
TIMESTAMP_TEXT_PREFIX = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ]|$)"
ID_MAX_LENGTH = 70
TEXT_MAX_LENGTH = 512
# Bounds on lists and maps: a record is a few kilobytes, never an amplification vector (a
# request of huge lists or maps would cost the service more than its size says).
ITINERARY_MAX_ITEMS = 20
CONTAINERS_MAX_ITEMS = 200
EXTRA_MAX_KEYS = 50
EXTRA_KEY_PATTERN = r"[A-Za-z][A-Za-z0-9_]{0,63}"
EXTRA_VALUE_MAX_LENGTH = 256


@dataclass(frozen=True)
class FieldSpec:
    """One field and the rules on its own value.

    ``codes`` is a callable so large code lists (ISO countries) load lazily.
    """

    name: str
    type: FieldType
    description: str
    example: Any
    required: bool = True
    codes: Callable[[], frozenset[Any]] | None = None
    pattern: str | None = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    max_length: int | None = None
    max_items: int | None = None  # elements of a list, keys of a map

    def code_set(self) -> frozenset[Any] | None:
        return None if self.codes is None else self.codes()


@dataclass(frozen=True)
class PairRule:
    """``left`` must be greater than (or equal to) ``right`` where both are present."""

    rule: str
    left: str
    right: str
    or_equal: bool
    message: str


@dataclass(frozen=True)
class ConditionalRequired:
    """``field`` is required when ``when_field`` takes one of ``when_values``."""

    rule: str
    field: str
    when_field: str
    when_values: tuple[Any, ...]
    message: str


@dataclass(frozen=True)
class ConditionalMax:
    """``field`` must be at most ``limit`` when ``when_field`` takes one of ``when_values``."""

    rule: str
    field: str
    limit: float
    when_field: str
    when_values: tuple[Any, ...]
    message: str


@dataclass(frozen=True)
class ListHeadRule:
    """The first element of list ``list_field`` must equal ``equals_field``."""

    rule: str
    list_field: str
    equals_field: str
    message: str


@dataclass(frozen=True)
class RecordContract:
    """All rules of one record kind."""

    kind: RecordKind
    record_name: str
    key: tuple[str, ...]
    time_field: str
    fields: tuple[FieldSpec, ...]
    pair_rules: tuple[PairRule, ...] = ()
    conditional_required: tuple[ConditionalRequired, ...] = ()
    conditional_max: tuple[ConditionalMax, ...] = ()
    list_head_rules: tuple[ListHeadRule, ...] = ()
    description: str = ""
    extra_allowed: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    identifiers: IdentifierFormat = "eori"

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def spec(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _codes(values: Any) -> Callable[[], frozenset[Any]]:
    frozen = frozenset(values)
    return lambda: frozen


_COUNTRY = iso_countries
_EU = _codes(EU_MEMBER_STATES)
_MODES = _codes(TRANSPORT_MODES)

DECLARATION = RecordContract(
    kind="declarations",
    record_name="DeclarationItem",
    key=("declaration_id", "item_number"),
    time_field="lodged_at",
    description="One goods item of an import customs declaration.",
    fields=(
        FieldSpec(
            "declaration_id",
            "str",
            "Declaration id (MRN), stable across amendments.",
            "26NL00000012345678",
            max_length=ID_MAX_LENGTH,
            pattern=r"[A-Za-z0-9\-]+",
        ),
        FieldSpec("item_number", "int", "Goods item number, from 1.", 1, ge=1, le=9999),
        FieldSpec(
            "lodged_at",
            "timestamp",
            "When the declaration was lodged (UTC).",
            "2026-11-02T09:30:00Z",
        ),
        FieldSpec(
            "declaration_type",
            "str",
            "H1 standard, H7 low-value e-commerce, I1 simplified.",
            "H1",
            codes=_codes(DECLARATION_TYPES),
        ),
        FieldSpec(
            "customs_office",
            "str",
            "Office of lodgement: 2 letters + 6 alphanumerics.",
            "NL000396",
            pattern=OFFICE_PATTERN,
        ),
        FieldSpec("declarant_id", "str", "Declarant EORI.", "NL123456789012", pattern=EORI_PATTERN),
        FieldSpec("importer_id", "str", "Importer EORI.", "DE987654321098", pattern=EORI_PATTERN),
        FieldSpec(
            "seller_id",
            "str",
            "Third-country seller id.",
            "CNS000012345",
            required=False,
            max_length=ID_MAX_LENGTH,
        ),
        FieldSpec(
            "hs_code",
            "str",
            "Commodity code: HS6, CN8 or TARIC10 digits.",
            "85171300",
            pattern=HS_PATTERN,
        ),
        FieldSpec(
            "goods_description",
            "str",
            "Plain-language description of the goods (a file without descriptions imports "
            "them as absent: the description features then carry no information).",
            "cotton t-shirts",
            required=False,
            max_length=TEXT_MAX_LENGTH,
        ),
        FieldSpec(
            "origin_country", "str", "Country of origin (ISO 3166-1 alpha-2).", "CN", codes=_COUNTRY
        ),
        FieldSpec(
            "dispatch_country",
            "str",
            "Country of dispatch (ISO 3166-1 alpha-2).",
            "CN",
            codes=_COUNTRY,
        ),
        FieldSpec("transport_mode", "int", "UCC mode of transport at the border.", 1, codes=_MODES),
        FieldSpec(
            "procedure_code", "str", "Customs procedure, 4 digits.", "4000", pattern=r"[0-9]{4}"
        ),
        FieldSpec(
            "preference_code",
            "str",
            "Tariff preference, 3 digits.",
            "100",
            required=False,
            pattern=r"[0-9]{3}",
        ),
        FieldSpec("net_mass_kg", "float", "Net mass in kg.", 120.5, gt=0),
        FieldSpec(
            "gross_mass_kg", "float", "Gross mass in kg (at least the net mass).", 130.0, gt=0
        ),
        FieldSpec(
            "supplementary_units",
            "float",
            "Supplementary units (pieces, litres...).",
            40,
            required=False,
            ge=0,
        ),
        FieldSpec("customs_value_eur", "float", "Customs value in EUR.", 2450.0, gt=0),
        FieldSpec("duty_eur", "float", "Declared duties and import VAT in EUR.", 612.5, ge=0),
        FieldSpec("container", "bool", "Goods travel in a container.", True),
        FieldSpec(
            "incoterm",
            "str",
            "Incoterms 2020 code.",
            "FOB",
            required=False,
            codes=_codes(INCOTERMS),
        ),
        FieldSpec(
            "extra",
            "map",
            "National attributes (see `crisk import`): at most 50 keys (letters, digits, _), "
            "values text (at most 256 characters), numbers, booleans or null.",
            {},
            required=False,
            max_items=EXTRA_MAX_KEYS,
        ),
    ),
    pair_rules=(
        PairRule(
            "gross_at_least_net",
            "gross_mass_kg",
            "net_mass_kg",
            True,
            "gross_mass_kg must be at least net_mass_kg",
        ),
    ),
    conditional_max=(
        ConditionalMax(
            "h7_value_limit",
            "customs_value_eur",
            150.0,
            "declaration_type",
            ("H7",),
            "customs_value_eur of an H7 (low-value) declaration must be at most 150",
        ),
    ),
)

ENS = RecordContract(
    kind="ens",
    record_name="EnsFiling",
    key=("ens_id",),
    time_field="filed_at",
    description="An ICS2 entry summary declaration at house-consignment level.",
    fields=(
        FieldSpec(
            "ens_id",
            "str",
            "ENS MRN.",
            "26NL00000000001234",
            max_length=ID_MAX_LENGTH,
            pattern=r"[A-Za-z0-9\-]+",
        ),
        FieldSpec(
            "house_document_id",
            "str",
            "House transport document.",
            "HAWB0012345678",
            max_length=ID_MAX_LENGTH,
        ),
        FieldSpec(
            "master_document_id",
            "str",
            "Master transport document.",
            "MAWB00001234",
            required=False,
            max_length=ID_MAX_LENGTH,
        ),
        FieldSpec("filed_at", "timestamp", "When the ENS was filed (UTC).", "2026-11-02T03:00:00Z"),
        FieldSpec(
            "ics2_release",
            "str",
            "R1 pre-loading postal/express air, R2 air, R3 other.",
            "R3",
            codes=_codes(ICS2_RELEASES),
        ),
        FieldSpec("transport_mode", "int", "UCC mode of transport at the border.", 1, codes=_MODES),
        FieldSpec("carrier_id", "str", "Carrier EORI.", "DK123456789012", pattern=EORI_PATTERN),
        FieldSpec(
            "consignor_name",
            "str",
            "Consignor name.",
            "Shenzhen Bright Co Ltd",
            max_length=TEXT_MAX_LENGTH,
        ),
        FieldSpec("consignor_country", "str", "Consignor country.", "CN", codes=_COUNTRY),
        FieldSpec(
            "consignee_name",
            "str",
            "Consignee name.",
            "Rhine Import GmbH",
            max_length=TEXT_MAX_LENGTH,
        ),
        FieldSpec("consignee_country", "str", "Consignee country.", "DE", codes=_COUNTRY),
        FieldSpec(
            "consignee_id",
            "str",
            "Consignee EORI (absent for consumers).",
            "DE987654321098",
            required=False,
            pattern=EORI_PATTERN,
        ),
        FieldSpec(
            "goods_description",
            "str",
            "Plain-language description of the goods.",
            "smartphones",
            max_length=TEXT_MAX_LENGTH,
        ),
        FieldSpec(
            "hs_code",
            "str",
            "HS6 code (optional in R1 only).",
            "851713",
            required=False,
            pattern=r"[0-9]{6}",
        ),
        FieldSpec("gross_mass_kg", "float", "Gross mass in kg.", 850.0, gt=0),
        FieldSpec("packages", "int", "Number of packages.", 12, ge=1),
        FieldSpec(
            "declared_value_eur", "float", "Declared value in EUR.", 12000.0, required=False, gt=0
        ),
        FieldSpec(
            "country_of_loading", "str", "Country where goods were loaded.", "CN", codes=_COUNTRY
        ),
        FieldSpec(
            "itinerary",
            "str_list",
            "Countries of routing, first = country of loading.",
            ["CN", "AE", "NL"],
            codes=_COUNTRY,
            max_items=ITINERARY_MAX_ITEMS,
        ),
        FieldSpec("first_entry_country", "str", "EU member state of first entry.", "NL", codes=_EU),
        FieldSpec(
            "container_ids",
            "str_list",
            "Container numbers (ISO 6346).",
            ["MSKU1234567"],
            required=False,
            pattern=r"[A-Z]{4}[0-9]{7}",
            max_items=CONTAINERS_MAX_ITEMS,
        ),
        FieldSpec(
            "extra",
            "map",
            "National attributes: at most 50 keys (letters, digits, _), values text (at most "
            "256 characters), numbers, booleans or null.",
            {},
            required=False,
            max_items=EXTRA_MAX_KEYS,
        ),
    ),
    list_head_rules=(
        ListHeadRule(
            "itinerary_starts_at_loading",
            "itinerary",
            "country_of_loading",
            "itinerary must start with country_of_loading",
        ),
    ),
    conditional_required=(
        ConditionalRequired(
            "hs_code_required_r2_r3",
            "hs_code",
            "ics2_release",
            ("R2", "R3"),
            "hs_code is required in ICS2 releases R2 and R3",
        ),
    ),
)

CONTROL_RESULT = RecordContract(
    kind="control-results",
    record_name="ControlResult",
    key=("control_id",),
    time_field="controlled_at",
    description="The result of a customs control: the feedback that closes the loop.",
    fields=(
        FieldSpec(
            "control_id",
            "str",
            "Unique control id.",
            "CTL-2026-000123",
            max_length=ID_MAX_LENGTH,
            pattern=r"[A-Za-z0-9\-_.:]+",
        ),
        FieldSpec(
            "subject_type",
            "str",
            "What was controlled.",
            "declaration",
            codes=_codes(SUBJECT_TYPES),
        ),
        FieldSpec(
            "subject_id",
            "str",
            "declaration_id or ens_id.",
            "26NL00000012345678",
            max_length=ID_MAX_LENGTH,
        ),
        FieldSpec(
            "item_number",
            "int",
            "Goods item number (declarations).",
            1,
            required=False,
            ge=1,
            le=9999,
        ),
        FieldSpec(
            "controlled_at",
            "timestamp",
            "When the control took place (UTC).",
            "2026-11-02T15:00:00Z",
        ),
        FieldSpec(
            "reported_at",
            "timestamp",
            "When the outcome became known (UTC); absent: the service's receive time, or "
            "controlled_at plus the configured reporting delay for files.",
            "2026-11-03T10:00:00Z",
            required=False,
        ),
        FieldSpec(
            "control_type",
            "str",
            "documentary, physical, scan or post_release_audit.",
            "physical",
            codes=_codes(CONTROL_TYPES),
        ),
        FieldSpec(
            "selection_reason",
            "str",
            "Why it was controlled: model, rule, random, other.",
            "model",
            codes=_codes(SELECTION_REASONS),
        ),
        FieldSpec(
            "selection_probability",
            "float",
            "Chance that the item was selected for this control, as the selecting system "
            "recorded it (the service fills it from its audit log); the propensity that "
            "unbiased estimates and training weights use. Absent: estimated.",
            0.005,
            required=False,
            gt=0,
            le=1,
        ),
        FieldSpec(
            "outcome",
            "str",
            "no_irregularity or irregularity.",
            "irregularity",
            codes=_codes(OUTCOMES),
        ),
        FieldSpec(
            "risk_area",
            "str",
            "Risk area of the irregularity found.",
            "financial",
            required=False,
            codes=_codes(RISK_AREAS),
        ),
        FieldSpec(
            "revenue_recovered_eur", "float", "Duties and taxes recovered, EUR.", 1250.0, ge=0
        ),
        FieldSpec("seizure", "bool", "Goods were seized.", False),
        FieldSpec(
            "note",
            "str",
            "Free text from the officer.",
            "undervalued invoice",
            required=False,
            max_length=2000,
        ),
    ),
    pair_rules=(
        PairRule(
            "reported_after_control",
            "reported_at",
            "controlled_at",
            True,
            "reported_at must not be before controlled_at",
        ),
    ),
    conditional_required=(
        ConditionalRequired(
            "risk_area_required_when_irregular",
            "risk_area",
            "outcome",
            ("irregularity",),
            "risk_area is required when outcome is irregularity",
        ),
    ),
)

KINDS: dict[str, RecordContract] = {c.kind: c for c in (DECLARATION, ENS, CONTROL_RESULT)}
IDENTIFIER_FORMATS: tuple[IdentifierFormat, ...] = ("eori", "opaque")


def party_id_fields(contract: RecordContract) -> list[str]:
    """The fields that identify an economic operator (EORI-checked in the ``eori`` format)."""
    return [f.name for f in contract.fields if f.pattern == EORI_PATTERN]


def _opaque(contract: RecordContract) -> RecordContract:
    fields = tuple(
        replace(
            spec,
            pattern=OPAQUE_ID_PATTERN,
            max_length=ID_MAX_LENGTH,
            description=spec.description.replace("EORI", "id (national, opaque)"),
            example="7300412",
        )
        if spec.pattern == EORI_PATTERN
        else spec
        for spec in contract.fields
    )
    return replace(contract, fields=fields, identifiers="opaque")


_OPAQUE_KINDS: dict[str, RecordContract] = {kind: _opaque(c) for kind, c in KINDS.items()}


def contract_for(kind: str, identifiers: IdentifierFormat | str = "eori") -> RecordContract:
    """The contract of ``kind`` (``declarations``, ``ens`` or ``control-results``).

    ``identifiers="opaque"`` gives the same contract with the party ids (importer, declarant,
    carrier, consignee) checked as any printable id of bounded length instead of as EORIs: the
    format of a national administration's or a researcher's file (``crisk import``).
    """
    if identifiers not in IDENTIFIER_FORMATS:
        raise ValueError(
            f"unknown identifier format {identifiers!r}; expected one of {IDENTIFIER_FORMATS}"
        )
    contracts = KINDS if identifiers == "eori" else _OPAQUE_KINDS
    try:
        return contracts[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(KINDS)}") from None
