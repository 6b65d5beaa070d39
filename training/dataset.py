"""Training rows: controlled items, their outcomes, and their point-in-time features.

Uncontrolled items are unlabelled, not negatives: only controlled items become training rows.
Features come from the model's FeatureService as of each item's lodgement/filing time, so an
outcome recorded after that time can never leak into the row (see ``features.tables``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.codelists import RISK_AREAS
from data_contracts.dataset import read_manifest
from data_contracts.record_store import (
    digest_records,
    has_records,
    read_stored_records,
    record_location,
)
from data_contracts.workspace import Workspace
from features.model_input import ModelFeature, extra_features, model_frame, request_features
from features.retrieval import entity_frame, historical_features
from features.services import SERVICE_FOR_SUBJECT
from training.config import TrainingSettings

__all__ = [
    "EVENT_TIME",
    "SUBJECT_KEYS",
    "SUBJECT_KINDS",
    "LabelledSet",
    "data_snapshot_id",
    "item_labels",
    "load_labelled_set",
    "load_records",
    "subject_extras",
    "window_features",
]

logger = logging.getLogger(__name__)

SUBJECT_KINDS = {"declaration": "declarations", "ens": "ens"}
SUBJECT_KEYS = {"declaration": ["declaration_id", "item_number"], "ens": ["ens_id"]}
EVENT_TIME = {"declaration": "lodged_at", "ens": "filed_at"}


def data_snapshot_id(workspace: Workspace) -> str:
    """A short content id of the data store, logged with every model (which data made it)."""
    digest = hashlib.sha256()
    for kind in ("declarations", "ens", "control-results", "history", "operators"):
        if kind == "history":
            path = workspace.control_results_history_file
            if path.exists():
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
            continue
        if has_records(workspace, kind):
            # Either layout; a file is named as it always was (the same id as before).
            digest.update(record_location(workspace, kind).name.encode())
            digest_records(workspace, kind, digest)
    return digest.hexdigest()[:16]


def load_records(workspace: Workspace, subject: str) -> pd.DataFrame:
    kind = SUBJECT_KINDS[subject]
    if not has_records(workspace, kind):
        raise FileNotFoundError(
            f"{workspace.record_file(kind)}: no validated {subject} records; run "
            "`crisk validate`/ingest first"
        )
    return read_stored_records(workspace, kind)


def item_labels(records: pd.DataFrame, results: pd.DataFrame, subject: str) -> pd.DataFrame:
    """Per controlled item: one label per area, revenue recovered, when and why it was controlled.

    A result without ``item_number`` applies to every item of the declaration. An item's labels
    are known once its last control result was reported (``label_time``: ``reported_at``, or
    ``controlled_at`` for results stored before reporting times existed): a time split then
    trains only on outcomes known before its next window starts.
    """
    results = results[results["subject_type"] == subject].copy()
    keys = SUBJECT_KEYS[subject]
    items = records[keys].copy()
    items["__row"] = np.arange(len(records))
    if subject == "declaration":
        whole = results[results["item_number"].isna()].drop(columns=["item_number"])
        by_item = results[results["item_number"].notna()].copy()
        by_item["item_number"] = by_item["item_number"].astype("int64")
        joined = pd.concat(
            [
                items.merge(by_item, left_on=keys, right_on=["subject_id", "item_number"]),
                items.merge(whole, left_on="declaration_id", right_on="subject_id"),
            ],
            ignore_index=True,
        )
    else:
        joined = items.merge(results, left_on="ens_id", right_on="subject_id")
    irregular = joined["outcome"] == "irregularity"
    for area in RISK_AREAS:
        joined[f"y_{area}"] = (irregular & (joined["risk_area"] == area)).astype(int)
    joined["y_any"] = irregular.astype(int)
    if "selection_probability" not in joined:
        joined["selection_probability"] = np.nan
    joined["selection_probability"] = pd.to_numeric(
        joined["selection_probability"], errors="coerce"
    )
    controlled = pd.to_datetime(joined["controlled_at"], utc=True)
    reported = (
        joined["reported_at"] if "reported_at" in joined else pd.Series(pd.NaT, index=joined.index)
    )
    joined["known_at"] = pd.to_datetime(reported, utc=True).fillna(controlled)
    joined = joined.sort_values("controlled_at", kind="stable")
    grouped = joined.groupby("__row")
    labels = grouped.agg(
        label_time=("known_at", "max"),
        selection_reason=("selection_reason", "first"),
        # The recorded propensity of the item's first control (NaN: none recorded).
        selection_probability=("selection_probability", "first"),
        control_type=("control_type", "first"),
        revenue_recovered_eur=("revenue_recovered_eur", "sum"),
        **{f"y_{a}": (f"y_{a}", "max") for a in (*RISK_AREAS, "any")},
    )
    return labels


def subject_extras(workspace: Workspace, subject: str) -> tuple[ModelFeature, ...]:
    """The national attributes new models of ``subject`` read (the manifest's ``extra``).

    They come with imported declarations; ENS filings carry none that a mapping declares.
    """
    if subject != "declaration":
        return ()
    return extra_features(read_manifest(workspace).extra)


@dataclass
class LabelledSet:
    """Everything training needs for one subject type."""

    subject: str
    feature_service: str
    records: pd.DataFrame  # the labelled records (validated fields)
    features: pd.DataFrame  # model frame, aligned with records
    # y_<area>, revenue, label_time, selection_reason, control_type, selection_probability
    labels: pd.DataFrame
    event_time: pd.Series
    reference: pd.DataFrame  # model frame of a random sample of *all* recent items
    reference_event_time: pd.Series
    # Every record of the subject type, controlled or not, and where the labelled ones are in
    # it: what the selection propensity is estimated from (training.weights).
    population: pd.DataFrame | None = None
    labelled_rows: np.ndarray | None = None
    extras: tuple[ModelFeature, ...] = ()  # national attributes the models also read


def window_features(
    settings: TrainingSettings,
    subject: str,
    records: pd.DataFrame,
    extras: tuple[ModelFeature, ...] = (),
) -> pd.DataFrame:
    """The model frame of ``records``: point-in-time features of the subject's service, the
    request features and the national attributes ``extras``."""
    service = SERVICE_FOR_SUBJECT[subject]
    entities = entity_frame(records, subject)
    feast = historical_features(
        settings.features, service, entities, engine=settings.retrieval_engine
    )
    request = request_features(records, subject, extras)  # type: ignore[arg-type]
    return pd.DataFrame(model_frame(request, feast, subject, extras))  # type: ignore[arg-type]


def load_labelled_set(settings: TrainingSettings, subject: str) -> LabelledSet:
    """Labelled rows and a reference sample of the latest weeks, both with features."""
    workspace = settings.workspace
    records = load_records(workspace, subject).reset_index(drop=True)
    results = read_stored_records(workspace, "control-results")
    labels = item_labels(records, results, subject)
    labelled_rows = labels.index.to_numpy()
    labelled = records.iloc[labelled_rows].reset_index(drop=True)
    labels = labels.reset_index(drop=True)
    time_column = EVENT_TIME[subject]
    event_time = pd.to_datetime(records[time_column], utc=True)
    recent_from = event_time.max() - pd.Timedelta(
        days=settings.test_days + settings.validation_days
    )
    recent = np.flatnonzero((event_time >= recent_from).to_numpy())
    rng = np.random.default_rng(settings.seed)
    sample = rng.choice(
        recent, size=min(len(recent), settings.reference_sample_size), replace=False
    )
    reference_records = records.iloc[np.sort(sample)].reset_index(drop=True)
    both = pd.concat([labelled, reference_records], ignore_index=True)
    extras = subject_extras(workspace, subject)
    features = window_features(settings, subject, both, extras)
    n = len(labelled)
    logger.info("%s: %d labelled items, %d reference items", subject, n, len(reference_records))
    return LabelledSet(
        subject=subject,
        feature_service=SERVICE_FOR_SUBJECT[subject],
        records=labelled,
        features=features.iloc[:n].reset_index(drop=True),
        labels=labels,
        event_time=pd.to_datetime(labelled[time_column], utc=True).reset_index(drop=True),
        reference=features.iloc[n:].reset_index(drop=True),
        reference_event_time=pd.to_datetime(reference_records[time_column], utc=True),
        population=records,
        labelled_rows=labelled_rows,
        extras=extras,
    )
