"""Scoring: validated records in, per-area probabilities, channel, reasons and audit entries out.

This is the whole request path without HTTP, so it can be tested and benchmarked directly:
contract warnings → entity keys → online features (cached) → the model input contract shared
with training → every area model of the bundle → overall probability and expected revenue →
channel within capacity → TreeSHAP reasons for every item that is not green (or on request).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from data_contracts.signals import risk_signals
from features.model_input import model_frame, request_features
from features.retrieval import entity_columns
from serving.bundle import Bundle, LoadedModel, overall_probability
from serving.channels import ChannelPolicy, assign_channels, random_draw
from serving.config import ServingSettings
from serving.reasons import top_reasons

__all__ = ["FeatureReader", "ScoreOutcome", "Scorer", "explain_entry"]

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
    results: list[dict[str, Any]]
    audit_entries: list[dict[str, Any]]


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


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
        self.policies: dict[str, ChannelPolicy] = {}
        self.area_means: dict[str, dict[str, float]] = {}
        for subject, quantiles in bundle.quantiles.items():
            self.policies[subject] = ChannelPolicy.from_quantiles(
                quantiles["overall"],
                quantiles.get("revenue"),
                capacity=settings.control_capacity,
                random_rate=settings.random_rate,
                physical_share=settings.physical_share,
                post_release_share=settings.post_release_share,
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
        return reader.get(entities), []

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
            values = np.empty(len(items), dtype=object)
            values[:] = [item.get(name) for item in items]
            records[name] = values
        n = len(items)
        signals = risk_signals(records, _KIND[subject])
        feast, general_warnings = self._features(subject, records)
        frame = model_frame(request_features({**records, **signals}, subject), feast, subject)  # type: ignore[arg-type]

        matrices: dict[Any, np.ndarray] = {}

        def matrix_for(model: LoadedModel) -> np.ndarray:
            # Models trained together share inputs: encode once per distinct input contract.
            if model.encoder.key not in matrices:
                matrices[model.encoder.key] = model.encoder(frame)
            return matrices[model.encoder.key]

        scores = {m.area: m.probability(matrix_for(m)) for m in classifiers}
        overall = overall_probability(list(scores.values()))
        revenue_model = self.bundle.revenue(subject)
        revenue = (
            revenue_model.probability(matrix_for(revenue_model))
            if revenue_model is not None
            else np.zeros(n)
        )
        areas = list(scores)
        means = self.area_means.get(subject, {})
        lift = np.column_stack([scores[a] / max(means.get(a, 0.0), 1e-6) for a in areas])
        primary = np.array(areas, dtype=object)[np.argmax(lift, axis=1)]
        scoring_ids = [uuid.uuid4().hex for _ in range(n)]
        policy = self.policies[subject]
        channel, random_selection = assign_channels(
            overall, primary, revenue, random_draw(scoring_ids), policy
        )

        need_reasons = np.flatnonzero((channel != "green") | explain)
        reasons: dict[int, list[dict[str, Any]]] = {}
        by_model = {m.area: m for m in classifiers}
        for area in np.unique(primary[need_reasons]) if len(need_reasons) else []:
            rows = need_reasons[primary[need_reasons] == area]
            model = by_model[str(area)]
            contributions = model.booster.predict(matrix_for(model)[rows], pred_contrib=True)
            for j, row in enumerate(rows):
                row_values = [_clean(frame[name][row]) for name in model.spec["features"]]
                reasons[int(row)] = top_reasons(
                    contributions[j],
                    model.spec["features"],
                    row_values,
                    model.spec["labels"],
                    str(area),
                    k=self.settings.top_reasons,
                )

        cold = _COLD_START.get(subject, {})
        versions = {m.area: m.ref for m in classifiers}
        if revenue_model is not None:
            versions["revenue"] = revenue_model.ref
        feature_service = self.bundle.feature_service(subject)
        now = datetime.now(UTC).isoformat()
        results, entries = [], []
        subject_ids = [str(v) for v in records[_ID[subject]]]
        item_numbers: list[Any] = (
            list(records["item_number"]) if subject == "declaration" else [None] * n
        )
        event_times = [str(v) for v in records[_TIME[subject]]]
        frame_columns = list(frame)
        for i in range(n):
            warnings = list(signals["warnings"][i]) + list(general_warnings)
            for feature, warning in cold.items():
                if feature in frame and not np.isfinite(frame[feature][i]):
                    warnings.append(warning)
            result = {
                "subject_type": subject,
                "subject_id": subject_ids[i],
                "item_number": None if item_numbers[i] is None else int(item_numbers[i]),
                "scores": {a: round(float(scores[a][i]), 6) for a in areas},
                "overall": round(float(overall[i]), 6),
                "expected_revenue_eur": round(float(revenue[i]), 2),
                "channel": str(channel[i]),
                "random_selection": bool(random_selection[i]),
                "primary_area": str(primary[i]),
                "reasons": reasons.get(i, []),
                "warnings": warnings,
                "model_version": versions,
                "feature_service": feature_service,
                "scoring_id": scoring_ids[i],
            }
            results.append(result)
            entries.append(
                {
                    **result,
                    "created_at": now,
                    "event_time": event_times[i],
                    "bundle": self.bundle.tag,
                    "input": {k: _clean(v) for k, v in items[i].items()},
                    "features": {c: _clean(frame[c][i]) for c in frame_columns},
                    "thresholds": {
                        "select": policy.select_threshold,
                        "red": policy.red_threshold,
                        "revenue": policy.revenue_threshold,
                    },
                }
            )
        return ScoreOutcome(results, entries)

    def score(
        self,
        declarations: Sequence[Mapping[str, Any]],
        ens: Sequence[Mapping[str, Any]],
        explain: bool = False,
    ) -> ScoreOutcome:
        first = self.score_subject("declaration", declarations, explain)
        second = self.score_subject("ens", ens, explain)
        return ScoreOutcome(
            first.results + second.results, first.audit_entries + second.audit_entries
        )


def explain_entry(bundle: Bundle, entry: Mapping[str, Any], k: int = 5) -> list[dict[str, Any]]:
    """Reasons for an audited score, recomputed from the features it recorded (same bundle)."""
    subject = entry["subject_type"]
    area = entry.get("primary_area")
    model = next((m for m in bundle.classifiers(subject) if m.area == area), None)
    if model is None:
        raise LookupError(f"bundle {bundle.tag} has no {subject}/{area} model")
    frame = {
        name: np.array([entry["features"].get(name)], dtype=object)
        for name in model.spec["features"]
    }
    matrix = model.encoder(frame)
    contributions = model.booster.predict(matrix, pred_contrib=True)[0]
    values = [entry["features"].get(name) for name in model.spec["features"]]
    return top_reasons(
        contributions, model.spec["features"], values, model.spec["labels"], str(area), k=k
    )
