"""The champion bundle: every area model the service scores with, resolved by registry alias.

At start the service asks the MLflow registry for the ``champion`` of each registered model,
copies their artifacts (booster, spec, reference sample) into one BentoML model (``crisk-bundle``,
labelled with the champion versions) and loads it. If the registry cannot be reached, the newest
bundle already in the BentoML store is served instead, and ``/readyz`` says so. The service never
calls the registry at request time.

Several MLflow models make one bundle, so the bundle is written with ``bentoml.models.create``
rather than ``bentoml.mlflow.import_model`` (which imports one model).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.model_input import Encoder, calibrate, expected_revenue
from serving.config import ServingSettings
from serving.reasons import ReferenceProfile

__all__ = [
    "BUNDLE_NAME",
    "Bundle",
    "LoadedModel",
    "bundle_folder",
    "bundle_versions",
    "load_bundle",
    "overall_probability",
    "record_serving_bundle",
    "reference_sample",
    "serving_bundle",
]

logger = logging.getLogger(__name__)

BUNDLE_NAME = "crisk-bundle"
CHAMPION = "champion"
QUANTILES = np.linspace(0.0, 1.0, 2001)


@dataclass
class LoadedModel:
    name: str
    version: str
    subject: str
    area: str
    task: str
    booster: lgb.Booster
    spec: dict[str, Any]
    encoder: Encoder = field(init=False)
    # The reference sample summarised for reasons and decision pages (set when loaded to serve).
    profile: ReferenceProfile = field(default_factory=ReferenceProfile.empty)

    def __post_init__(self) -> None:
        self.encoder = Encoder(self.spec["features"], self.spec["vocabularies"])

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def margin(self, matrix: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Raw scores; ``threads``: LightGBM's threads for this call (None: as trained)."""
        options: dict[str, Any] = {} if threads is None else {"num_threads": threads}
        return np.asarray(self.booster.predict(matrix, raw_score=True, **options))

    def probability(self, matrix: np.ndarray, threads: int | None = None) -> np.ndarray:
        if self.task == "revenue":
            return expected_revenue(self.margin(matrix, threads), matrix, self.spec)
        return calibrate(self.margin(matrix, threads), self.spec["calibration"])


@dataclass
class Bundle:
    tag: str
    models: list[LoadedModel]
    quantiles: dict[str, dict[str, Any]]  # subject -> overall/revenue quantiles, area means
    source: str  # "registry" or "bundled"
    fallback_reason: str | None = None
    champions: dict[str, str] = field(default_factory=dict)

    @property
    def fallback(self) -> bool:
        return self.fallback_reason is not None

    def classifiers(self, subject: str) -> list[LoadedModel]:
        return [m for m in self.models if m.subject == subject and m.task == "classification"]

    def revenue(self, subject: str) -> LoadedModel | None:
        return next((m for m in self.models if m.subject == subject and m.task == "revenue"), None)

    def feature_service(self, subject: str) -> str | None:
        services = {m.spec["feature_service"] for m in self.models if m.subject == subject}
        if len(services) > 1:
            raise ValueError(
                f"{subject} models were trained on different feature services: {services}"
            )
        return next(iter(services), None)

    def subjects(self) -> list[str]:
        return sorted({m.subject for m in self.models})

    def identifier_format(self, subject: str) -> str:
        """How requests' party ids are checked: as in the data the models were trained on
        (``eori`` for models from before the format was recorded)."""
        formats = {
            m.spec.get("identifier_format", "eori") for m in self.models if m.subject == subject
        }
        if len(formats) > 1:
            raise ValueError(f"{subject} models were trained on different id formats: {formats}")
        return next(iter(formats), "eori")


def overall_probability(probabilities: list[np.ndarray]) -> np.ndarray:
    """Probability of any irregularity, treating the areas as independent."""
    if not probabilities:
        return np.zeros(0)
    return 1.0 - np.prod([1.0 - p for p in probabilities], axis=0)


def _champions(settings: ServingSettings) -> dict[str, Any]:
    """name -> champion ModelVersion for every registered model of this deployment."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from data_contracts.deployment import prepare_mlflow_store, redacted

    uri = settings.mlflow_tracking_uri
    if not settings.deployment.registry_exists(settings.workspace):
        raise FileNotFoundError(f"no model registry at {redacted(uri)}")
    prepare_mlflow_store(uri, settings.deployment.artifacts_dir(settings.workspace))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champions = {}
    for registered in client.search_registered_models(
        filter_string=f"name LIKE '{settings.model_prefix}_%'"
    ):
        if CHAMPION not in registered.aliases:
            continue
        try:
            champions[registered.name] = client.get_model_version_by_alias(
                registered.name, CHAMPION
            )
        except MlflowException:
            continue
    if not champions:
        raise LookupError("the registry has no champion model")
    return champions


def _load_models(folder: Path, index: dict[str, Any]) -> list[LoadedModel]:
    models = []
    for name, entry in index["models"].items():
        spec = json.loads((folder / name / "spec.json").read_text())
        models.append(
            LoadedModel(
                name=name,
                version=str(entry["version"]),
                subject=spec["subject"],
                area=spec["area"],
                task=spec["task"],
                booster=lgb.Booster(model_file=str(folder / name / "model.txt")),
                spec=spec,
            )
        )
    return models


def _attach_profiles(folder: Path, models: list[LoadedModel]) -> None:
    """Summarise each model's reference sample once, so a reason only looks values up.

    Models trained together share one reference sample (same file content): it is read and
    summarised once for all of them.
    """
    summaries: dict[tuple[bytes, tuple[str, ...]], ReferenceProfile] = {}
    for model in models:
        path = folder / model.name / "reference_sample.parquet"
        if not path.exists():
            continue
        key = (hashlib.sha256(path.read_bytes()).digest(), tuple(model.spec["features"]))
        if key not in summaries:
            summaries[key] = ReferenceProfile.from_frame(
                pd.read_parquet(path),
                model.spec["features"],
                model.spec.get("labels", {}),
                set(model.spec.get("vocabularies", {})),
            )
        model.profile = summaries[key]


def _reference_quantiles(folder: Path, models: list[LoadedModel]) -> dict[str, dict[str, Any]]:
    """Score each subject's reference sample with the bundle's models: thresholds for capacity."""
    out: dict[str, dict[str, Any]] = {}
    for subject in sorted({m.subject for m in models}):
        classifiers = [m for m in models if m.subject == subject and m.task == "classification"]
        if not classifiers:
            continue
        reference = pd.read_parquet(folder / classifiers[0].name / "reference_sample.parquet")
        probabilities = [m.probability(m.encoder(reference)) for m in classifiers]
        entry: dict[str, Any] = {
            "overall": np.quantile(overall_probability(probabilities), QUANTILES).tolist(),
            # Mean score per area: an item's main area is the one where it stands out most.
            "area_mean": {
                m.area: float(np.mean(p)) for m, p in zip(classifiers, probabilities, strict=True)
            },
        }
        revenue = next((m for m in models if m.subject == subject and m.task == "revenue"), None)
        if revenue is not None:
            values = revenue.probability(revenue.encoder(reference))
            entry["revenue"] = np.quantile(values, QUANTILES).tolist()
            # Per reference item, what the selection value is made of: the service sets its
            # thresholds on the value with the hit value it is configured with.
            other = [
                p for m, p in zip(classifiers, probabilities, strict=True) if m.area != "financial"
            ]
            entry["reference_scores"] = {
                "expected_revenue": np.round(values, 2).tolist(),
                "non_financial": np.round(overall_probability(other), 6).tolist()
                if other
                else [0.0] * len(values),
            }
        out[subject] = entry
    return out


def _bundles() -> list[Any]:
    """Bundles in the BentoML store, oldest first."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return sorted(bentoml.models.list(BUNDLE_NAME), key=lambda m: m.info.creation_time)
    except NotFound:
        return []


def _build_from_registry(settings: ServingSettings, champions: dict[str, Any]) -> str:
    import bentoml
    import mlflow

    label = ",".join(f"{name}:{mv.version}" for name, mv in sorted(champions.items()))
    uri = settings.mlflow_tracking_uri
    # BentoML's store is resolved once per process: a process that serves or simulates several
    # workspaces shares it, so a bundle is only reused for the registry it was built from.
    for existing in _bundles():
        metadata = existing.info.metadata
        if metadata.get("champions") == label and metadata.get("registry", uri) == uri:
            return str(existing.tag)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    index: dict[str, Any] = {"models": {}}
    metadata = {"champions": label, "registry": uri}
    with bentoml.models.create(BUNDLE_NAME, metadata=metadata) as bento_model:
        folder = Path(bento_model.path)
        for name, version in sorted(champions.items()):
            target = folder / name
            downloaded = Path(
                mlflow.artifacts.download_artifacts(
                    f"models:/{name}/{version.version}", dst_path=str(folder / ".tmp" / name)
                )
            )
            target.mkdir(parents=True, exist_ok=True)
            artifacts = downloaded / "artifacts"
            for file in ("model.txt", "spec.json", "reference_sample.parquet"):
                shutil.copy(artifacts / file, target / file)
            index["models"][name] = {
                "version": version.version,
                "run_id": version.run_id,
                "tags": dict(version.tags or {}),
            }
        shutil.rmtree(folder / ".tmp", ignore_errors=True)
        models = _load_models(folder, index)
        index["quantiles"] = _reference_quantiles(folder, models)
        (folder / "bundle.json").write_text(json.dumps(index, indent=1))
    logger.info("bundled champions %s as %s", label, bento_model.tag)
    return str(bento_model.tag)


def bundle_folder(settings: ServingSettings, tag: str) -> Path:
    """Where a bundle's files are: this workspace's store first, then BentoML's configured one.

    BentoML resolves its store once per process, so a process that has served or inspected
    another workspace (a test run, a notebook) would look in the wrong place; the workspace's
    own layout (``models/<name>/<version>``) is checked first for that reason.
    """
    name, _, version = tag.partition(":")
    own = settings.workspace.bentoml_home / "models" / name / version
    if version and (own / "bundle.json").is_file():
        return own
    import bentoml  # only when needed: it takes seconds to import (an audit look-up need not)

    return Path(bentoml.models.get(tag).path)


def load_bundle(settings: ServingSettings, tag: str | None = None) -> Bundle:
    """The bundle to serve: built from the registry's champions, else the newest bundled one.

    With ``tag``, that exact bundle (used by ``crisk audit show`` to recompute reasons).
    """
    os.environ.setdefault("BENTOML_HOME", str(settings.workspace.bentoml_home))
    source, reason = "registry", None
    if tag is None:
        try:
            champions = _champions(settings)
            tag = _build_from_registry(settings, champions)
        except Exception as error:  # the registry being unavailable is exactly the case handled
            reason = f"model registry unavailable ({type(error).__name__}: {error})"
            bundles = _bundles()
            if not bundles:
                raise RuntimeError(f"{reason}, and no bundled champion to fall back on") from error
            tag = str(bundles[-1].tag)
            source = "bundled"
            logger.warning("%s: serving the last bundled champion %s", reason, tag)
    else:
        source = "bundled"
    folder = bundle_folder(settings, tag)
    index = json.loads((folder / "bundle.json").read_text())
    models = _load_models(folder, index)
    _attach_profiles(folder, models)
    return Bundle(
        tag=tag,
        models=models,
        quantiles=index["quantiles"],
        source=source,
        fallback_reason=reason,
        champions={name: str(entry["version"]) for name, entry in index["models"].items()},
    )


def reference_sample(
    settings: ServingSettings, bundle: Bundle, subject: str
) -> pd.DataFrame | None:
    """The model frame of the training data's reference sample of ``subject`` (None: no model)."""
    classifiers = bundle.classifiers(subject)
    if not classifiers:
        return None
    path = bundle_folder(settings, bundle.tag) / classifiers[0].name / "reference_sample.parquet"
    return pd.read_parquet(path)


def bundle_versions(settings: ServingSettings, tag: str) -> dict[str, str]:
    """Registered model name -> version of every model in bundle ``tag`` (read from its index)."""
    index = json.loads((bundle_folder(settings, tag) / "bundle.json").read_text())
    return {name: str(entry["version"]) for name, entry in index["models"].items()}


def record_serving_bundle(settings: ServingSettings, bundle: Bundle) -> None:
    """Note which bundle serves from now on (atomically: a reader never sees half a file)."""
    path = settings.workspace.serving_bundle_file
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "bundle": bundle.tag,
        "source": bundle.source,
        "since": pd.Timestamp.now(tz="UTC").isoformat(),
        "models": bundle.champions,
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(record, indent=1))
    os.replace(temporary, path)


def serving_bundle(settings: ServingSettings) -> dict[str, Any] | None:
    """What :func:`record_serving_bundle` noted last, or None if nothing has served yet."""
    path = settings.workspace.serving_bundle_file
    if not path.exists():
        return None
    return dict(json.loads(path.read_text()))
