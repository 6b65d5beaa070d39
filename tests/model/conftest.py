"""Behavioural tests run against a candidate model set: ``--model-home DIR`` names a workspace
whose registry holds the champions to test; without it, the session's trained test workspace."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--model-home",
        action="store",
        default=None,
        help="CRISK_HOME whose champion models the behavioural tests examine.",
    )


@pytest.fixture(scope="session")
def model_home(request: pytest.FixtureRequest) -> Path:
    option = request.config.getoption("--model-home")
    if option:
        return Path(option)
    return request.getfixturevalue("trained_workspace")


@pytest.fixture(scope="session")
def bundle(model_home: Path):
    import os

    from serving.bundle import load_bundle
    from serving.config import ServingSettings

    os.environ["BENTOML_HOME"] = str(model_home / "bentoml")
    return load_bundle(ServingSettings(home=model_home))


@pytest.fixture(scope="session")
def scorer(model_home: Path, bundle):
    from features.online import OnlineFeatureReader
    from serving.config import ServingSettings
    from serving.scorer import Scorer

    settings = ServingSettings(home=model_home)
    readers = {
        s: OnlineFeatureReader(settings.features, bundle.feature_service(s))
        for s in bundle.subjects()
    }
    return Scorer(bundle, readers, settings)
