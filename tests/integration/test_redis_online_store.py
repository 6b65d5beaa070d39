"""The Redis profile: Feast's own Redis online store serves the same values as SQLite.

Runs against a real ``redis-server`` started on a free loopback port (skipped where the binary is
not installed; `.ci/run` installs it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureStoreSettings
from features.online import OnlineFeatureReader
from features.retrieval import entity_frame
from features.services import SERVICE_FOR_SUBJECT
from features.store import apply_definitions, materialize, repo_config_dict
from features.tables import cutoff_of
from tests.services import running_redis

pytestmark = pytest.mark.integration


def test_redis_profile_configures_feasts_redis_store() -> None:
    settings = FeatureStoreSettings(online_store="redis", redis_connection_string="127.0.0.1:6390")
    config = repo_config_dict(settings)
    assert config["online_store"] == {"type": "redis", "connection_string": "127.0.0.1:6390"}
    assert config["offline_store"]["type"] == "duckdb"


@pytest.fixture
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


def test_redis_serves_the_same_features_as_sqlite(
    trained_workspace: Path, tmp_path: Path, redis_url: str
) -> None:
    home = tmp_path / "redis_home"
    shutil.copytree(trained_workspace / "feast" / "tables", home / "feast" / "tables")
    redis_settings = FeatureStoreSettings(
        home=home, online_store="redis", redis_connection_string=redis_url
    )
    apply_definitions(redis_settings)
    declarations = pd.read_parquet(trained_workspace / "data" / "declarations.parquet")
    cutoff = cutoff_of(declarations["lodged_at"])
    materialize(redis_settings, end=cutoff.to_pydatetime() + pd.Timedelta(hours=1))

    service = SERVICE_FOR_SUBJECT["declaration"]
    sample = declarations.sample(50, random_state=9)
    entities = entity_frame(sample, "declaration")
    columns = {c: entities[c].to_numpy() for c in entities.columns}
    from_redis = OnlineFeatureReader(redis_settings, service).get(columns)
    from_sqlite = OnlineFeatureReader(FeatureStoreSettings(home=trained_workspace), service).get(
        columns
    )
    for name in OnlineFeatureReader(redis_settings, service).feature_names:
        np.testing.assert_allclose(
            np.asarray(from_redis[name], dtype=float),
            np.asarray(from_sqlite[name], dtype=float),
            equal_nan=True,
            err_msg=name,
        )
