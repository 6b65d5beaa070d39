"""Settings of the pipelines (``CRISK_*``): they compose the other deployables' settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_contracts.codelists import CONTROL_TYPES
from data_contracts.deployment import Profile, profile_field
from data_contracts.workspace import OfflineLayout, Workspace, home_field
from pipelines.ingest import DEFAULT_REPORTING_DELAY_DAYS
from serving.config import ServingSettings
from training.config import TrainingSettings

__all__ = ["PipelineSettings"]


class PipelineSettings(BaseSettings):
    """One workspace (``CRISK_HOME``, default ``./.crisk``) for every step."""

    model_config = SettingsConfigDict(env_prefix="CRISK_", extra="ignore", populate_by_name=True)

    home: Path = home_field()
    world_seed: int = Field(7, description="Seed of the built-in synthetic world.")
    world_declarations: int = Field(
        150_000, ge=1_000, description="Declaration items of the bootstrap world."
    )
    world_ens: int | None = Field(
        100_000, ge=100, description="ENS filings of the bootstrap world (None: half the items)."
    )
    bootstrap_min_positive_labels: int = Field(
        50,
        ge=1,
        description="The demo world is small: its models may train on fewer labelled hits than "
        "the production threshold (CRISK_TRAIN_MIN_POSITIVE_LABELS).",
    )
    world_weeks: int = Field(52, ge=20)
    reporting_delay_days: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_REPORTING_DELAY_DAYS),
        description="Days from a control to its outcome being known, per control type, for "
        "control results a file gives without reported_at (CRISK_REPORTING_DELAY_DAYS as JSON, "
        "e.g. '{\"post_release_audit\": 60}'; unnamed types keep their default).",
    )
    profile: Profile = profile_field()
    records_layout: OfflineLayout = Field(
        default="file",
        description="How ingest and import store declarations, ENS filings and control "
        "results: file (one Parquet file per kind, rewritten at every import) or partitioned "
        "(a hive-partitioned Parquet directory per kind, event_month=YYYY-MM of the record's "
        "event time, an import rewriting only the months it touches; the default of "
        "CRISK_PROFILE=scale). Readers follow what is on disk.",
    )
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @model_validator(mode="after")
    def _profile_defaults(self) -> PipelineSettings:
        # The profile flips the default only: CRISK_RECORDS_LAYOUT, when given, wins.
        if self.profile == "scale" and "records_layout" not in self.model_fields_set:
            self.records_layout = "partitioned"
        return self

    @model_validator(mode="after")
    def _known_delays(self) -> PipelineSettings:
        for name, days in self.reporting_delay_days.items():
            if name not in CONTROL_TYPES:
                raise ValueError(
                    f"reporting_delay_days.{name}: not a control type "
                    f"(expected one of {', '.join(CONTROL_TYPES)})"
                )
            if days < 0:
                raise ValueError(f"reporting_delay_days.{name}: {days} is negative")
        self.reporting_delay_days = {**DEFAULT_REPORTING_DELAY_DAYS, **self.reporting_delay_days}
        return self

    @model_validator(mode="after")
    def _one_workspace(self) -> PipelineSettings:
        if self.training.home != self.home:
            self.training = self.training.model_copy(
                update={
                    "home": self.home,
                    "features": self.training.features.model_copy(update={"home": self.home}),
                }
            )
        if self.serving.home != self.home:
            self.serving = self.serving.model_copy(
                update={
                    "home": self.home,
                    "features": self.serving.features.model_copy(update={"home": self.home}),
                }
            )
        return self

    @property
    def workspace(self) -> Workspace:
        return Workspace.at(self.home)
