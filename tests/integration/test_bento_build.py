"""`bentoml build` at the repository root makes a Bento of the scoring service (bentofile.yaml).

The Bento carries the three packages the service imports and the locked requirements, with
telemetry off; it carries no model (the champions come from the registry at start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from data_contracts.workspace import TELEMETRY_OFF

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENTOML = [sys.executable, "-m", "bentoml"]


def _bentoml(arguments: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **TELEMETRY_OFF, "BENTOML_HOME": str(home)}
    return subprocess.run(
        [*BENTOML, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_bentoml_build_makes_a_bento_of_the_service(tmp_path: Path) -> None:
    home = tmp_path / "bentoml"
    built = _bentoml(["build", str(ROOT), "--output", "tag"], home)
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    assert name == "crisk"

    bento = home / "bentos" / name / version
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["service"] == "serving.service:CustomsRiskScorer"
    assert manifest["models"] == [], "no model is baked in: the registry's champions serve"
    routes = {route["route"] for route in manifest["schema"]["routes"]}
    assert {"/score", "/feedback", "/explain"} <= routes
    envs = {env["name"]: env["value"] for env in manifest["envs"]}
    assert envs.items() >= TELEMETRY_OFF.items()

    sources = {p.relative_to(bento / "src").as_posix() for p in (bento / "src").rglob("*")}
    assert {"serving/service.py", "features/online.py", "features/feature_store.yaml"} <= sources
    assert not any(s.startswith(("training/", "pipelines/", "world/", "tests/")) for s in sources)
    assert not any("__pycache__" in s or s.startswith(".venv") for s in sources)
    pinned = (bento / "env" / "python" / "requirements.txt").read_text()
    locked = [
        line for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith((" ", "#"))
    ]  # fmt: skip
    assert all(line in pinned for line in locked), "the Bento installs the project's lock"

    listed = _bentoml(["list", "--output", "json"], home)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert tag in {entry["tag"] for entry in json.loads(listed.stdout)}
