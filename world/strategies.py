"""The control strategies the simulator compares, and what their controls find (spec §7).

Every strategy fills the same weekly capacity (:func:`select_within_capacity`): a random share
drawn among all of the week's items whatever their score, the rest the highest-ranked items.
What a control finds comes from the ground truth through the detection rate of its type, and is
known after that type's reporting delay (:mod:`world.controls`), for every strategy alike.

The learning strategies (:class:`Learner`) are deployments in miniature, each in a workspace of
its own: a data store, Feast's feature tables refreshed every week from what has been reported,
the service's champion bundle and scorer, and — for the retrained ones — training and the
promotion gate every few weeks.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from data_contracts.codelists import RISK_AREAS
from data_contracts.definitions import contract_for
from data_contracts.workspace import Workspace
from features.config import FeatureStoreSettings
from features.risk_profiles import RiskProfiles, declaration_rule_hits, rule_score
from world.controls import ControlledItems, control_results, control_types

__all__ = [
    "ControlUnit",
    "Fixed",
    "Learner",
    "Replay",
    "Schedule",
    "Selection",
    "Strategy",
    "WeekOutcome",
    "copy_workspace",
    "non_financial_probability",
    "oracle_score",
    "outcomes",
    "rules_score",
    "select_within_capacity",
    "training_settings",
    "week_outcome",
]

logger = logging.getLogger(__name__)

_KEYS = ["declaration_id", "item_number"]


@dataclass(frozen=True)
class ControlUnit:
    """How much a week's control units can do, how they split it, and what they are after.

    A model-guided unit ranks items by the expected value of a control: the revenue it expects
    to recover plus ``hit_value_eur`` for each irregularity it expects to find in an area that
    recovers no revenue (a seizure of counterfeit or unsafe goods is worth a control too). A
    financial irregularity is worth what it recovers: counting it again per hit would rank
    many small recoveries above a few large ones.
    """

    share: float  # of the week's items
    physical_share: float  # of the model-selected controls that are physical
    hit_value_eur: float = 500.0

    def control_value(self, non_financial: np.ndarray, expected_revenue: np.ndarray) -> np.ndarray:
        """Expected revenue (EUR) + the value of the expected non-revenue irregularities."""
        return np.nan_to_num(expected_revenue) + self.hit_value_eur * np.nan_to_num(non_financial)


@dataclass
class Replay:
    """The world as the replay reads it: valid items with their truth, week by week."""

    items: pd.DataFrame  # valid, current declaration items (contract columns + warnings)
    truth: pd.DataFrame  # aligned with items
    week: np.ndarray  # world week of each item (0-based)
    history_controls: pd.DataFrame  # controls customs made before the replay
    operators: pd.DataFrame  # the operator register
    profiles: RiskProfiles
    start: pd.Timestamp  # the world's first day (UTC)

    def bounds(self, world_week: int) -> pd.Timestamp:
        return self.start + pd.Timedelta(weeks=world_week)

    def week_of(self, world_week: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = self.week == world_week
        return (
            self.items[rows].reset_index(drop=True),
            self.truth[rows].reset_index(drop=True),
        )

    def save(self, folder: Path) -> Path:
        """Written once, read by every strategy's process."""
        folder.mkdir(parents=True, exist_ok=True)
        self.items.assign(__week=self.week).to_parquet(folder / "items.parquet", index=False)
        self.truth.to_parquet(folder / "truth.parquet", index=False)
        self.history_controls.to_parquet(folder / "history_controls.parquet", index=False)
        self.operators.to_parquet(folder / "operators.parquet", index=False)
        (folder / "risk_profiles.json").write_text(self.profiles.model_dump_json(indent=2))
        (folder / "start.txt").write_text(self.start.isoformat())
        return folder

    @classmethod
    def load(cls, folder: Path) -> Replay:
        items = pd.read_parquet(folder / "items.parquet")
        week = items.pop("__week").to_numpy()
        return cls(
            items=items,
            truth=pd.read_parquet(folder / "truth.parquet"),
            week=week,
            history_controls=pd.read_parquet(folder / "history_controls.parquet"),
            operators=pd.read_parquet(folder / "operators.parquet"),
            profiles=RiskProfiles.model_validate_json((folder / "risk_profiles.json").read_text()),
            start=pd.Timestamp((folder / "start.txt").read_text()),
        )


# --- selecting within capacity and what the controls find ---------------------------------------


@dataclass(frozen=True)
class Selection:
    rows: np.ndarray  # positions within the week's items
    reason: np.ndarray  # model | rule | random
    probability: np.ndarray  # the recorded selection probability
    control_type: np.ndarray


def select_within_capacity(
    rng: np.random.Generator,
    score: np.ndarray,
    tie: np.ndarray,
    primary: np.ndarray,
    unit: ControlUnit,
    *,
    reason: str,
    explore: float,
) -> Selection:
    """The week's capacity: ``explore`` of it drawn at random among all items, the rest by score.

    Physical for the highest-ranked share and for selections whose main area is not financial,
    documentary otherwise; the random draws get the historical mix of random controls. A ranked
    selection has probability 1 (its rank decided), a drawn one the draw's rate.
    """
    n = len(score)
    k = max(1, round(unit.share * n))
    k_random = round(explore * k)
    drawn = np.sort(rng.choice(n, size=k_random, replace=False)) if k_random else np.zeros(0, int)
    rest = np.setdiff1d(np.arange(n), drawn)
    order = np.lexsort((-np.nan_to_num(tie[rest]), -np.nan_to_num(score[rest], nan=-np.inf)))
    chosen = rest[order[: k - k_random]]
    physical = np.zeros(len(chosen), dtype=bool)
    physical[: round(unit.physical_share * len(chosen))] = True
    physical |= primary[chosen] != "financial"
    types = np.concatenate(
        [
            np.where(physical, "physical", "documentary").astype(object),
            control_types(rng, np.full(k_random, "random", dtype=object), "declaration"),
        ]
    )
    return Selection(
        rows=np.concatenate([chosen, drawn]),
        reason=np.array([reason] * len(chosen) + ["random"] * k_random, dtype=object),
        probability=np.array([1.0] * len(chosen) + [k_random / n] * k_random),
        control_type=types,
    )


def outcomes(
    rng: np.random.Generator,
    items: pd.DataFrame,
    truth: pd.DataFrame,
    selection: Selection,
    prefix: str,
) -> pd.DataFrame:
    """What the selected controls find (the ground truth through each type's detection rate),
    each result with the selection probability recorded for its item."""
    rows = selection.rows
    controlled = ControlledItems(
        subject_type="declaration",
        subject_id=items["declaration_id"].to_numpy()[rows],
        item_number=items["item_number"].to_numpy()[rows],
        event_at=pd.DatetimeIndex(pd.to_datetime(items["lodged_at"], utc=True)).take(rows),
        reason=selection.reason,
        control_type=selection.control_type,
        irregular={a: truth[f"irregular_{a}"].to_numpy(dtype=bool)[rows] for a in RISK_AREAS},
        recoverable_eur=truth["recoverable_revenue_eur"].to_numpy(dtype=float)[rows],
    )
    results = control_results(rng, controlled, world_end=None, id_prefix=prefix)
    if results.empty:
        return results
    recorded = pd.DataFrame(
        {
            "subject_id": controlled.subject_id,
            "item_number": pd.array(controlled.item_number, dtype="Int64"),
            "selection_probability": selection.probability,
        }
    )
    return results.merge(recorded, on=["subject_id", "item_number"], how="left")


@dataclass(frozen=True)
class WeekOutcome:
    """One strategy's controls in one replayed week, and what the week held."""

    strategy: str
    week: int  # 1-based replayed week
    controls: int
    hits: int  # controlled items found irregular
    revenue_recovered_eur: float
    irregular_items: int  # truly irregular items lodged that week (the recall denominator)
    recoverable_eur: float  # revenue at risk in the week's items
    random_controls: int = 0
    models: str = ""  # the champion versions that selected (learning strategies)
    # Reporting only, from the ground truth: the planted scheme's items (world.drift) among
    # this week's items, among the controls, and found irregular by them.
    scheme_items: int = 0
    scheme_controls: int = 0
    scheme_hits: int = 0


def week_outcome(
    strategy: str,
    week: int,
    results: pd.DataFrame,
    truth: pd.DataFrame,
    selection: Selection,
    models: str = "",
) -> WeekOutcome:
    irregular = truth[[f"irregular_{a}" for a in RISK_AREAS]].any(axis=1)
    scheme = truth["origin_misdeclared"].fillna(False).to_numpy(dtype=bool)
    hits, revenue, scheme_hits = 0, 0.0, 0
    if not results.empty:
        found = results[results["outcome"] == "irregularity"]
        found_items = found[["subject_id", "item_number"]].drop_duplicates()
        hits = len(found_items)
        revenue = float(results["revenue_recovered_eur"].sum())
        planted = truth.loc[scheme, ["subject_id", "item_number"]].astype({"item_number": "Int64"})
        scheme_hits = len(found_items.merge(planted, on=["subject_id", "item_number"]))
    return WeekOutcome(
        strategy=strategy,
        week=week,
        controls=len(selection.rows),
        hits=hits,
        revenue_recovered_eur=round(revenue, 2),
        irregular_items=int(irregular.sum()),
        recoverable_eur=round(float(truth["recoverable_revenue_eur"].sum()), 2),
        random_controls=int((selection.reason == "random").sum()),
        models=models,
        scheme_items=int(scheme.sum()),
        scheme_controls=int(scheme[selection.rows].sum()),
        scheme_hits=scheme_hits,
    )


# --- strategies ------------------------------------------------------------------------------


class Strategy(Protocol):
    name: str

    def select(self, week: int, items: pd.DataFrame, truth: pd.DataFrame) -> Selection: ...

    def feedback(self, week: int, results: pd.DataFrame) -> None: ...

    def models(self) -> str: ...


def non_financial_probability(probabilities: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Probability of an irregularity in any area that recovers no revenue (areas independent)."""
    missing = np.zeros(n)
    p = [np.nan_to_num(probabilities.get(a, missing)) for a in RISK_AREAS if a != "financial"]
    return 1.0 - np.prod([1.0 - q for q in p], axis=0)


def oracle_score(unit: ControlUnit) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    """The best possible selection (the ceiling, for the report only): the control value with
    the ground truth's revenue at risk of each item and its true non-revenue probabilities.

    The revenue at risk is what the world's fraud actually hid in the item (zero for an honest
    one): ranking by it gives the best revenue any selection could recover that week, the
    reference that customs-selection studies normalise by.
    """

    def score(items: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
        p = {a: truth[f"p_{a}"].to_numpy(dtype=float) for a in RISK_AREAS}
        revenue = truth["recoverable_revenue_eur"].to_numpy(dtype=float)
        return unit.control_value(non_financial_probability(p, len(truth)), revenue)

    return score


def rules_score(replay: Replay) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    """The rule profiles' ranking: profiles hit, the declared value as a tie-break."""
    registered = replay.operators.set_index("operator_id")["registered_at"]

    def score(items: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
        hits = declaration_rule_hits(items, replay.profiles, registered)
        return rule_score(hits) + 1e-9 * np.log1p(items["customs_value_eur"].to_numpy(float))

    return score


@dataclass
class Fixed:
    """A strategy that never learns: random, the rule profiles or the oracle."""

    name: str
    rank: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]
    unit: ControlUnit
    rng: np.random.Generator

    def select(self, week: int, items: pd.DataFrame, truth: pd.DataFrame) -> Selection:
        score = self.rank(items, truth)
        primary = np.full(len(items), "financial", dtype=object)
        if self.name == "random":
            return select_within_capacity(
                self.rng, score, score, primary, self.unit, reason="random", explore=1.0
            )
        reason = "rule" if self.name == "rules" else "model"
        tie = truth["recoverable_revenue_eur"].to_numpy() if self.name == "oracle" else score
        return select_within_capacity(
            self.rng, score, tie, primary, self.unit, reason=reason, explore=0.0
        )

    def feedback(self, week: int, results: pd.DataFrame) -> None:
        return None

    def models(self) -> str:
        return ""


# --- the learning strategies: a workspace each -------------------------------------------------


class _PointInTimeReader:
    """Features of the scorer's entities as of their event time, from the feature tables (what
    an online store materialised every day would serve)."""

    def __init__(self, settings: FeatureStoreSettings, service: str) -> None:
        self.settings = settings
        self.service = service

    def get(self, entities: Mapping[str, Any]) -> Mapping[str, Any]:
        from features.retrieval import historical_features

        frame = historical_features(
            self.settings, self.service, pd.DataFrame(dict(entities)), engine="duckdb"
        )
        return {c: frame[c].to_numpy() for c in frame.columns}


@dataclass(frozen=True)
class Schedule:
    """When a learner's replay starts and how often it retrains (0: never)."""

    first_week: int  # world week of replayed week 1
    retrain_every: int


@dataclass
class Learner:
    """A strategy that scores with the champion of its own workspace and learns from controls."""

    name: str
    home: Path
    replay: Replay
    unit: ControlUnit
    schedule: Schedule
    training: Any  # TrainingSettings of this workspace
    rng: np.random.Generator
    explore: float = 0.0
    bundle: Any = None
    scorer: Any = None
    results: list[pd.DataFrame] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def workspace(self) -> Workspace:
        return Workspace.at(self.home)

    def _timed(self, what: str, started: float) -> None:
        self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - started

    def known_results(self, now: pd.Timestamp) -> pd.DataFrame:
        """Every control result reported before ``now``: history and this strategy's own."""
        everything = pd.concat([self.replay.history_controls, *self.results], ignore_index=True)
        return everything[everything["reported_at"] < now].reset_index(drop=True)

    def refresh(self, declarations_until: pd.Timestamp, known_at: pd.Timestamp) -> None:
        """The data store and the feature tables as the deployment holds them then."""
        from data_contracts.record_store import write_records
        from features.tables import FeatureTableInputs, build_feature_tables

        started = time.perf_counter()
        items = self.replay.items
        # Rewritten whole at every refresh, as one file: the replay's store is rebuilt each week.
        write_records(
            self.workspace, "declarations", items[items["lodged_at"] < declarations_until]
        )
        write_records(self.workspace, "control-results", self.known_results(known_at))
        build_feature_tables(
            FeatureTableInputs.of(self.workspace), self.workspace.feature_tables_dir
        )
        self._timed("features", started)

    def load_champion(self) -> None:
        """The service's bundle of this workspace's champions, and a scorer over it."""
        from features.services import SERVICE_FOR_SUBJECT
        from serving.bundle import load_bundle
        from serving.config import ServingSettings
        from serving.scorer import Scorer

        features = FeatureStoreSettings(home=self.home)
        serving = ServingSettings(home=self.home, features=features)
        self.bundle = load_bundle(serving)
        reader = _PointInTimeReader(features, SERVICE_FOR_SUBJECT["declaration"])
        self.scorer = Scorer(self.bundle, {"declaration": reader}, serving)

    def models(self) -> str:
        return ",".join(
            f"{'revenue' if m.task == 'revenue' else m.area}:{m.version}"
            for m in self.bundle.models
        )

    def select(self, week: int, items: pd.DataFrame, truth: pd.DataFrame) -> Selection:
        world_week = self.schedule.first_week + week - 1
        start, end = self.replay.bounds(world_week), self.replay.bounds(world_week + 1)
        every = self.schedule.retrain_every
        if every and week > 1 and (week - 1) % every == 0:
            self.retrain(start)
        # The week's declarations arrive as it goes: each item's features are as of its day.
        self.refresh(declarations_until=end, known_at=start)
        started = time.perf_counter()
        fields = [f for f in contract_for("declarations").field_names if f in items.columns]
        scored = self.scorer.score_subject("declaration", items[fields].to_dict("records")).results
        self._timed("scoring", started)
        revenue = np.array([r["expected_revenue_eur"] for r in scored])
        areas = {a for r in scored[:1] for a in r["scores"]}
        scores = {a: np.array([r["scores"][a] for r in scored], dtype=float) for a in areas}
        return select_within_capacity(
            self.rng,
            self.unit.control_value(non_financial_probability(scores, len(scored)), revenue),
            revenue,
            np.array([r["primary_area"] for r in scored], dtype=object),
            self.unit,
            reason="model",
            explore=self.explore,
        )

    def feedback(self, week: int, results: pd.DataFrame) -> None:
        self.results.append(results)

    def retrain(self, now: pd.Timestamp) -> None:
        """Retrain on what is known at ``now``; the gate decides; serve the champion."""
        from training.promote import promote
        from training.train import train

        self.refresh(declarations_until=now, known_at=now)
        started = time.perf_counter()
        trained = train(self.training, subjects=("declaration",))
        self._timed("training", started)
        started = time.perf_counter()
        for decision in promote(self.training, [m.name for m in trained]):
            self.decisions.append({"strategy": self.name, "at": str(now), **vars(decision)})
        self._timed("gate", started)
        self.load_champion()


def training_settings(home: Path, min_positive_labels: int, seed: int) -> Any:
    """Training of a simulated deployment: half a year of history, so shorter windows than the
    defaults (made for a year of data), and no diagnostic plots on every retraining.

    The windows set how stale a retrained model is: its training rows end test + validation +
    two label gaps before the retraining (12 weeks with 28/28/14 days, 8 with 21/21/7), so a
    scheme that started 10 weeks ago would not be in them at all. A week's gap still holds
    back the rows whose outcome is reported late (audits, confirmations) until it is known.

    The gate's evidence floor scales with the shorter test window: at 5% of ~1,900 items a week
    a unit controls ~270 items in 21 days, and a champion hitting 10% of them never reaches the
    default 30 hits, so it refused every challenger for want of evidence and kept itself (seed
    8: five retrainings in a row with 25-29 hits).
    """
    from training.config import TrainingSettings

    return TrainingSettings(
        home=home,
        features=FeatureStoreSettings(home=home),
        min_positive_labels=min_positive_labels,
        test_days=21,
        validation_days=21,
        label_delay_days=7,
        gate_min_hits=20,
        burn_in_days=28,
        reference_sample_size=5_000,
        diagnostics=False,
        seed=seed,
    )


def copy_workspace(source: Path, target: Path) -> Path:
    """A copy of a trained workspace whose MLflow store points at the copy's own artifacts."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("bentoml", "service"))
    old, new = f"{source.resolve()}/", f"{target.resolve()}/"
    with closing(sqlite3.connect(target / "mlflow" / "mlflow.db")) as connection:
        for table, column in (
            ("experiments", "artifact_location"),
            ("runs", "artifact_uri"),
            ("model_versions", "storage_location"),
            ("logged_models", "artifact_location"),
        ):
            connection.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
        connection.commit()
    return target
