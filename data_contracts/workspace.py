"""The on-disk layout of a crisk workspace (``CRISK_HOME``).

Every deployable (pipelines, training, serving) reads and writes the same workspace; this class is
the one place that names its folders, so the layers agree without importing each other.
Creating folders is explicit (:meth:`Workspace.ensure`), never a side effect of construction.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

__all__ = [
    "DEFAULT_HOME",
    "HOME_VARIABLE",
    "LAYOUT_VERSION",
    "OFFLINE_LAYOUTS",
    "PARTITIONED_RECORD_KINDS",
    "PARTITION_COLUMN",
    "RECORD_FILES",
    "TELEMETRY_OFF",
    "OfflineLayout",
    "Workspace",
    "WorkspaceError",
    "create_private_file",
    "home_field",
    "offline_dataset_name",
]

DEFAULT_HOME = Path(".crisk")
HOME_VARIABLE = "CRISK_HOME"
# The version of the layout below, recorded in CRISK_HOME/workspace.json. A workspace without the
# file predates the record and has this layout (version 1). Raise it when a folder or a store's
# format changes incompatibly, and say in the error how to move a workspace forward.
LAYOUT_VERSION = 1
LAYOUT_FILE = "workspace.json"


class WorkspaceError(ValueError):
    """The workspace cannot be used: another layout version, or it cannot be written."""


# Nothing leaves the machine: every component's usage reporting is switched off.
TELEMETRY_OFF: dict[str, str] = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "FEAST_USAGE": "False",
    "GX_ANALYTICS_ENABLED": "false",
}


# The data store: the current version of every valid record, one file per kind, and the
# operator register (reference data, copied in as it is).
RECORD_FILES: dict[str, str] = {
    "declarations": "declarations.parquet",
    "ens": "ens.parquet",
    "control-results": "control_results.parquet",
    "operators": "operators.parquet",
}
# Record kinds the data store can hold as a hive-partitioned dataset (CRISK_RECORDS_LAYOUT):
# those that grow with every import. The operator register is reference data replaced whole,
# one row per operator, so it stays one file (data_contracts/record_store.py).
PARTITIONED_RECORD_KINDS: tuple[str, ...] = ("declarations", "ens", "control-results")


# How offline tables are stored (CRISK_FEATURES_OFFLINE_LAYOUT). ``file``: one Parquet file
# ``<name>.parquet``, written whole. ``partitioned``: a directory ``<name>/`` of hive partitions
# ``event_month=YYYY-MM/`` (the UTC month of each row's event_timestamp), so a run writes many
# files of bounded size and a reader filtering on time skips whole months (docs/scaling.md).
OfflineLayout = Literal["file", "partitioned"]
OFFLINE_LAYOUTS: tuple[OfflineLayout, ...] = ("file", "partitioned")
PARTITION_COLUMN = "event_month"


def offline_dataset_name(name: str, layout: OfflineLayout) -> str:
    """The file (``file``) or directory (``partitioned``) name of the offline table ``name``."""
    return f"{name}.parquet" if layout == "file" else name


def home_field() -> Any:
    """The workspace field of every settings class: ``CRISK_HOME``, default ``./.crisk``.

    Read from ``CRISK_HOME`` only, never aliased as ``home``: pydantic-settings matches
    environment names case-insensitively, so an alias ``home`` would read ``HOME`` and make the
    user's home directory the workspace. Settings classes set ``populate_by_name`` so that
    ``Settings(home=...)`` still works in code.
    """
    return Field(
        default=DEFAULT_HOME,
        validation_alias=HOME_VARIABLE,
        description="Workspace directory (CRISK_HOME).",
    )


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace directory."""

    home: Path

    @classmethod
    def at(cls, home: Path | str) -> Workspace:
        return cls(Path(home).expanduser().resolve())

    @property
    def world_dir(self) -> Path:
        """The synthetic world the bootstrap generates (raw feeds + ground truth)."""
        return self.home / "world"

    @property
    def data_dir(self) -> Path:
        """Validated, de-duplicated records: what features and training read."""
        return self.home / "data"

    def record_file(self, kind: str) -> Path:
        """The data store's file of a record kind (``declarations``, ``ens``,
        ``control-results``, ``operators``)."""
        return self.data_dir / RECORD_FILES[kind]

    def record_dataset(self, kind: str, layout: OfflineLayout = "file") -> Path:
        """The data store's records of ``kind`` in ``layout``: the file of :meth:`record_file`,
        or the directory ``data/<name>/`` of ``event_month=YYYY-MM`` partitions."""
        name = RECORD_FILES[kind].removesuffix(".parquet")
        return self.data_dir / offline_dataset_name(name, layout)

    @property
    def control_results_history_file(self) -> Path:
        """Control-result versions a correction superseded, oldest first: features count each
        version until the correction was reported (history is never rewritten)."""
        return self.data_dir / "control_results_history.parquet"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def feast_dir(self) -> Path:
        return self.home / "feast"

    @property
    def feature_tables_dir(self) -> Path:
        """Point-in-time feature tables: the batch sources of the Feast views."""
        return self.feast_dir / "tables"

    def feature_table(self, view: str, layout: OfflineLayout = "file") -> Path:
        """The table of ``view`` in ``layout``: ``<view>.parquet``, or the directory ``<view>/``
        of ``event_month=YYYY-MM`` partitions."""
        return self.feature_tables_dir / offline_dataset_name(view, layout)

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def bentoml_home(self) -> Path:
        return self.home / "bentoml"

    @property
    def serving_dir(self) -> Path:
        # Not "serving": bentoml runs from the workspace, and that name would shadow the package.
        return self.home / "service"

    @property
    def feedback_db(self) -> Path:
        return self.serving_dir / "feedback.sqlite"

    @property
    def audit_dir(self) -> Path:
        return self.serving_dir / "audit"

    @property
    def keys_dir(self) -> Path:
        """Signing keys: apart from the audit log they sign, so one copy of the log directory
        does not carry what it would take to forge it."""
        return self.home / "keys"

    @property
    def champion_marker(self) -> Path:
        """Rewritten whenever a champion alias moves: running services reload when it changes."""
        return self.serving_dir / "champion.json"

    def mark_champion_changed(self, champions: dict[str, str], reason: str) -> Path:
        """Rewrite the champion marker (atomically: a reader never sees half a file)."""
        marker = self.champion_marker
        marker.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "changed_at": datetime.now(UTC).isoformat(),
            "champions": champions,
            "reason": reason,
        }
        partial = marker.with_suffix(".tmp")
        partial.write_text(json.dumps(body, indent=1))
        partial.replace(marker)
        return marker

    @property
    def serving_bundle_file(self) -> Path:
        """Which bundle the service serves (written when it loads one; model cards read it)."""
        return self.serving_dir / "serving_bundle.json"

    @property
    def runs_dir(self) -> Path:
        """Evaluation outputs, reports and simulation results."""
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def environment(self) -> dict[str, str]:
        """Environment variables every process of this workspace runs with."""
        return {
            **TELEMETRY_OFF,
            "BENTOML_HOME": str(self.bentoml_home),
            "MPLCONFIGDIR": str(self.cache_dir / "matplotlib"),
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "MLFLOW_LOGGING_LEVEL": "WARNING",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }

    @property
    def layout_file(self) -> Path:
        return self.home / LAYOUT_FILE

    def layout_version(self) -> int | None:
        """The recorded layout version (1 for a workspace that predates the record, None when
        there is no workspace yet). Raises WorkspaceError if the record is unreadable."""
        if not self.layout_file.exists():
            return LAYOUT_VERSION if self.home.is_dir() and any(self.home.iterdir()) else None
        try:
            version = json.loads(self.layout_file.read_text())["layout_version"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise WorkspaceError(
                f"{self.layout_file}: unreadable layout record ({error}); "
                "is this a crisk workspace?"
            ) from None
        if not isinstance(version, int):
            raise WorkspaceError(f"{self.layout_file}: layout_version must be an integer")
        return version

    def check_layout(self) -> Workspace:
        """Refuse a workspace written by a crisk with another layout (nothing is touched)."""
        version = self.layout_version()
        if version is not None and version != LAYOUT_VERSION:
            advice = (
                "use the crisk that wrote it"
                if version > LAYOUT_VERSION
                else "re-create it with `crisk bootstrap`"
            )
            raise WorkspaceError(
                f"{self.home}: workspace layout version {version}, this crisk reads version "
                f"{LAYOUT_VERSION}; {advice}"
            )
        return self

    def ensure(self) -> Workspace:
        """Create the folders (and the layout record) of a workspace of this layout version."""
        self.check_layout()
        try:
            self._make_folders()
            if not self.layout_file.exists():
                temporary = self.layout_file.with_name(f".{LAYOUT_FILE}.{os.getpid()}.tmp")
                temporary.write_text(json.dumps({"layout_version": LAYOUT_VERSION}) + "\n")
                os.replace(temporary, self.layout_file)
        except OSError as error:
            raise WorkspaceError(
                f"{self.home}: the workspace cannot be written ({error.strerror or error}); set "
                f"CRISK_HOME to a writable directory"
            ) from None
        return self

    def _make_folders(self) -> None:
        for path in (
            self.data_dir,
            self.quarantine_dir,
            self.feature_tables_dir,
            self.mlflow_artifacts_dir,
            self.bentoml_home,
            self.audit_dir,
            self.runs_dir,
            self.cache_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)


def create_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``, readable by its owner only from its first byte and never
    half-written. If another process created it meanwhile, that file is kept (keys generated
    on first use by two starts at once agree on one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(temporary, path)  # fails if the file exists: the first one stays
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
