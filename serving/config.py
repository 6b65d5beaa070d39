"""Settings of the scoring service (env prefix ``CRISK_SERVE_``; API keys in ``CRISK_API_KEYS``)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_contracts.deployment import DeploymentSettings
from data_contracts.workspace import Workspace, home_field
from features.config import FeatureStoreSettings

__all__ = ["ServingSettings"]


class ServingSettings(BaseSettings):
    """What `crisk serve` runs with."""

    model_config = SettingsConfigDict(
        env_prefix="CRISK_SERVE_", extra="ignore", populate_by_name=True
    )

    home: Path = home_field()
    features: FeatureStoreSettings = Field(default_factory=FeatureStoreSettings)
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    state_url: str | None = Field(
        default=None,
        description="Feedback store and audit log: postgresql://… shared by every replica "
        "(default: the workspace's SQLite files; scale: CRISK_POSTGRES_URL).",
    )
    replica_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=200,
        description="This replica's audit hash chain on a shared state store (default: the host "
        "name, a pod's name on Kubernetes); replicas that share an id share one chain, safely.",
    )
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    workers: int = Field(1, ge=1, description="BentoML worker processes.")
    api_keys: str | None = Field(
        default=None,
        validation_alias="CRISK_API_KEYS",
        description="role:key,role:key,… (roles: scorer, officer, auditor, admin).",
    )
    api_keys_file: Path | None = Field(
        default=None,
        validation_alias="CRISK_API_KEYS_FILE",
        description="A file with one role:key per line (used when CRISK_API_KEYS is unset).",
    )
    model_prefix: str = "crisk"
    control_capacity: float = Field(
        0.05, gt=0, lt=1, description="Share of items the control units can control."
    )
    random_rate: float = Field(
        0.005,
        ge=0,
        lt=1,
        description="Share selected at random (unbiased labels); counted inside the capacity.",
    )
    physical_share: float = Field(
        0.3, ge=0, le=1, description="Share of model selections with the highest risk sent to red."
    )
    post_release_share: float = Field(
        0.01, ge=0, lt=1, description="Share of items sent to post-release audit (blue)."
    )
    hit_value_eur: float = Field(
        500.0,
        ge=0,
        description="What an expected irregularity in an area without revenue (counterfeit, "
        "unsafe, prohibited goods) counts for beside the expected revenue when items are "
        "ranked for control (EUR).",
    )
    max_batch: int = Field(
        1000, ge=1, le=100_000, description="Most items one /score or /feedback request may carry."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest request body, checked before it is read or parsed (413 beyond).",
    )
    max_error_reasons: int = Field(
        20, ge=1, le=1000, description="Reasons listed in a 422 body; the rest are counted."
    )
    top_reasons: int = Field(5, ge=1, le=20)
    predict_threads: int = Field(
        1,
        ge=1,
        description="LightGBM threads per scoring call. A request's batch is small: OpenMP "
        "threads cost more than they save there (and compete with the other workers and the "
        "event loop for the cores); parallelism comes from workers.",
    )
    reload_check_seconds: float = Field(
        5.0,
        ge=0,
        description="How often each worker checks whether the champion changed (crisk promote, "
        "crisk retrain) and moves to it without a restart; 0 switches it off.",
    )
    audit_fsync: bool = Field(
        True,
        description="Sync the audit log at every commit: an answered score survives a power loss "
        "too (off: it survives a killed process only).",
    )
    audit_key_file: Path | None = Field(
        None,
        description="Ed25519 key that signs audit checkpoints (created 0600 if absent); default "
        "CRISK_HOME/keys/audit-signing-key.pem, outside the log's directory.",
    )
    audit_checkpoint_every: int = Field(
        100, ge=1, description="Sign a checkpoint every this many audit entries."
    )
    audit_checkpoint_seconds: float = Field(
        30.0, gt=0, description="...and at least this often while entries arrive."
    )

    @model_validator(mode="after")
    def _one_workspace(self) -> ServingSettings:
        if self.features.home != self.home:
            self.features = self.features.model_copy(update={"home": self.home})
        if self.random_rate >= self.control_capacity:
            raise ValueError("random_rate must be smaller than control_capacity")
        return self

    @property
    def workspace(self) -> Workspace:
        return Workspace.at(self.home)

    @property
    def mlflow_tracking_uri(self) -> str:
        """The registry the champions are read from (see DeploymentSettings.tracking_uri)."""
        return self.deployment.tracking_uri(self.workspace)

    @property
    def shared_state_url(self) -> str | None:
        """PostgreSQL for feedback and audit, or None for the workspace's SQLite files."""
        if self.state_url:
            return self.state_url
        return self.deployment.postgres_url if self.deployment.scale else None

    @property
    def audit_key_path(self) -> Path:
        """The checkpoint signing key (its public half is beside it, ``.pub``)."""
        if self.audit_key_file is not None:
            return self.audit_key_file.expanduser().resolve()
        return self.workspace.keys_dir / "audit-signing-key.pem"
