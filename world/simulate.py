"""`crisk simulate`: the learning loop replayed week by week on the synthetic world (spec §7).

The world's last ``weeks`` weeks are replayed; everything before is history (its declarations
and the controls customs made then, each known from its ``reported_at``). Every week, each
strategy selects its controls within the same capacity, the controls' outcomes come from the
ground truth (what a control of that type finds, known after that type's delay), and the
learning strategies take them back as feedback:

- ``random``: the capacity drawn at random;
- ``rules``: the rule-based risk profiles (most profiles hit first);
- ``static``: the model trained once on the history; its features keep being refreshed from its
  own controls, the model never changes;
- ``retrained``: the same, retrained every ``retrain_every`` weeks on everything it has learnt,
  the promotion gate deciding whether the challenger serves; no exploration;
- ``retrained_explore``: the same with ``explore`` of the capacity drawn at random among all
  items, whatever their score (the service's exploration), recorded with its probability;
- ``oracle``: the control value from the ground truth (the revenue each item really hides and
  its true probabilities of the other irregularities): the best any selection can do.

The learning strategies use the real parts in-process, each in a workspace of its own under
``DIR/workspaces`` (see :mod:`world.strategies`). They share nothing but the world, so each is
replayed on its own, in a process of its own when ``processes`` > 1. Declaration items only:
they carry the revenue the comparison is about (ENS filings are left out).
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.progress import Progress, advance, quiet
from data_contracts.validate import validate_frame
from data_contracts.workspace import Workspace
from features.config import FeatureStoreSettings
from world.generate import World, WorldConfig, generate_world
from world.strategies import (
    ControlUnit,
    Fixed,
    Learner,
    Replay,
    Schedule,
    Strategy,
    WeekOutcome,
    copy_workspace,
    oracle_score,
    outcomes,
    rules_score,
    training_settings,
    week_outcome,
)

__all__ = ["STRATEGIES", "SimulationConfig", "SimulationResult", "WeekOutcome", "simulate"]

logger = logging.getLogger(__name__)

STRATEGIES = ("random", "rules", "static", "retrained", "retrained_explore", "oracle")
LEARNING = ("static", "retrained", "retrained_explore")
_KEYS = ["declaration_id", "item_number"]


@dataclass(frozen=True)
class SimulationConfig:
    """What is replayed and how.

    Attributes:
        weeks: weeks replayed (the world's last ones; the rest is history).
        capacity: share of each week's items the control units can control.
        explore: share of the capacity drawn at random by ``retrained_explore``.
        retrain_every: weeks between retrainings of the retrained strategies.
        world: the world to generate (the default world unless told otherwise).
        physical_share: share of the model-selected controls that are physical (the rest
            documentary); selections whose main area is not financial are physical.
        hit_value_eur: what a model-guided unit counts an expected irregularity worth beside
            the revenue it expects to recover (it ranks by expected revenue + this × the
            probability of an irregularity).
        min_positive_labels: training hits an area needs for a model (the demo world's level).
        seed: seed of the selections and outcomes.
        strategies: which strategies to run.
        processes: strategies replayed at once (each learning strategy in its own process).
    """

    weeks: int = 26
    capacity: float = 0.05
    explore: float = 0.10
    retrain_every: int = 4
    world: WorldConfig = field(default_factory=WorldConfig)
    physical_share: float = 0.3
    hit_value_eur: float = 500.0
    min_positive_labels: int = 50
    seed: int = 7
    strategies: tuple[str, ...] = STRATEGIES
    processes: int = 3

    def __post_init__(self) -> None:
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"strategies: unknown {unknown}; expected some of {STRATEGIES}")
        if not 0 < self.capacity < 1:
            raise ValueError(f"capacity: {self.capacity} must be a share between 0 and 1")
        if not 0 <= self.explore < 1:
            raise ValueError(f"explore: {self.explore} must be a share, at least 0 and below 1")
        if self.weeks < 1 or self.weeks > self.world.weeks - 20:
            raise ValueError(
                f"weeks: {self.weeks} replayed of a {self.world.weeks}-week world leaves "
                f"{self.world.weeks - self.weeks} weeks of history; at least 20 are needed"
            )
        if self.retrain_every < 1:
            raise ValueError("retrain_every: at least 1 week")
        if self.processes < 1:
            raise ValueError("processes: at least 1")

    @property
    def first_week(self) -> int:
        """The world week the replay starts with (0-based)."""
        return self.world.weeks - self.weeks

    @property
    def shift_week(self) -> int | None:
        """The replayed week (1-based) the planted fraud scheme starts in, if inside."""
        start = self.world.shift.start_week
        if start is None or not self.first_week <= start < self.world.weeks:
            return None
        return start - self.first_week + 1

    @property
    def control_unit(self) -> ControlUnit:
        return ControlUnit(self.capacity, self.physical_share, self.hit_value_eur)


@dataclass
class SimulationResult:
    config: SimulationConfig
    weeks: list[WeekOutcome]
    decisions: list[dict[str, Any]]  # every gate decision of the retrained strategies
    seconds: float
    seconds_by_part: dict[str, dict[str, float]] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([vars(w) for w in self.weeks])


def _prepare(world: World, config: SimulationConfig) -> Replay:
    """Valid, current items (validated by the contract, amendments superseding) and truth."""
    valid = validate_frame(world.declarations, "declarations", source="synthetic world").valid
    items = valid.drop_duplicates(_KEYS, keep="last").sort_values("lodged_at", kind="stable")
    items = items.reset_index(drop=True)
    truth = world.ground_truth[world.ground_truth["subject_type"] == "declaration"]
    truth = truth.assign(item_number=truth["item_number"].astype("int64"))
    aligned = items[_KEYS].merge(
        truth, left_on=_KEYS, right_on=["subject_id", "item_number"], how="left"
    )
    start = pd.Timestamp(config.world.start, tz="UTC")
    week = ((items["lodged_at"] - start).dt.days // 7).to_numpy()
    history_ids = set(items.loc[week < config.first_week, "declaration_id"])
    controls = world.control_results
    history = controls[
        (controls["subject_type"] == "declaration") & controls["subject_id"].isin(history_ids)
    ]
    return Replay(
        items=items,
        truth=aligned.reset_index(drop=True),
        week=week,
        history_controls=history.assign(selection_probability=np.nan).reset_index(drop=True),
        operators=world.operators,
        profiles=world.risk_profiles,
        start=start,
    )


def _history_workspace(replay: Replay, config: SimulationConfig, home: Path) -> Path:
    """The deployment as it stands when the replay starts: history, features, first models."""
    from features.store import apply_definitions
    from training.train import train

    workspace = Workspace.at(home).ensure()
    replay.operators.to_parquet(workspace.data_dir / "operators.parquet", index=False)
    workspace.world_dir.mkdir(parents=True, exist_ok=True)
    (workspace.world_dir / "risk_profiles.json").write_text(replay.profiles.model_dump_json())
    apply_definitions(FeatureStoreSettings(home=home))
    settings = training_settings(home, config.min_positive_labels, config.seed)
    learner = Learner(
        "history", home, replay, config.control_unit, Schedule(config.first_week, 0),
        settings, np.random.default_rng(0),
    )  # fmt: skip
    start = replay.bounds(config.first_week)
    learner.refresh(declarations_until=start, known_at=start)
    if not train(settings, subjects=("declaration",)):
        raise ValueError(
            f"the world's {config.first_week} weeks of history hold too few labelled hits to "
            f"train a first model (at least {config.min_positive_labels} in an area's training "
            "window): generate a larger world or replay fewer weeks"
        )
    return home


@dataclass(frozen=True)
class _Job:
    """One strategy's replay, as a worker process receives it."""

    name: str
    index: int
    config: SimulationConfig
    replay_dir: Path
    root: Path


def _strategy(job: _Job, replay: Replay) -> Strategy:
    config = job.config
    rng = np.random.default_rng([config.seed, job.index])
    unit = config.control_unit
    if job.name not in LEARNING:
        rank = {
            "random": lambda items, truth: np.zeros(len(items)),
            "rules": rules_score(replay),
            "oracle": oracle_score(unit),
        }[job.name]
        return Fixed(job.name, rank, unit, rng)
    from features.store import apply_definitions

    home = copy_workspace(job.root / "history", job.root / job.name)
    # The copied Feast registry still names the history's tables: point it at its own.
    apply_definitions(FeatureStoreSettings(home=home))
    learner = Learner(
        job.name, home, replay, unit,
        Schedule(config.first_week, 0 if job.name == "static" else config.retrain_every),
        training_settings(home, config.min_positive_labels, config.seed), rng,
        explore=config.explore if job.name == "retrained_explore" else 0.0,
    )  # fmt: skip
    learner.load_champion()
    return learner


def _replay_strategy(job: _Job) -> tuple[list[WeekOutcome], list[dict[str, Any]], dict[str, float]]:
    """Replay every week with one strategy; its outcomes, gate decisions and timings."""
    replay = Replay.load(job.replay_dir)
    strategy = _strategy(job, replay)
    weeks = []
    for week in range(1, job.config.weeks + 1):
        items, truth = replay.week_of(job.config.first_week + week - 1)
        selection = strategy.select(week, items, truth)
        rng = np.random.default_rng([job.config.seed, 1000 + week, job.index])
        results = outcomes(rng, items, truth, selection, prefix=f"S{job.index}W{week:02d}-")
        strategy.feedback(week, results)
        weeks.append(week_outcome(job.name, week, results, truth, selection, strategy.models()))
        logger.info("%s week %d: %d hits", job.name, week, weeks[-1].hits)
    if isinstance(strategy, Learner):
        return weeks, strategy.decisions, strategy.seconds
    return weeks, [], {}


def simulate(
    config: SimulationConfig,
    out_dir: Path,
    progress: Progress = quiet,
    world: World | None = None,
) -> SimulationResult:
    """Replay the world's last ``config.weeks`` weeks with every strategy.

    Writes the replay's inputs and the strategies' workspaces under ``out_dir/workspaces`` (the
    report files are written by :func:`world.simulate_report.write_outputs`).
    """
    began = time.perf_counter()
    progress(f"generating the world ({config.world.declarations:,} declaration items)")
    world = world if world is not None else generate_world(config.world, progress)
    replay = _prepare(world, config)
    root = Path(out_dir) / "workspaces"
    if root.exists():
        shutil.rmtree(root)
    replay_dir = replay.save(root / "replay")
    if any(name in LEARNING for name in config.strategies):
        progress(f"training the first models on {config.first_week} weeks of history")
        _history_workspace(replay, config, root / "history")
    jobs = [_Job(n, k, config, replay_dir, root) for k, n in enumerate(config.strategies)]
    # The retrained strategies take longest: started first, the static one fills in after.
    learning = sorted(
        (job for job in jobs if job.name in LEARNING), key=lambda job: job.name == "static"
    )
    fixed = [job for job in jobs if job.name not in LEARNING]
    progress(
        f"replaying {config.weeks} weeks: {', '.join(config.strategies)} "
        f"({len(learning)} learning, {min(config.processes, max(1, len(learning)))} at a time)"
    )
    done: dict[str, tuple[list[WeekOutcome], list[dict[str, Any]], dict[str, float]]] = {}
    task = f"replaying {config.weeks} weeks"
    advance(progress, task, 0, len(jobs))
    if config.processes > 1 and len(learning) > 1:
        # Spawned, not forked: LightGBM's OpenMP threads do not survive a fork.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(config.processes, mp_context=context) as pool:
            futures = {job.name: pool.submit(_replay_strategy, job) for job in learning}
            for job in fixed:
                done[job.name] = _replay_strategy(job)
                advance(progress, task, len(done), len(jobs))
            for name, future in futures.items():
                done[name] = future.result()
                advance(progress, task, len(done), len(jobs))
    else:
        for job in [*fixed, *learning]:
            done[job.name] = _replay_strategy(job)
            advance(progress, task, len(done), len(jobs))
    weeks = sorted(
        (w for name in config.strategies for w in done[name][0]),
        key=lambda w: (w.week, config.strategies.index(w.strategy)),
    )
    decisions = [d for name in config.strategies for d in done[name][1]]
    timings = {name: done[name][2] for name in config.strategies if done[name][2]}
    return SimulationResult(config, weeks, decisions, time.perf_counter() - began, timings)
