"""CRISK_PROFILE: `scale` flips defaults to PostgreSQL and Redis; a component's own setting wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from data_contracts.deployment import (
    DeploymentSettings,
    StateStoreError,
    check_postgres,
    redacted,
    sqlalchemy_url,
)
from features.config import FeatureStoreSettings
from pipelines.config import PipelineSettings
from serving.config import ServingSettings
from tests.conftest import free_port

PG = "postgresql://crisk@db.example:5432/crisk"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "CRISK_PROFILE",
        "CRISK_POSTGRES_URL",
        "CRISK_MLFLOW_TRACKING_URI",
        "CRISK_MLFLOW_ARTIFACTS_DIR",
        "CRISK_SERVE_STATE_URL",
        "CRISK_FEATURES_ONLINE_STORE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRISK_HOME", str(tmp_path))
    return monkeypatch


def test_local_profile_keeps_everything_in_the_workspace(clean_env, tmp_path: Path) -> None:
    settings = PipelineSettings()
    assert settings.training.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow/mlflow.db'}"
    assert settings.serving.mlflow_tracking_uri == settings.training.mlflow_tracking_uri
    assert settings.serving.shared_state_url is None
    assert settings.serving.features.online_store == "sqlite"
    assert settings.training.deployment.artifacts_dir(settings.workspace) == (
        tmp_path / "mlflow" / "artifacts"
    )


def test_scale_profile_flips_the_defaults(clean_env) -> None:
    clean_env.setenv("CRISK_PROFILE", "scale")
    clean_env.setenv("CRISK_POSTGRES_URL", PG)
    settings = PipelineSettings()
    assert (
        settings.training.mlflow_tracking_uri == "postgresql+psycopg://crisk@db.example:5432/crisk"
    )
    assert settings.serving.mlflow_tracking_uri == settings.training.mlflow_tracking_uri
    assert settings.serving.shared_state_url == PG
    assert settings.serving.features.online_store == "redis"
    assert settings.training.features.online_store == "redis"
    assert settings.training.features.table_engine == "spark"
    env = settings.serving.deployment.environment(settings.workspace)
    assert env["MLFLOW_TRACKING_URI"].startswith("postgresql+psycopg://")


def test_a_components_own_setting_wins_over_the_profile(clean_env, tmp_path: Path) -> None:
    clean_env.setenv("CRISK_PROFILE", "scale")
    clean_env.setenv("CRISK_POSTGRES_URL", PG)
    clean_env.setenv("CRISK_FEATURES_ONLINE_STORE", "sqlite")
    clean_env.setenv("CRISK_FEATURES_TABLE_ENGINE", "duckdb")
    clean_env.setenv("CRISK_MLFLOW_TRACKING_URI", "sqlite:////srv/mlflow.db")
    clean_env.setenv("CRISK_MLFLOW_ARTIFACTS_DIR", str(tmp_path / "shared"))
    clean_env.setenv("CRISK_SERVE_STATE_URL", "postgresql://other@state:5432/s")
    settings = ServingSettings()
    assert settings.features.online_store == "sqlite"
    assert settings.features.table_engine == "duckdb"
    assert settings.mlflow_tracking_uri == "sqlite:////srv/mlflow.db"
    assert settings.deployment.artifacts_dir(settings.workspace) == tmp_path / "shared"
    assert settings.shared_state_url == "postgresql://other@state:5432/s"
    assert FeatureStoreSettings(online_store="sqlite", profile="scale").online_store == "sqlite"


def test_state_url_alone_moves_feedback_and_audit_without_the_profile(clean_env) -> None:
    clean_env.setenv("CRISK_SERVE_STATE_URL", PG)
    settings = ServingSettings()
    assert settings.shared_state_url == PG
    assert settings.mlflow_tracking_uri.startswith("sqlite:///")
    assert settings.features.online_store == "sqlite"


def test_scale_without_a_postgres_url_names_the_setting(clean_env) -> None:
    clean_env.setenv("CRISK_PROFILE", "scale")
    with pytest.raises(ValidationError, match="CRISK_PROFILE=scale needs CRISK_POSTGRES_URL"):
        PipelineSettings()
    clean_env.setenv("CRISK_POSTGRES_URL", "mysql://x@y/z")
    with pytest.raises(ValidationError, match="CRISK_POSTGRES_URL: mysql://x@y/z is not"):
        DeploymentSettings()


def test_an_unreachable_postgres_is_one_line_naming_the_setting() -> None:
    url = f"postgresql://crisk:secret@127.0.0.1:{free_port()}/crisk"
    with pytest.raises(StateStoreError) as raised:
        check_postgres(url)
    message = str(raised.value)
    assert message.startswith("CRISK_POSTGRES_URL: PostgreSQL at postgresql://crisk:***@127.0.0.1")
    assert "unreachable" in message and "secret" not in message and "\n" not in message


def test_urls_for_sqlalchemy_and_messages() -> None:
    assert sqlalchemy_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert sqlalchemy_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"
    assert redacted("postgresql://u:pw@h:1/d") == "postgresql://u:***@h:1/d"
    assert redacted("postgresql://u@h/d") == "postgresql://u@h/d"
