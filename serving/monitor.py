"""Drift monitoring: is the traffic still the one the champions were trained for (`crisk monitor`)?

Three views, from what a deployment has:

- **feature drift**: the population stability index (PSI) of every model feature between the
  champion's reference sample (a random sample of the training data's latest weeks, shipped in
  the bundle) and the recent traffic the audit log recorded (the features each item was scored
  with). Numeric features are cut at the reference's deciles, categories keep their own bins (the
  reference's most frequent ones, the rest together), missing values are a bin of their own;
- **score drift**: the PSI of the overall probability, the reference scored by the same
  champions, and the share of recent items above the selection threshold against the capacity;
- **hit rate by week on random controls**: the only unbiased estimate of how often irregularity
  occurs, with Wilson intervals. Without random controls (exploration switched off) every hit rate
  is measured on what models, rules and officers chose, and the report says that it is biased.

PSI reads as usual: below 0.1 stable, 0.1-0.25 moderate, above 0.25 a shift (thresholds are
settings of the report). Nothing here decides anything: it flags, and logs (the CLI logs the
report to MLflow).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from serving.bundle import Bundle, overall_probability

__all__ = [
    "DriftReport",
    "DriftThresholds",
    "drift_report",
    "hit_rates_by_week",
    "population_stability",
    "wilson_interval",
]

_EPSILON = 1e-4  # floor of a bin's share: an empty bin must not make the index infinite
_MISSING = "__missing__"
_OTHER = "__other__"


@dataclass(frozen=True)
class DriftThresholds:
    feature_psi: float = 0.25
    score_psi: float = 0.25
    min_items: int = 200  # fewer recent items: no index (too noisy to read)
    max_categories: int = 20


def population_stability(reference: np.ndarray, recent: np.ndarray, categorical: bool) -> float:
    """PSI = Σ (recent − reference share) × ln(recent / reference share) over the bins."""
    if categorical:
        ref = pd.Series(reference, dtype=object).where(pd.notna(reference), _MISSING).astype(str)
        new = pd.Series(recent, dtype=object).where(pd.notna(recent), _MISSING).astype(str)
        kept = set(ref.value_counts().index[: DriftThresholds.max_categories])
        ref = ref.where(ref.isin(kept), _OTHER)
        new = new.where(new.isin(kept), _OTHER)
        bins = sorted(set(ref) | set(new))
        expected = ref.value_counts(normalize=True).reindex(bins, fill_value=0).to_numpy()
        actual = new.value_counts(normalize=True).reindex(bins, fill_value=0).to_numpy()
    else:
        ref_values = np.asarray(reference, dtype=float)
        new_values = np.asarray(recent, dtype=float)
        finite = ref_values[np.isfinite(ref_values)]
        edges: np.ndarray = (
            np.unique(np.quantile(finite, np.linspace(0, 1, 11)[1:-1]))
            if len(finite)
            else np.zeros(0)
        )

        def shares(values: np.ndarray) -> np.ndarray:
            present = np.isfinite(values)
            counts = np.bincount(
                np.searchsorted(edges, values[present], side="right"), minlength=len(edges) + 1
            )
            total = max(1, len(values))
            return np.append(counts / total, (~present).sum() / total)

        expected, actual = shares(ref_values), shares(new_values)
    expected = np.maximum(expected, _EPSILON)
    actual = np.maximum(actual, _EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sensible at 0 hits or few items)."""
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # Rounding must not put the observed rate outside its own interval (at 0 or n hits).
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def hit_rates_by_week(results: pd.DataFrame, weeks: int) -> pd.DataFrame:
    """Per week (of ``controlled_at``) of the last ``weeks``: controls, hits and hit rate with
    its interval, for random controls and for all controls."""
    if results.empty:
        return pd.DataFrame(columns=["week", "set", "controls", "hits", "hit_rate", "low", "high"])
    controlled = pd.to_datetime(results["controlled_at"], utc=True)
    week = controlled.dt.tz_convert(None).dt.to_period("W-SUN").dt.start_time
    frame = results.assign(week=week.to_numpy())
    # One control per item and control: several areas found are one hit.
    frame["hit"] = frame["outcome"] == "irregularity"
    per_control = frame.groupby(["week", "control_id"], as_index=False).agg(
        hit=("hit", "max"), reason=("selection_reason", "first")
    )
    last = per_control["week"].max()
    per_control = per_control[per_control["week"] > last - pd.Timedelta(weeks=weeks)]
    rows = []
    for label, part in (("random_controls", per_control[per_control["reason"] == "random"]),
                        ("all_controls", per_control)):  # fmt: skip
        for when, group in part.groupby("week"):
            n, hits = len(group), int(group["hit"].sum())
            low, high = wilson_interval(hits, n)
            rows.append((when, label, n, hits, hits / n, low, high))
    return pd.DataFrame(
        rows, columns=["week", "set", "controls", "hits", "hit_rate", "low", "high"]
    )


@dataclass
class DriftReport:
    bundle: str
    window: dict[str, str]
    items: dict[str, int]  # recent scored items per subject type
    features: dict[str, dict[str, float]]  # subject -> feature -> PSI
    scores: dict[str, dict[str, float]]  # subject -> {psi, share_selected, capacity}
    hit_rates: pd.DataFrame
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        rates = self.hit_rates.assign(week=self.hit_rates["week"].astype(str))
        return {
            "bundle": self.bundle,
            "window": self.window,
            "items": self.items,
            "features": self.features,
            "scores": self.scores,
            "hit_rates": rates.to_dict("records"),
            "flags": self.flags,
            "warnings": self.warnings,
        }


def _recent_columns(entries: Sequence[Mapping[str, Any]], subject: str) -> pd.DataFrame:
    """The features and scores of the recent items of ``subject`` (one row per item)."""
    frames = []
    for entry in entries:
        if entry.get("subject_type") != subject:
            continue
        features = pd.DataFrame(entry["features"])
        features["__overall"] = [item["overall"] for item in entry["items"]]
        features["__selected"] = [item["channel"] != "green" for item in entry["items"]]
        frames.append(features)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _score_drift(
    bundle: Bundle, reference: pd.DataFrame, recent: pd.DataFrame, capacity: float, subject: str
) -> dict[str, float]:
    models = bundle.classifiers(subject)
    expected = overall_probability([m.probability(m.encoder(reference)) for m in models])
    return {
        "psi": population_stability(expected, recent["__overall"].to_numpy(float), False),
        "share_selected": float(recent["__selected"].mean()),
        "capacity": capacity,
        "mean_overall_reference": float(np.mean(expected)),
        "mean_overall_recent": float(recent["__overall"].mean()),
    }


def drift_report(
    bundle: Bundle,
    references: Mapping[str, pd.DataFrame],
    entries: Sequence[Mapping[str, Any]],
    results: pd.DataFrame,
    *,
    capacity: float,
    random_rate: float,
    days: int,
    weeks: int = 8,
    thresholds: DriftThresholds = DriftThresholds(),
) -> DriftReport:
    """Compare the recent traffic (audit ``entries``) with the champions' reference samples,
    and the hit rates of the last ``weeks`` weeks of control ``results``."""
    now = datetime.now(UTC)
    report = DriftReport(
        bundle=bundle.tag,
        window={"from": (now - timedelta(days=days)).isoformat(), "to": now.isoformat()},
        items={},
        features={},
        scores={},
        hit_rates=hit_rates_by_week(results, weeks),
    )
    for subject, reference in references.items():
        recent = _recent_columns(entries, subject)
        report.items[subject] = len(recent)
        if len(recent) < thresholds.min_items:
            report.warnings.append(
                f"{subject}: {len(recent)} items scored in the last {days} days; at least "
                f"{thresholds.min_items} are needed for a stability index"
            )
            continue
        kinds = {f: m.spec for m in bundle.classifiers(subject) for f in m.spec["features"]}
        psi = {}
        for name in sorted(set(reference.columns) & set(recent.columns) & set(kinds)):
            categorical = name in kinds[name].get("vocabularies", {})
            psi[name] = round(
                population_stability(
                    reference[name].to_numpy(), recent[name].to_numpy(), categorical
                ),
                4,
            )
        report.features[subject] = psi
        report.flags.extend(
            f"{subject}: feature {name} shifted (PSI {value:.3f})"
            for name, value in sorted(psi.items(), key=lambda kv: -kv[1])
            if value > thresholds.feature_psi
        )
        scores = _score_drift(bundle, reference, recent, capacity, subject)
        report.scores[subject] = scores
        if scores["psi"] > thresholds.score_psi:
            report.flags.append(f"{subject}: score distribution shifted (PSI {scores['psi']:.3f})")
        if scores["share_selected"] > 1.5 * capacity or scores["share_selected"] < 0.5 * capacity:
            report.flags.append(
                f"{subject}: {scores['share_selected']:.1%} of recent items selected against a "
                f"capacity of {capacity:.1%}: the thresholds no longer fit the traffic"
            )
    _hit_rate_findings(report, random_rate, weeks)
    return report


def _hit_rate_findings(report: DriftReport, random_rate: float, weeks: int) -> None:
    rates = report.hit_rates
    random_rows = rates[rates["set"] == "random_controls"]
    if random_rows.empty:
        why = "exploration is off (random_rate 0)" if random_rate == 0 else "none reported yet"
        report.warnings.append(
            f"no random controls in the last {weeks} weeks ({why}): every hit rate here is "
            "measured on controls that models, rules or officers chose, so hit-rate estimates "
            "are biased (they overstate how often irregularities occur); keep a random share "
            "(CRISK_SERVE_RANDOM_RATE) for an unbiased estimate"
        )
        return
    if len(random_rows) >= 4:
        half = len(random_rows) // 2
        earlier, latest = random_rows.iloc[:half], random_rows.iloc[half:]
        p_early = earlier["hits"].sum() / earlier["controls"].sum()
        low, high = wilson_interval(int(latest["hits"].sum()), int(latest["controls"].sum()))
        if not low <= p_early <= high:
            report.flags.append(
                f"random-control hit rate moved: {p_early:.3f} in the earlier weeks, "
                f"[{low:.3f}, {high:.3f}] (95%) in the latest {len(latest)}"
            )
