"""Private copies of the trained test workspace, for tests that write to it.

The session workspace (``trained_workspace``) is served and read by other tests: whatever writes
to its data store, feature store or MLflow registry runs on a copy whose MLflow locations are
rewritten to point at the copy, inside :func:`crisk_home` so nothing of the copy outlives the test.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from data_contracts.workspace import Workspace

__all__ = ["alias_version", "copy_workspace", "crisk_home", "mlflow_client", "runs_named"]

# MLflow columns holding absolute artifact locations (everything else is relative or an id).
_LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def copy_workspace(source: Path, target: Path) -> Path:
    """A private copy of ``source`` whose MLflow store points at the copy's own artifacts.

    The copy has no BentoML store and no service state (feedback store, audit log). Its Feast
    registry still names the original's feature tables until `crisk features apply` (or
    anything that applies the definitions, e.g. `crisk retrain`) runs on the copy; until then
    the copy only reads them.
    """
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("bentoml", "service"))
    old = str(Workspace.at(source).home) + "/"
    new = str(Workspace.at(target).home) + "/"
    with closing(sqlite3.connect(target / "mlflow" / "mlflow.db")) as connection:
        for table, column in _LOCATION_COLUMNS:
            connection.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
        connection.commit()
        for table, column in _LOCATION_COLUMNS:
            (left,) = connection.execute(
                f"SELECT count(*) FROM {table} WHERE instr({column}, ?) > 0", (old,)
            ).fetchone()
            assert left == 0, f"{table}.{column} still points into the original workspace"
    return target


@contextmanager
def crisk_home(home: Path) -> Iterator[MlflowClient]:
    """CRISK_HOME and MLflow's process-wide URIs on ``home``; everything restored on exit."""
    workspace = Workspace.at(home)
    uri = workspace.mlflow_tracking_uri
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    with pytest.MonkeyPatch.context() as patch:
        # Set (not setdefault, as the CLI does) so nothing of this copy outlives the test.
        for name, value in {
            **workspace.environment(),
            "CRISK_HOME": str(home),
            "MLFLOW_REGISTRY_URI": uri,
            # The shared 30,000-item world's gate windows hold 25-27 financial hits, below the
            # default floor of 30: the floor the simulated deployment uses for its windows
            # (world/strategies.py), so the gate's comparisons are what the tests see.
            "CRISK_TRAIN_GATE_MIN_HITS": "20",
        }.items():
            patch.setenv(name, value)
        # MLflow's registry store resolves `models:/m-...` sources with the global tracking URI.
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield MlflowClient(tracking_uri=uri, registry_uri=uri)
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])


def mlflow_client(home: Path) -> MlflowClient:
    """A client on the workspace's MLflow store, whatever the process-wide URIs are."""
    uri = Workspace.at(home).mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def alias_version(client: MlflowClient, name: str, alias: str) -> str:
    """The version number an alias (``champion``, ``challenger``) points at."""
    return str(client.get_model_version_by_alias(name, alias).version)


def runs_named(client: MlflowClient, run_name: str, experiment: str = "crisk") -> list[Run]:
    """Runs of that name in the crisk experiment, newest first."""
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    return client.search_runs(
        [found.experiment_id],
        filter_string=f"attributes.run_name = '{run_name}'",
        order_by=["attributes.start_time DESC"],
    )
