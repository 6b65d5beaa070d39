"""Settings: one workspace, read from CRISK_HOME only (never from HOME)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.config import FeatureStoreSettings
from pipelines.config import PipelineSettings
from serving.config import ServingSettings
from training.config import TrainingSettings

SETTINGS = (FeatureStoreSettings, TrainingSettings, ServingSettings, PipelineSettings)


@pytest.mark.parametrize("settings_class", SETTINGS, ids=lambda c: c.__name__)
def test_home_directory_is_never_the_workspace(
    settings_class: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pydantic-settings reads aliases case-insensitively: an alias "home" would read $HOME.
    monkeypatch.delenv("CRISK_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "somebody"))
    monkeypatch.chdir(tmp_path)
    settings = settings_class()
    assert settings.workspace.home == tmp_path / ".crisk"


@pytest.mark.parametrize("settings_class", SETTINGS, ids=lambda c: c.__name__)
def test_crisk_home_and_keyword_choose_the_workspace(
    settings_class: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRISK_HOME", str(tmp_path / "from_env"))
    assert settings_class().workspace.home == tmp_path / "from_env"
    assert settings_class(home=tmp_path / "given").workspace.home == tmp_path / "given"


def test_nested_settings_share_the_pipeline_workspace(tmp_path: Path) -> None:
    settings = PipelineSettings(home=tmp_path)
    homes = {
        settings.training.home,
        settings.training.features.home,
        settings.serving.home,
        settings.serving.features.home,
    }
    assert homes == {tmp_path}
