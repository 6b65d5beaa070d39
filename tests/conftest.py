"""Shared fixtures: small seeded worlds, and one trained workspace for integration/model tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from hypothesis import settings

from data_contracts.workspace import TELEMETRY_OFF
from serving.launch import serve_command
from world.generate import World, WorldConfig, generate_world

for _name, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Property tests draw new examples on every developer run (that is how they find bugs); CI
# (`.ci/run` sets HYPOTHESIS_PROFILE=ci) draws the same ones every time, so a red build is
# always a change in the code, never a lucky draw.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

TEST_WORLD_ITEMS = 30_000
TEST_WORLD_ENS = 40_000


@pytest.fixture(scope="session")
def small_world() -> World:
    """A 5,000-item world in memory (seed 11)."""
    return generate_world(WorldConfig(seed=11, declarations=5_000))


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace bootstrapped on a 30,000-item world: data, features, registered champions."""
    from pipelines.config import PipelineSettings
    from pipelines.steps import bootstrap

    home = tmp_path_factory.mktemp("crisk_home")
    settings = PipelineSettings(
        home=home,
        world_declarations=TEST_WORLD_ITEMS,
        world_ens=TEST_WORLD_ENS,
        world_seed=5,
        bootstrap_min_positive_labels=15,
    )
    bootstrap(settings)
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    keys: dict[str, str]  # role -> key
    process: subprocess.Popen[bytes]
    log: Path


def start_server(
    home: Path, log: Path, extra_env: dict[str, str] | None = None, ready_seconds: float = 120
) -> RunningServer:
    """Start `bentoml serve` on a free loopback port and wait until /readyz answers."""
    port = free_port()
    keys = {
        "scorer": "test-scorer-key",
        "officer": "test-officer-key",
        "auditor": "test-auditor-key",
        "admin": "test-admin-key",
    }
    env = dict(os.environ)
    env.update(
        {
            "CRISK_HOME": str(home),
            "CRISK_API_KEYS": ",".join(f"{role}:{key}" for role, key in keys.items()),
            "BENTOML_HOME": str(home / "bentoml"),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
            **(extra_env or {}),
        }
    )
    handle = log.open("wb")
    process = subprocess.Popen(
        serve_command("127.0.0.1", port),
        cwd=str(home),
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code in (200, 503):
                return RunningServer(url, keys, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError(f"server not ready in time:\n{log.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen[bytes], sig: int = 15) -> None:
    """Stop the server and every process it started.

    BentoML's workers run in sessions of their own: a SIGTERM reaches them through the arbiter,
    but after a SIGKILL (the durability test) they would outlive it, so they are killed here.
    """
    if process.poll() is not None:
        return
    workers = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=10)
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    psutil.wait_procs(workers, timeout=10)


@pytest.fixture(scope="session")
def server(
    trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    running = start_server(trained_workspace, tmp_path_factory.mktemp("logs") / "server.log")
    yield running
    stop_server(running.process)


@pytest.fixture(scope="session")
def audited_workspace(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory):
    """A private copy of the trained workspace that has been evaluated and has served (audit
    log, feedback, explain answers): what the page tests and notebooks read."""
    from tests.integration.audited import prepare_audited_workspace

    root = tmp_path_factory.mktemp("audited")
    return prepare_audited_workspace(trained_workspace, root / "home", root / "server.log")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real PostgreSQL cluster on loopback for the session (tests/services.py); each test
    module takes a database of its own (`tests.services.new_database`)."""
    from tests.services import running_postgres

    with running_postgres() as running:
        yield running
