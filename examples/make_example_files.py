"""Write the two example files of ``examples/`` from the synthetic world (spec §6, issue 9).

Both are *made-up* national formats, deliberately different, so that ``crisk import`` is shown
on files that look nothing like crisk's own records:

- ``national_a.csv`` (mapping ``national_a.yaml``): a national customs system's export —
  semicolon-separated, decimal commas, Latin-1 (accented column names), day-first local times
  in Europe/Paris, amounts in a local currency ("XFR", 6.5 per EUR; invoice value and freight
  apart), national party numbers instead of EORIs, national transport/declaration/result codes,
  10-digit national tariff codes of which some lost their leading zero in a spreadsheet (so
  ``pad`` matters), and past control results in the same rows (most rows were never
  controlled, a few at random);
- ``research_b.parquet`` (mapping ``research_b.yaml``): a research data set in the style of
  published customs-fraud benchmarks — every row was inspected, a 0/1 label, a severity, the
  revenue recovered, typed columns (tariff codes stored as integers, so they lost leading zeros
  too), amounts in three currencies, no goods descriptions, and six national attributes.

The world's ground truth and latent operator traits are read *here only*, when the files are
written, to make some national attributes genuinely informative (as real ones are): a national
valuation index and prior notices follow the true undervaluation, a payment method follows the
importer's latent propensity. crisk itself never sees them: it reads the files as any
administration's data.

    .venv/bin/python examples/make_example_files.py --out DIR [--items 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from world.generate import World, WorldConfig, generate_world

__all__ = [
    "EXAMPLES",
    "national_a",
    "research_b",
    "write_examples",
    "write_national_a",
    "write_research_b",
]

logger = logging.getLogger(__name__)

EXAMPLES = Path(__file__).resolve().parent
LOCAL_PER_EUR = 6.5  # the made-up "XFR" of file (a)
RATES_B = {"EUR": 1.0, "USD": 1.1, "GBP": 0.85}  # units per EUR in file (b)
ZONE_A = "Europe/Paris"
_MODES_A = {1: "M", 2: "F", 3: "R", 4: "A", 5: "P", 7: "I", 8: "N", 9: "X"}
_TYPES_A = {"H1": "IM4", "H7": "IM7", "I1": "IMS"}
_AREAS_A = {
    "financial": "VAL",
    "ipr": "CTF",
    "product_safety": "SEC",
    "prohibitions_restrictions": "PRO",
    "safety_security": "SUR",
}
_CONTROL_TYPES_A = {"documentary": "D", "physical": "P", "scan": "S", "post_release_audit": "A"}
_SELECTION_A = {"rule": "R", "random": "H", "other": "O", "model": "M"}  # H: hasard
_REPORT_DELAY_DAYS = {"documentary": 2.0, "physical": 0.5, "scan": 0.2, "post_release_audit": 75.0}


def _national_number(ids: pd.Series, prefix: str = "", digits: int = 8) -> pd.Series:
    """A stable made-up national number per EORI (leading zeros included: they are text)."""

    def number(value: object) -> str | None:
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            return None
        digest = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
        return prefix + str(int.from_bytes(digest, "big") % 10**digits).zfill(digits)

    return ids.map(number)


def _decimal_comma(values: pd.Series, decimals: int) -> pd.Series:
    text = values.map(lambda v: "" if pd.isna(v) else f"{v:.{decimals}f}")
    return text.str.replace(".", ",", regex=False)


def _local_time(stamps: pd.Series) -> pd.Series:
    local = pd.to_datetime(stamps, utc=True).dt.tz_convert(ZONE_A)
    return local.dt.strftime("%d/%m/%Y %H:%M").where(local.notna(), "")


def _first_control(world: World) -> pd.DataFrame:
    controls = world.control_results
    controls = controls[controls["subject_type"] == "declaration"].sort_values("controlled_at")
    controls = controls.drop_duplicates(["subject_id", "item_number"], keep="first")
    return controls.assign(item_number=controls["item_number"].astype("int64"))


def _items(world: World) -> pd.DataFrame:
    """One row per declaration item (a national export has no re-sends), with its control."""
    items = world.declarations.drop_duplicates(["declaration_id", "item_number"], keep="last")
    items = items.assign(item_number=items["item_number"].astype("int64"))
    controls = _first_control(world).rename(columns={"subject_id": "declaration_id"})
    return items.merge(controls, on=["declaration_id", "item_number"], how="left").reset_index(
        drop=True
    )


def _importer_propensity(world: World, importer_ids: pd.Series) -> np.ndarray:
    latent = world.ground_truth_operators.set_index("operator_id")["propensity"]
    return importer_ids.map(latent).fillna(0.0).to_numpy(dtype=float)


def national_a(world: World, seed: int = 7) -> pd.DataFrame:
    """File (a): the columns and codes of a made-up national import system, as text."""
    rng = np.random.default_rng(seed)
    items = _items(world)
    n = len(items)
    tariff = items["hs_code"].astype(str).str.ljust(10, "0")
    lost_zero = tariff.str.startswith("0") & (rng.random(n) < 0.4)  # opened in a spreadsheet
    tariff = tariff.where(~lost_zero, tariff.str.lstrip("0"))
    propensity = _importer_propensity(world, items["importer_id"])
    # Risky importers pay cash more often: an informative national attribute.
    payment = np.where(rng.random(n) < 0.15 + 0.6 * propensity, "30", rng.choice(["10", "20"], n))
    controlled = items["control_id"].notna()
    irregular = items["outcome"].eq("irregularity")
    result = np.where(
        ~controlled, "", np.where(irregular, np.where(items["seizure"].eq(True), "S", "I"), "C")
    )
    delay = items["control_type"].map(_REPORT_DELAY_DAYS).fillna(0.0)
    reported = items["controlled_at"] + pd.to_timedelta(delay, unit="D")
    return pd.DataFrame(
        {
            "NUM_DECL": items["declaration_id"].str[2:],  # without the country prefix
            "ARTICLE": items["item_number"].astype(str),
            "DATE_ACCEPTATION": _local_time(items["lodged_at"]),
            "TYPE_DECL": items["declaration_type"].map(_TYPES_A),
            "BUREAU": items["customs_office"].str[-4:],  # national office number: 4 digits
            "IMPORTATEUR": _national_number(items["importer_id"]),
            "DÉCLARANT": _national_number(items["declarant_id"]),
            "VENDEUR": _national_number(items["seller_id"], "V"),
            "TARIF": tariff,
            "DÉSIGNATION": items["goods_description"].fillna(""),
            "ORIGINE": items["origin_country"].fillna(""),
            "PROVENANCE": items["dispatch_country"].fillna(""),
            "MODE": items["transport_mode"].map(_MODES_A).fillna(""),
            "RÉGIME": items["procedure_code"],
            "PRÉFÉRENCE": items["preference_code"].fillna(""),
            "POIDS_NET": _decimal_comma(items["net_mass_kg"], 3),
            "POIDS_BRUT": _decimal_comma(items["gross_mass_kg"].where(rng.random(n) > 0.05), 3),
            # Invoice value and freight apart: the customs value is their sum (an expression).
            "VALEUR": _decimal_comma(items["customs_value_eur"] * LOCAL_PER_EUR * 0.95, 2),
            "FRET": _decimal_comma(items["customs_value_eur"] * LOCAL_PER_EUR * 0.05, 2),
            "DROITS": _decimal_comma(items["duty_eur"] * LOCAL_PER_EUR, 2),
            "CONTENEUR": np.where(items["container"].eq(True), "O", "N"),
            "PAIEMENT": payment,
            "TAUX": _decimal_comma(
                (items["duty_eur"] / items["customs_value_eur"] * 100).round(1), 1
            ),
            "CANAL": rng.choice(["EDI", "WEB", "PAPIER"], n, p=[0.7, 0.25, 0.05]),
            "RÉSULTAT": result,
            "DOMAINE": items["risk_area"].map(_AREAS_A).fillna(""),
            "TYPE_CONTROLE": items["control_type"].map(_CONTROL_TYPES_A).fillna(""),
            "CIBLAGE": items["selection_reason"].map(_SELECTION_A).fillna(""),
            "DATE_CONTROLE": _local_time(items["controlled_at"]),
            "DATE_NOTIFICATION": _local_time(reported),
            "REDRESSEMENT": _decimal_comma(
                (items["revenue_recovered_eur"] * LOCAL_PER_EUR).where(controlled), 2
            ),
        }
    )


def research_b(world: World, seed: int = 7) -> pd.DataFrame:
    """File (b): every item inspected, labelled by the world's truth (typed columns)."""
    rng = np.random.default_rng(seed + 1)
    items = world.declarations.drop_duplicates(["declaration_id", "item_number"], keep="last")
    items = items.assign(item_number=items["item_number"].astype("int64")).reset_index(drop=True)
    truth = world.ground_truth[world.ground_truth["subject_type"] == "declaration"]
    truth = truth.assign(item_number=truth["item_number"].astype("int64"))
    items = items.merge(
        truth,
        left_on=["declaration_id", "item_number"],
        right_on=["subject_id", "item_number"],
        how="left",
    )
    n = len(items)
    illicit = items["irregular_financial"].fillna(False).to_numpy(dtype=bool)
    revenue = np.where(illicit, items["recoverable_revenue_eur"].fillna(0.0), 0.0)
    severity = np.where(~illicit, 0, np.where(revenue > 2000, 3, np.where(revenue > 200, 2, 1)))
    currency = rng.choice(list(RATES_B), n, p=[0.7, 0.2, 0.1])
    rate = pd.Series(currency).map(RATES_B).to_numpy()
    propensity = _importer_propensity(world, items["importer_id"])
    true_value = items["true_customs_value_eur"].fillna(items["customs_value_eur"])
    # A national valuation index (declared against a reference price): informative, but noisy
    # and computed for half of the items only, as such checks are.
    valuation_index = items["customs_value_eur"] / true_value * rng.lognormal(0.0, 0.7, n)
    valuation_index = valuation_index.where(rng.random(n) < 0.5)
    tariff = items["hs_code"].astype(str).str.ljust(10, "0")
    mode = items["transport_mode"].astype("Int64") * 10
    return pd.DataFrame(
        {
            "sgd_id": np.arange(100_001, 100_001 + n, dtype=np.int64),
            "sgd_date": pd.to_datetime(items["lodged_at"], utc=True)
            .dt.tz_localize(None)
            .dt.floor("D"),
            "importer_id": _national_number(items["importer_id"], "IMP", 6),
            "declarant_id": _national_number(items["declarant_id"], "DEC", 5),
            "seller_id": _national_number(items["seller_id"], "SEL", 6),
            "office_id": items["customs_office"].str[-3:].astype(int),
            "tariff_code": pd.to_numeric(tariff, errors="coerce").astype("Int64"),
            "country": items["origin_country"],
            "mode": mode,
            "quantity": items["supplementary_units"],
            "net_weight": items["net_mass_kg"],
            "gross_weight": items["gross_mass_kg"].where(rng.random(n) > 0.1),
            "currency": currency,
            "cif_value": (items["customs_value_eur"] * rate).round(2),
            "total_taxes": (items["duty_eur"] * rate).round(2),
            "container": items["container"].astype(bool),
            "payment_method": np.where(
                rng.random(n) < 0.1 + 0.7 * propensity, "cash", rng.choice(["card", "transfer"], n)
            ),
            "broker_class": rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2]),
            "lane": rng.choice(["1", "2", "3", "4"], n),
            "tax_rate": (items["duty_eur"] / items["customs_value_eur"]).round(3),
            "prior_notices": rng.poisson(0.2 + 3.0 * propensity, n),
            "valuation_index": valuation_index.round(3),
            "illicit": illicit.astype(np.int64),
            "severity": severity.astype(np.int64),
            "revenue": np.round(revenue, 2),
        }
    )


def write_national_a(world: World, path: Path, seed: int = 7) -> Path:
    frame = national_a(world, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=";", index=False, encoding="latin-1")
    return path


def write_research_b(world: World, path: Path, seed: int = 7) -> Path:
    frame = research_b(world, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def write_examples(out: Path, items: int = 20_000, seed: int = 7) -> dict[str, Path]:
    """Both example files from one synthetic world of ``items`` declaration items."""
    world = generate_world(WorldConfig(seed=seed, declarations=items, ens=1_000))
    return {
        "national_a": write_national_a(world, out / "national_a.csv", seed),
        "research_b": write_research_b(world, out / "research_b.parquet", seed),
    }


def main() -> None:  # pragma: no cover - script entry
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Directory to write into.")
    parser.add_argument("--items", type=int, default=20_000, help="Declaration items.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for name, path in write_examples(args.out, args.items, args.seed).items():
        print(f"{name}: {path}  (mapping: {EXAMPLES / (name + '.yaml')})")


if __name__ == "__main__":
    main()
