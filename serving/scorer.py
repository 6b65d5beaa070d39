"""Scoring: validated records in, per-area probabilities, channel, reasons and audit entries out.

This is the whole request path without HTTP, so it can be tested and benchmarked directly:
contract warnings → entity keys → online features (cached) → the model input contract shared
with training → every area model of the bundle → overall probability and expected revenue →
channel within capacity → TreeSHAP reasons for every item that is not green (or on request).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from data_contracts.signals import risk_signals
from features.model_input import ModelFeature, features_from_spec, model_frame, request_features
from features.retrieval import entity_columns
from serving.audit import new_scoring_ids
from serving.bundle import Bundle, LoadedModel, overall_probability
from serving.channels import (
    ChannelPolicy,
    assign_channels,
    random_draw,
    ranking_quantiles,
    selections,
    threshold_selected,
)
from serving.config import ServingSettings
from serving.reasons import GROUP_FEATURE, top_reasons

__all__ = ["FeatureReader", "ScoreOutcome", "Scorer"]

logger = logging.getLogger(__name__)

_KIND = {"declaration": "declarations", "ens": "ens"}
_ID = {"declaration": "declaration_id", "ens": "ens_id"}
_TIME = {"declaration": "lodged_at", "ens": "filed_at"}
# Features whose absence means the entity was never seen: a cold start, reported as a warning.
_COLD_START = {
    "declaration": {
        "importer_declarations_365d": "cold_start_importer",
        "seller_declarations_365d": "cold_start_seller",
        "co_observations": "no_price_baseline",
    },
    "ens": {
        "carrier_filings_90d": "cold_start_carrier",
        "importer_declarations_365d": "cold_start_consignee",
    },
}


class FeatureReader(Protocol):
    def get(self, entities: Mapping[str, Any]) -> Mapping[str, Any]: ...


@dataclass
class ScoreOutcome:
    """Response items in request order, and the audit log entries (one per subject type)."""

    results: list[dict[str, Any]]
    audit: list[tuple[dict[str, Any], list[dict[str, Any]]]]


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _audit_column(values: Any) -> Any:
    """A column as the audit log's JSON encoder takes it: numeric arrays as they are (NaN is
    written as null), anything else as a list of plain values."""
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return np.ascontiguousarray(array)
    return [v if type(v) is str or v is None else _clean(v) for v in array.tolist()]


class Scorer:
    """Scores batches with one bundle; feature readers per subject (None: store unavailable)."""

    def __init__(
        self,
        bundle: Bundle,
        readers: Mapping[str, FeatureReader | None],
        settings: ServingSettings,
    ) -> None:
        self.bundle = bundle
        self.readers = dict(readers)
        self.settings = settings
        # subject -> why its feature store failed on the last request (cleared when it answers)
        self._feature_failures: dict[str, str] = {}
        self.policies: dict[str, ChannelPolicy] = {}
        self.area_means: dict[str, dict[str, float]] = {}
        # National attributes the bundle's models read from a request's `extra` map.
        self.extras: dict[str, tuple[ModelFeature, ...]] = {}
        for model in bundle.models:
            known = {f.name: f for f in self.extras.get(model.subject, ())}
            known.update({f.name: f for f in features_from_spec(model.spec)})
            self.extras[model.subject] = tuple(known.values())
        for subject, quantiles in bundle.quantiles.items():
            ranking, hit_value = ranking_quantiles(quantiles, settings.hit_value_eur)
            self.policies[subject] = ChannelPolicy.from_quantiles(
                ranking,
                quantiles.get("revenue"),
                capacity=settings.control_capacity,
                random_rate=settings.random_rate,
                physical_share=settings.physical_share,
                post_release_share=settings.post_release_share,
                hit_value_eur=hit_value,
            )
            self.area_means[subject] = dict(quantiles.get("area_mean", {}))

    def _features(
        self, subject: str, records: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], list[str]]:
        entities = entity_columns(records, subject)
        reader = self.readers.get(subject)
        if reader is None:
            # No feature store: every Feast feature is missing (cold-start values), and said so.
            return entities, ["features_unavailable"]
        try:
            features = reader.get(entities)
        except Exception as error:  # a store lost after start: score on, with cold starts
            problem = f"feature store unavailable ({type(error).__name__}: {error})"[:300]
            if self._feature_failures.get(subject) != problem:
                logger.warning("%s: scoring %s with cold-start features", problem, subject)
            self._feature_failures[subject] = problem
            return entities, ["features_unavailable"]
        if self._feature_failures.pop(subject, None) is not None:
            logger.warning("feature store answers again for %s", subject)
        return features, []

    def feature_problem(self) -> str | None:
        """Why the feature store failed on the last request of some subject (None: it answers)."""
        return next(iter(self._feature_failures.values()), None)

    def score_subject(
        self, subject: str, items: Sequence[Mapping[str, Any]], explain: bool = False
    ) -> ScoreOutcome:
        if not items:
            return ScoreOutcome([], [])
        classifiers = self.bundle.classifiers(subject)
        if not classifiers:
            raise LookupError(f"no {subject} model is being served")
        names = list(items[0])
        records: dict[str, Any] = {}
        for name in names:
            listed = [item.get(name) for item in items]
            if all(type(v) is float for v in listed):
                records[name] = np.array(listed, dtype=np.float64)  # numeric paths stay vectorised
                continue
            values = np.empty(len(items), dtype=object)
            values[:] = listed
            records[name] = values
        n = len(items)
        signals = risk_signals(records, _KIND[subject])
        feast, general_warnings = self._features(subject, records)
        extras = self.extras.get(subject, ())
        request = request_features({**records, **signals}, subject, extras)  # type: ignore[arg-type]
        frame = model_frame(request, feast, subject, extras)  # type: ignore[arg-type]

        matrices: dict[Any, np.ndarray] = {}

        def matrix_for(model: LoadedModel) -> np.ndarray:
            # Models trained together share inputs: encode once per distinct input contract.
            if model.encoder.key not in matrices:
                matrices[model.encoder.key] = model.encoder(frame)
            return matrices[model.encoder.key]

        threads = self.settings.predict_threads
        scores = {m.area: m.probability(matrix_for(m), threads) for m in classifiers}
        overall = overall_probability(list(scores.values()))
        revenue_model = self.bundle.revenue(subject)
        revenue = (
            revenue_model.probability(matrix_for(revenue_model), threads)
            if revenue_model is not None
            else np.zeros(n)
        )
        areas = list(scores)
        means = self.area_means.get(subject, {})
        lift = np.column_stack([scores[a] / max(means.get(a, 0.0), 1e-6) for a in areas])
        primary = np.array(areas, dtype=object)[np.argmax(lift, axis=1)]
        scoring_ids = new_scoring_ids(n)
        policy = self.policies[subject]
        other_areas = [scores[a] for a in areas if a != "financial"]
        non_financial = overall_probability(other_areas) if other_areas else np.zeros(n)
        value = policy.selection_value(overall, non_financial, revenue)
        channel, random_selection = assign_channels(
            value, primary, revenue, random_draw(scoring_ids), policy
        )
        selection = selections(
            threshold_selected(value, revenue, policy), random_selection, policy.random_rate
        )

        need_reasons = np.flatnonzero((channel != "green") | explain)
        reasons: dict[int, list[dict[str, Any]]] = {}
        by_model = {m.area: m for m in classifiers}
        for area in np.unique(primary[need_reasons]) if len(need_reasons) else []:
            rows = need_reasons[primary[need_reasons] == area]
            model = by_model[str(area)]
            contributions = model.booster.predict(
                matrix_for(model)[rows], pred_contrib=True, num_threads=threads
            )
            groups = frame.get(GROUP_FEATURE)
            for j, row in enumerate(rows):
                row_values = [_clean(frame[name][row]) for name in model.spec["features"]]
                reasons[int(row)] = top_reasons(
                    contributions[j],
                    model.spec["features"],
                    row_values,
                    model.spec["labels"],
                    str(area),
                    k=self.settings.top_reasons,
                    profile=model.profile,
                    group=None if groups is None else _clean(groups[row]),
                    calibration=model.spec["calibration"],
                )

        cold = _COLD_START.get(subject, {})
        versions = {m.area: m.ref for m in classifiers}
        if revenue_model is not None:
            versions["revenue"] = revenue_model.ref
        feature_service = self.bundle.feature_service(subject)
        thresholds = {
            "select": policy.select_threshold,
            "red": policy.red_threshold,
            "revenue": policy.revenue_threshold,
            "random_rate": policy.random_rate,
        }
        if policy.hit_value_eur is not None:
            thresholds["hit_value_eur"] = policy.hit_value_eur
        now = datetime.now(UTC).isoformat()
        results: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        subject_ids = [str(v) for v in records[_ID[subject]]]
        item_numbers: list[Any] = (
            list(records["item_number"]) if subject == "declaration" else [None] * n
        )
        event_times = [str(v) for v in records[_TIME[subject]]]
        frame_columns = list(frame)
        # Plain Python values once per column: per-item numpy scalars cost more than the scoring.
        cold_flags = [
            (warning, np.isnan(np.asarray(frame[feature], dtype=float)).tolist())
            for feature, warning in cold.items()
            if feature in frame
        ]
        area_scores = {a: np.round(scores[a], 6).tolist() for a in areas}
        overall_list = np.round(overall, 6).tolist()
        revenue_list = np.round(revenue, 2).tolist()
        channel_list = [str(c) for c in channel]
        random_list = random_selection.tolist()
        primary_list = [str(p) for p in primary]
        for i in range(n):
            warnings = list(signals["warnings"][i]) + general_warnings
            warnings.extend(warning for warning, missing in cold_flags if missing[i])
            result = {
                "subject_type": subject,
                "subject_id": subject_ids[i],
                "item_number": None if item_numbers[i] is None else int(item_numbers[i]),
                "scores": {a: area_scores[a][i] for a in areas},
                "overall": overall_list[i],
                "expected_revenue_eur": revenue_list[i],
                "channel": channel_list[i],
                "random_selection": random_list[i],
                "selection": selection[i],
                "primary_area": primary_list[i],
                "reasons": reasons.get(i, []),
                "warnings": warnings,
                "model_version": versions,
                "feature_service": feature_service,
                "scoring_id": scoring_ids[i],
            }
            results.append(result)
            entries.append({**result, "event_time": event_times[i]})
        # Inputs and features are stored by column (an item reads its position in each): far
        # cheaper to write than a dictionary per item, and the same information.
        header = {
            "created_at": now,
            "subject_type": subject,
            "bundle": self.bundle.tag,
            "thresholds": thresholds,
            "inputs": {name: _audit_column(records[name]) for name in names},
            "features": {name: _audit_column(frame[name]) for name in frame_columns},
        }
        return ScoreOutcome(results, [(header, entries)])

    def score(
        self,
        declarations: Sequence[Mapping[str, Any]],
        ens: Sequence[Mapping[str, Any]],
        explain: bool = False,
    ) -> ScoreOutcome:
        first = self.score_subject("declaration", declarations, explain)
        second = self.score_subject("ens", ens, explain)
        return ScoreOutcome(first.results + second.results, first.audit + second.audit)
