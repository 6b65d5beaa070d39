"""Settings of the feature store, shared by training and serving (``CRISK_FEATURES_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_contracts.deployment import Profile, profile_field
from data_contracts.workspace import OfflineLayout, Workspace, home_field

__all__ = ["FeatureStoreSettings"]


class FeatureStoreSettings(BaseSettings):
    """Where the Feast registry and stores live, and which online store to use."""

    model_config = SettingsConfigDict(
        env_prefix="CRISK_FEATURES_", extra="ignore", populate_by_name=True
    )

    home: Path = home_field()
    profile: Profile = profile_field()
    online_store: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description="sqlite for one machine; redis (Feast's own integration) when it outgrows one "
        "(the default of CRISK_PROFILE=scale).",
    )
    redis_connection_string: str = Field(
        default="127.0.0.1:6379",
        description="Feast redis connection string, e.g. 'host:6379,password=…,ssl=true'.",
    )
    table_engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Engine of the point-in-time feature tables: duckdb in process (one "
        "machine), or spark (PySpark; the default of CRISK_PROFILE=scale) running the same "
        "generated SQL.",
    )
    offline_layout: OfflineLayout = Field(
        default="file",
        description="How the point-in-time feature tables are written: file (one Parquet file "
        "per view) or partitioned (a hive-partitioned Parquet directory per view, "
        "event_month=YYYY-MM; the default of CRISK_PROFILE=scale). Readers follow what is on "
        "disk.",
    )
    spark_master: str = Field(
        default="local[2]",
        min_length=1,
        description="Spark master URL for table_engine=spark: local[N] or spark://host:7077.",
    )
    spark_driver_memory: str = Field(
        default="4g",
        pattern=r"^[1-9][0-9]*[kmgt]?$",
        description="Heap of Spark's driver JVM (spark.driver.memory, e.g. 4g). With a local "
        "master the driver also runs the tasks: Spark's own 1g default runs out of memory in "
        "the windowed aggregations of a 150,000-item world.",
    )
    online_cache_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long serving keeps an entity's online features in memory; "
        "the cache is also dropped whenever a newer materialisation is seen.",
    )

    @model_validator(mode="after")
    def _profile_defaults(self) -> FeatureStoreSettings:
        # The profile flips the defaults only: CRISK_FEATURES_ONLINE_STORE,
        # CRISK_FEATURES_TABLE_ENGINE and CRISK_FEATURES_OFFLINE_LAYOUT, when given, win.
        if self.profile == "scale":
            if "online_store" not in self.model_fields_set:
                self.online_store = "redis"
            if "table_engine" not in self.model_fields_set:
                self.table_engine = "spark"
            if "offline_layout" not in self.model_fields_set:
                self.offline_layout = "partitioned"
        return self

    @property
    def workspace(self) -> Workspace:
        return Workspace.at(self.home)

    @property
    def feast_dir(self) -> Path:
        return self.workspace.feast_dir
