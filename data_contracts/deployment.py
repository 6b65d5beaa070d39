"""Where the shared state lives: the deployment profile (``CRISK_PROFILE``) and MLflow's stores.

``local`` (the default) keeps everything in the workspace, as ``make run`` always did: MLflow's
SQLite store and artifacts, the SQLite feedback store and audit log, Feast's SQLite online store.
``scale`` flips those defaults to the shared services a deployment of several machines runs
(docs/scaling.md): PostgreSQL at ``CRISK_POSTGRES_URL`` for MLflow's tracking and registry, the
feedback store and the audit log; Redis for Feast's online store. The profile only changes
defaults: a component's own setting (``CRISK_MLFLOW_TRACKING_URI``, ``CRISK_SERVE_STATE_URL``,
``CRISK_FEATURES_ONLINE_STORE``, …) always wins.
"""

from __future__ import annotations

import logging
from contextlib import closing
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_contracts.workspace import Workspace

__all__ = [
    "PROFILE_VARIABLE",
    "DeploymentSettings",
    "Profile",
    "StateStoreError",
    "check_postgres",
    "postgres_lock",
    "prepare_mlflow_store",
    "redacted",
    "sqlalchemy_url",
]

logger = logging.getLogger(__name__)

Profile = Literal["local", "scale"]
PROFILE_VARIABLE = "CRISK_PROFILE"
POSTGRES_VARIABLE = "CRISK_POSTGRES_URL"
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# Keys of PostgreSQL advisory locks taken by crisk (first half of the two-int form).
LOCK_NAMESPACE = 0x0C715C
LOCK_MLFLOW_SCHEMA = 1
LOCK_STATE_SCHEMA = 2


class StateStoreError(ValueError):
    """A shared store named by the settings cannot be used (missing or unreachable)."""


def profile_field() -> Any:
    """The ``CRISK_PROFILE`` field of every settings class that flips a default with it."""
    return Field(
        default="local",
        validation_alias=PROFILE_VARIABLE,
        description="local: everything in the workspace; scale: PostgreSQL and Redis defaults.",
    )


class DeploymentSettings(BaseSettings):
    """The profile, the PostgreSQL address it uses, and MLflow's tracking store and artifacts."""

    model_config = SettingsConfigDict(env_prefix="CRISK_", extra="ignore", populate_by_name=True)

    profile: Profile = profile_field()
    postgres_url: str | None = Field(
        default=None,
        description="postgresql://user@host:port/db: the scale profile's shared database.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry store (default: the workspace's SQLite file; "
        "scale: CRISK_POSTGRES_URL).",
    )
    mlflow_artifacts_dir: Path | None = Field(
        default=None,
        description="Where MLflow keeps model artifacts: a directory every machine mounts "
        "(default: the workspace's mlflow/artifacts).",
    )

    @model_validator(mode="after")
    def _scale_needs_postgres(self) -> DeploymentSettings:
        if self.profile == "scale" and not self.postgres_url:
            raise ValueError(
                f"{PROFILE_VARIABLE}=scale needs {POSTGRES_VARIABLE} "
                "(postgresql://user@host:port/db): it is not set"
            )
        if self.postgres_url and urlsplit(self.postgres_url).scheme not in POSTGRES_SCHEMES:
            raise ValueError(
                f"{POSTGRES_VARIABLE}: {redacted(self.postgres_url)} is not a postgresql:// URL"
            )
        return self

    @property
    def scale(self) -> bool:
        return self.profile == "scale"

    def tracking_uri(self, workspace: Workspace) -> str:
        """MLflow's tracking and registry URI (SQLAlchemy form for PostgreSQL)."""
        if self.mlflow_tracking_uri:
            return sqlalchemy_url(self.mlflow_tracking_uri)
        if self.scale and self.postgres_url:
            return sqlalchemy_url(self.postgres_url)
        return workspace.mlflow_tracking_uri

    def artifacts_dir(self, workspace: Workspace) -> Path:
        if self.mlflow_artifacts_dir is not None:
            return self.mlflow_artifacts_dir.expanduser().resolve()
        return workspace.mlflow_artifacts_dir

    def registry_exists(self, workspace: Workspace) -> bool:
        """False only for a workspace SQLite store that was never created (nothing trained)."""
        uri = self.tracking_uri(workspace)
        if uri.startswith("sqlite:///"):
            return Path(uri.removeprefix("sqlite:///")).exists()
        return True

    def environment(self, workspace: Workspace) -> dict[str, str]:
        """The workspace's environment with MLflow pointed at the configured store."""
        return {**workspace.environment(), "MLFLOW_TRACKING_URI": self.tracking_uri(workspace)}


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` as SQLAlchemy needs it for psycopg 3 (its default driver is psycopg2)."""
    scheme, rest = url.split("://", 1) if "://" in url else (url, "")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def libpq_url(url: str) -> str:
    """The same address as libpq (psycopg) reads it."""
    scheme, rest = url.split("://", 1) if "://" in url else (url, "")
    if scheme.startswith("postgresql+") or scheme == "postgres":
        return f"postgresql://{rest}"
    return url


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str, setting: str = POSTGRES_VARIABLE, **options: Any) -> Any:
    """A psycopg connection, or a one-line StateStoreError naming the setting and the address."""
    import psycopg

    try:
        return psycopg.connect(libpq_url(url), connect_timeout=5, **options)
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StateStoreError(
            f"{setting}: PostgreSQL at {redacted(libpq_url(url))} is unreachable ({reason})"
        ) from None


def check_postgres(url: str, setting: str = POSTGRES_VARIABLE) -> None:
    """Connect once: a clear error at start-up instead of one per request."""
    with closing(connect(url, setting)) as connection:
        connection.execute("SELECT 1")


class postgres_lock:
    """A session-level advisory lock held while the block runs (one process at a time)."""

    def __init__(self, url: str, key: int, setting: str = POSTGRES_VARIABLE) -> None:
        self._url, self._key, self._setting = url, key, setting
        self._connection: Any = None

    def __enter__(self) -> postgres_lock:
        self._connection = connect(self._url, self._setting, autocommit=True)
        self._connection.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, self._key))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._connection.execute(
                "SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, self._key)
            )
        finally:
            self._connection.close()


def prepare_mlflow_store(tracking_uri: str, artifacts_dir: Path) -> None:
    """Create MLflow's schema on an empty PostgreSQL database, one process at a time.

    MLflow 3.17 runs its migrations on the first connection to an empty database, guarded only
    by a lock file in the local temporary directory: two machines (or two containers) starting
    at once would both run them. An advisory lock on the database itself serialises that; the
    second process then finds the tables and only checks their version. SQLite is left alone.
    """
    if not tracking_uri.startswith("postgresql"):
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    setting = "CRISK_MLFLOW_TRACKING_URI or CRISK_POSTGRES_URL"
    with postgres_lock(tracking_uri, LOCK_MLFLOW_SCHEMA, setting):
        SqlAlchemyStore(tracking_uri, artifacts_dir.as_uri())
