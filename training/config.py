"""Settings of training, evaluation and promotion (env prefix ``CRISK_TRAIN_``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_contracts.workspace import Workspace, home_field
from features.config import FeatureStoreSettings

__all__ = ["DASK_SCHEDULER_PATTERN", "LightGBMParams", "TrainingSettings"]

# `local:N` (a LocalCluster of N workers) or the address of a running Dask scheduler.
DASK_SCHEDULER_PATTERN = r"^(local:[1-9][0-9]*|(tcp|tls)://[^\s/:]+:[0-9]{1,5})$"


class LightGBMParams(BaseSettings):
    """Model capacity, chosen with TreeSHAP's cost in mind: trees × leaves × depth² per reason."""

    model_config = SettingsConfigDict(
        env_prefix="CRISK_TRAIN_LGBM_", extra="ignore", populate_by_name=True
    )

    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    max_depth: int = Field(6, ge=1, description="Bounds TreeSHAP cost per explained row.")
    min_data_in_leaf: int = Field(40, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    max_rounds: int = Field(400, ge=1)
    early_stopping_rounds: int = Field(40, ge=1)
    early_stopping_metric: Literal["binary_logloss", "average_precision", "auc"] = Field(
        "binary_logloss",
        description="Validation metric for early stopping; log-loss is stable with few positives.",
    )
    num_threads: int = Field(2, ge=1)


class TrainingSettings(BaseSettings):
    """What `crisk train`, `crisk evaluate` and `crisk promote` use."""

    model_config = SettingsConfigDict(
        env_prefix="CRISK_TRAIN_", extra="ignore", populate_by_name=True
    )

    home: Path = home_field()
    features: FeatureStoreSettings = Field(default_factory=FeatureStoreSettings)
    lgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    experiment: str = "crisk"
    model_prefix: str = Field(
        "crisk", description="Registered models are <prefix>_<subject>_<area>."
    )
    retrieval_engine: Literal["duckdb", "feast"] = Field(
        "duckdb", description="Point-in-time join engine for training rows (parity-tested)."
    )
    burn_in_days: int = Field(56, ge=0, description="First days used only as feature history.")
    test_days: int = Field(56, ge=7, description="Evaluation window at the end of the data.")
    validation_days: int = Field(42, ge=7)
    label_delay_days: int = Field(
        14, ge=0, description="Gap between windows: outcomes arrive after the controls."
    )
    min_positive_labels: int = Field(
        200,
        ge=1,
        description="An area gets a model only with at least this many training hits; below it "
        "crisk serves no score for the area and the risk engine's rule profiles stay in "
        "charge (too few labels to beat them reliably).",
    )
    selection_weighting: Literal["ipw", "none"] = Field(
        "ipw", description="Inverse-propensity weights against the selection bias of controls."
    )
    ipw_power: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weights are (1/p)**power: 1 is plain IPW (unbiased, high variance: it "
        "trained worse on the synthetic world), 0.5 tempers it, 0 switches it off.",
    )
    exclude_selection_reasons: list[str] = Field(
        default_factory=lambda: ["other"],
        description="Controls whose selection depended on the outcome itself (an officer's tip "
        "off is not in the data) are left out of training: their labels are not ignorable.",
    )
    reference_sample_size: int = Field(20_000, ge=100)
    promotion_margin: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="A loss the gate tolerates beyond its interval, as a share of the champion's "
        "value: the challenger is refused when the whole interval of challenger - champion lies "
        "below -margin × champion (0: refused only when significantly worse).",
    )
    gate_min_hits: int = Field(
        30,
        ge=1,
        description="Hits the gate's evaluation set must hold before a challenger may replace a "
        "champion (random controls first, else all labelled controls of the window).",
    )
    gate_resamples: int = Field(1000, ge=100, description="Paired bootstrap resamples.")
    gate_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Level of the gate's intervals of the difference."
    )
    diagnostics: bool = Field(
        True,
        description="PR, calibration and SHAP plots logged with each model (the simulator, "
        "retraining every few weeks, switches them off).",
    )
    promotion_metric: str = "precision_at_5"
    primary_min_random_hits: int = Field(
        30,
        ge=1,
        description="Random controls are the primary (unbiased) evaluation set of an area when "
        "they hold at least this many irregular items of it; else every labelled control is, "
        "and the report says its figures come from the controls the administration chose.",
    )
    seed: int = 7
    dask_scheduler: str | None = Field(
        None,
        description="Train the LightGBM models with lightgbm.dask on this Dask scheduler: "
        "tcp://host:port (a running cluster) or local:N (a LocalCluster of N one-thread worker "
        "processes, started and closed by the training step). Unset: in this process.",
    )

    @field_validator("dask_scheduler")
    @classmethod
    def _dask_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(DASK_SCHEDULER_PATTERN, value):
            raise ValueError(
                f"{value!r} is neither local:N (a LocalCluster of N >= 1 workers) nor the "
                "address of a Dask scheduler, tcp://host:port (or tls://host:port)"
            )
        return value

    @model_validator(mode="after")
    def _one_workspace(self) -> TrainingSettings:
        # One workspace per deployable: the feature store lives in the same CRISK_HOME.
        if self.features.home != self.home:
            self.features = self.features.model_copy(update={"home": self.home})
        return self

    @property
    def workspace(self) -> Workspace:
        return Workspace.at(self.home)
