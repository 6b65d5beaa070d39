"""Code lists the contracts check values against.

Each list is the reference a customs system already uses (UCC transport modes, ISO 3166-1,
Incoterms 2020, ICS2 releases); keeping them in one module lets the GX suites, the pydantic
models and the synthetic world read the same values.
"""

from __future__ import annotations

from functools import cache

__all__ = [
    "CONTROL_TYPES",
    "DECLARATION_TYPES",
    "EU_MEMBER_STATES",
    "ICS2_RELEASES",
    "INCOTERMS",
    "OUTCOMES",
    "RISK_AREAS",
    "SELECTION_REASONS",
    "SUBJECT_TYPES",
    "TRANSPORT_MODES",
    "iso_countries",
]

# UCC Annex B data element 19 03: mode of transport at the border.
TRANSPORT_MODES: dict[int, str] = {
    1: "sea",
    2: "rail",
    3: "road",
    4: "air",
    5: "postal",
    7: "fixed installation",
    8: "inland water",
    9: "own propulsion",
}

DECLARATION_TYPES: dict[str, str] = {
    "H1": "standard import declaration",
    "H7": "low-value consignment (e-commerce, intrinsic value up to 150 EUR)",
    "I1": "simplified import declaration",
}

ICS2_RELEASES: dict[str, str] = {
    "R1": "pre-loading minimum dataset, postal and express air",
    "R2": "full ENS, all air goods",
    "R3": "sea, road, rail and inland waterways",
}

INCOTERMS: tuple[str, ...] = (
    "EXW",
    "FCA",
    "CPT",
    "CIP",
    "DAP",
    "DPU",
    "DDP",
    "FAS",
    "FOB",
    "CFR",
    "CIF",
)

EU_MEMBER_STATES: tuple[str, ...] = (
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
)

# The EU common risk management framework's areas; every model and every irregular control
# result names one of these.
RISK_AREAS: tuple[str, ...] = (
    "financial",
    "safety_security",
    "prohibitions_restrictions",
    "ipr",
    "product_safety",
)

CONTROL_TYPES: tuple[str, ...] = ("documentary", "physical", "scan", "post_release_audit")
SELECTION_REASONS: tuple[str, ...] = ("model", "rule", "random", "other")
OUTCOMES: tuple[str, ...] = ("no_irregularity", "irregularity")
SUBJECT_TYPES: tuple[str, ...] = ("declaration", "ens")


@cache
def iso_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, plus the EU's own code for Greece in customs data (EL) and XK."""
    import pycountry

    codes = {country.alpha_2 for country in pycountry.countries}
    # Customs data uses EL for Greece (EU convention) and XK for Kosovo (user-assigned code).
    return frozenset(codes | {"EL", "XK"})
