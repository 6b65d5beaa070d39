"""`crisk world generate`: a reproducible synthetic customs world (spec §7).

Writes, into one directory:

- ``declarations.parquet``, ``ens.parquet``: what traders filed (including a few exact and
  amended duplicates and a few broken rows, as real feeds have);
- ``control_results.parquet``: the controls that happened and what they found (labels exist
  only for controlled rows);
- ``operators.parquet``: the operator register (EORI, AEO status, registration date);
- ``risk_profiles.json``: the risk unit's rule parameters;
- apart from them, ``ground_truth.parquet`` (every row's true probabilities, irregularities and
  recoverable revenue) and ``ground_truth_operators.parquet`` (latent traits). Nothing the
  system learns from reads these; evaluation against the oracle and the simulation do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.progress import Progress, advance, quiet
from features.risk_profiles import RiskProfiles, declaration_rule_hits, ens_rule_hits
from world.catalogue import CHAPTERS, ORIGINS, build_commodities
from world.controls import ControlPolicy, control_outcomes, historical_selection
from world.declarations import PriceModel, generate_declarations
from world.ens import generate_ens
from world.operators import Operators, build_operators

__all__ = ["World", "WorldConfig", "WorldFiles", "generate_world", "write_world"]

logger = logging.getLogger(__name__)

OBSERVABLE_OPERATOR_COLUMNS = ["operator_id", "role", "country", "name", "aeo", "registered_at"]


@dataclass(frozen=True)
class WorldConfig:
    """Size, span and seed of a world."""

    seed: int = 7
    declarations: int = 100_000  # declaration items
    ens: int | None = None  # ENS filings; default: half the declaration items
    start: date = date(2026, 1, 5)
    weeks: int = 52
    commodities_per_chapter: int = 18
    duplicate_rate: float = 0.002  # exact re-sends
    amendment_rate: float = 0.004  # amended versions of an item, sent later
    broken_rate: float = 0.001  # rows that break the contract
    controls: ControlPolicy = field(default_factory=ControlPolicy)

    @property
    def n_ens(self) -> int:
        return self.declarations // 2 if self.ens is None else self.ens


@dataclass
class World:
    declarations: pd.DataFrame
    ens: pd.DataFrame
    control_results: pd.DataFrame
    operators: pd.DataFrame
    risk_profiles: RiskProfiles
    ground_truth: pd.DataFrame
    ground_truth_operators: pd.DataFrame
    config: WorldConfig


@dataclass(frozen=True)
class WorldFiles:
    directory: Path

    @property
    def declarations(self) -> Path:
        return self.directory / "declarations.parquet"

    @property
    def ens(self) -> Path:
        return self.directory / "ens.parquet"

    @property
    def control_results(self) -> Path:
        return self.directory / "control_results.parquet"

    @property
    def operators(self) -> Path:
        return self.directory / "operators.parquet"

    @property
    def risk_profiles(self) -> Path:
        return self.directory / "risk_profiles.json"

    @property
    def ground_truth(self) -> Path:
        return self.directory / "ground_truth.parquet"

    @property
    def ground_truth_operators(self) -> Path:
        return self.directory / "ground_truth_operators.parquet"

    @property
    def manifest(self) -> Path:
        return self.directory / "world.json"


def _operator_register(ops: Operators, start: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = [ops.importers, ops.declarants, ops.sellers, ops.carriers]
    frames = []
    for table in tables:
        frame = table.copy()
        frame["registered_at"] = (
            start + pd.to_timedelta(frame["registered_day"], unit="D")
        ).dt.tz_localize("UTC")
        frames.append(frame)
    everything = pd.concat(frames, ignore_index=True)
    observable = everything[OBSERVABLE_OPERATOR_COLUMNS].copy()
    latent = everything[
        ["operator_id", "role", *[c for c in everything.columns if c.startswith("_")]]
    ].copy()
    latent.columns = [c.lstrip("_") for c in latent.columns]
    return observable, latent


def _price_model(rng: np.random.Generator, catalogue: pd.DataFrame) -> PriceModel:
    origin_factor = np.log([o.price_factor for o in ORIGINS])
    pair_noise = rng.normal(0.0, 0.15, size=(len(catalogue), len(ORIGINS)))
    log_price = (
        np.log(catalogue["price_eur_per_kg"].to_numpy())[:, None] + origin_factor + pair_noise
    )
    return PriceModel(log_price=log_price, sigma=catalogue["price_sigma"].to_numpy())


def _risk_profiles(ops: Operators) -> RiskProfiles:
    mean_factor = float(np.exp(np.mean(np.log([o.price_factor for o in ORIGINS]))))
    return RiskProfiles(
        reference_price_eur_per_kg={
            c.code: round(c.price_eur_per_kg * mean_factor, 2) for c in CHAPTERS
        },
        risky_transit_countries=list(ops.risky_hubs),
    )


def _resends(
    rng: np.random.Generator, frame: pd.DataFrame, config: WorldConfig, amend_column: str
) -> pd.DataFrame:
    """Append exact duplicates and amended versions (a corrected mass), as feeds re-send them."""
    n = len(frame)
    exact = frame.iloc[rng.choice(n, int(n * config.duplicate_rate), replace=False)]
    amended = frame.iloc[rng.choice(n, int(n * config.amendment_rate), replace=False)].copy()
    amended[amend_column] = (amended[amend_column] * rng.uniform(1.01, 1.1, len(amended))).round(3)
    return pd.concat([frame, exact, amended], ignore_index=True)


def _break_rows(rng: np.random.Generator, items: pd.DataFrame, rate: float) -> pd.DataFrame:
    """Corrupt a few rows the way real feeds do; the contracts must quarantine exactly these."""
    n = int(len(items) * rate)
    if n == 0:
        return items
    items = items.copy()
    rows = rng.choice(len(items), n, replace=False)
    kinds = rng.integers(0, 5, n)
    for kind in range(5):
        target = items.index[rows[kinds == kind]]
        if kind == 0:
            items.loc[target, "gross_mass_kg"] = items.loc[target, "net_mass_kg"] * 0.5
        elif kind == 1:
            items.loc[target, "origin_country"] = "XX"
        elif kind == 2:
            items.loc[target, "customs_value_eur"] = -items.loc[target, "customs_value_eur"]
        elif kind == 3:
            items.loc[target, "hs_code"] = items.loc[target, "hs_code"].str[:4] + "AB"
        else:
            items.loc[target, "importer_id"] = None
    return items


_STEPS = "drawing the synthetic world"


def generate_world(config: WorldConfig, progress: Progress = quiet) -> World:
    """Draw a world. The same config (seed included) gives the same world, row for row."""
    advance(progress, _STEPS, 0, 5)
    seeds = np.random.SeedSequence(config.seed).spawn(8)
    rng_ops, rng_cat, rng_decl, rng_ens, rng_ctl, rng_dup, rng_price, rng_ens_ctl = (
        np.random.default_rng(s) for s in seeds
    )
    start = pd.Timestamp(config.start)
    n_days = config.weeks * 7
    world_end = (start + pd.Timedelta(days=n_days)).tz_localize("UTC")

    catalogue = build_commodities(rng_cat, config.commodities_per_chapter)
    ops = build_operators(rng_ops, config.declarations, n_days, config.n_ens)
    operators, latent = _operator_register(ops, start)
    profiles = _risk_profiles(ops)
    prices = _price_model(rng_price, catalogue)
    advance(progress, _STEPS, 1, 5)

    draw = generate_declarations(
        rng_decl, config.declarations, n_days, start, ops, catalogue, prices
    )
    items = draw.items
    advance(progress, _STEPS, 2, 5)
    registered = operators.set_index("operator_id")["registered_at"]
    hits = declaration_rule_hits(items, profiles, registered)
    any_irregular = np.asarray(np.column_stack(list(draw.irregular.values())).any(axis=1))
    reason = historical_selection(
        rng_ctl, hits.any(axis=1).to_numpy(), any_irregular, config.controls
    )
    decl_controls = control_outcomes(
        rng_ctl,
        subject_type="declaration",
        subject_id=items["declaration_id"].to_numpy(),
        item_number=items["item_number"].to_numpy(),
        event_at=items["lodged_at"],
        reason=reason,
        irregular=draw.irregular,
        recoverable_eur=draw.recoverable_eur,
        world_end=world_end,
        id_prefix="CD",
    )

    advance(progress, _STEPS, 3, 5)
    ens_draw = generate_ens(rng_ens, config.n_ens, n_days, start, ops, catalogue)
    filings = ens_draw.filings
    ens_hits = ens_rule_hits(filings, profiles)
    ens_irregular = np.asarray(np.column_stack(list(ens_draw.irregular.values())).any(axis=1))
    ens_reason = historical_selection(
        rng_ens_ctl, ens_hits.any(axis=1).to_numpy(), ens_irregular, config.controls
    )
    ens_controls = control_outcomes(
        rng_ens_ctl,
        subject_type="ens",
        subject_id=filings["ens_id"].to_numpy(),
        item_number=None,
        event_at=filings["filed_at"],
        reason=ens_reason,
        irregular=ens_draw.irregular,
        recoverable_eur=np.zeros(len(filings)),
        world_end=world_end,
        id_prefix="CE",
    )
    controls = pd.concat([decl_controls, ens_controls], ignore_index=True)
    advance(progress, _STEPS, 4, 5)
    controls = controls.sort_values("controlled_at", kind="stable").reset_index(drop=True)

    declarations = _resends(
        rng_dup, _break_rows(rng_dup, items, config.broken_rate), config, "gross_mass_kg"
    )
    ens = _resends(rng_dup, filings, config, "gross_mass_kg")
    truth = pd.concat([draw.truth, ens_draw.truth], ignore_index=True)
    advance(progress, _STEPS, 5, 5)
    return World(
        declarations=declarations,
        ens=ens,
        control_results=controls,
        operators=operators,
        risk_profiles=profiles,
        ground_truth=truth,
        ground_truth_operators=latent,
        config=config,
    )


def write_world(world: World, directory: Path) -> WorldFiles:
    """Write the world's files; returns where they are."""
    files = WorldFiles(Path(directory))
    files.directory.mkdir(parents=True, exist_ok=True)
    world.declarations.to_parquet(files.declarations, index=False)
    world.ens.to_parquet(files.ens, index=False)
    world.control_results.to_parquet(files.control_results, index=False)
    world.operators.to_parquet(files.operators, index=False)
    world.ground_truth.to_parquet(files.ground_truth, index=False)
    world.ground_truth_operators.to_parquet(files.ground_truth_operators, index=False)
    files.risk_profiles.write_text(world.risk_profiles.model_dump_json(indent=2))
    manifest = asdict(world.config)
    manifest["start"] = world.config.start.isoformat()
    manifest["counts"] = {
        "declaration_rows": len(world.declarations),
        "ens_rows": len(world.ens),
        "control_results": len(world.control_results),
        "operators": len(world.operators),
    }
    files.manifest.write_text(json.dumps(manifest, indent=2, default=str))
    return files
